import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the long drills run separately: npm run test:faults (vitest.faults.config.ts)
    exclude: ['test/faults/**', 'node_modules/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // Two cores: files run in parallel, but each integration file owns its own database and queue prefix.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
