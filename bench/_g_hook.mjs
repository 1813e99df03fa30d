import { registerHooks } from 'node:module';
import { writeSync } from 'node:fs';
const seen = new Set();
registerHooks({
  load(url, context, next) {
    const r = next(url, context);
    if (!seen.has(url)) { seen.add(url); if (process.env.G_TRACE) writeSync(2, `LOAD ${url}\n`); }
    return r;
  },
});
