import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeEnvFile } from '../../src/demo/env-file.ts';

describe("the demo's env.sh", () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-demo-env-'));

  it('is readable by its owner only, and sourcing it gives back every value exactly', () => {
    const env = {
      DATABASE_URL: 'postgres://kw:it\'s$(echo INJECTED)`x`"y"@127.0.0.1:5432/kw',
      EMAIL_FROM: '"keywarden demo" <keywarden@acme.example>',
      LOG_LEVEL: 'info',
    };
    const path = join(dir, 'env.sh');
    writeEnvFile(path, env, '# then: npm run keywarden -- keys');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const printed = execFileSync(
      'bash',
      ['-c', `source "$1" && printf '%s\\n' "$DATABASE_URL" "$EMAIL_FROM" "$LOG_LEVEL"`, 'bash', path],
      { encoding: 'utf8' },
    );
    expect(printed).toBe(`${env.DATABASE_URL}\n${env.EMAIL_FROM}\n${env.LOG_LEVEL}\n`);
  });
});
