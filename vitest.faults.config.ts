import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * The fault drills that take minutes of real time (outages of 60 s to 10 min): `npm run test:faults`, run by CI
 * after `npm test`. Same services and setup as the main suite; only the files and timeouts differ.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/faults/**/*.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 15 * 60_000,
    // the drills mostly wait out their outages: three at a time keeps the whole run near the longest drill (~11 min)
    maxWorkers: 3,
    hookTimeout: 120_000,
  },
});
