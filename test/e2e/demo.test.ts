import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runNode } from '../support/processes.ts';

describe("keywarden demo (the README's first command)", () => {
  it('starts every part and, within its first minutes, shows every kind of finding, then stops everything', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kw-demo-'));
    // it stops as soon as it has shown everything; 120 s is only the bound
    const args = ['demo', '--exit-when-shown', '--exit-after', '120s', '--out', out];
    const { code, output } = await runNode('src/cli/index.ts', args, {});
    expect(output).toMatch(/Admin API emulator \(scenario "demo"/);
    expect(output).toMatch(/worker started/);
    // the scenario's 13 keys and the demo's drained overdue one (src/demo/presses.ts)
    expect(output).toMatch(/inventory: 5 workspaces, 6 users, 14 keys, 0 orphaned key\(s\)/);
    expect(output).toMatch(/\$ keywarden keys\nKEY +HINT/);
    expect(output).toMatch(/Research notebook .* overdue +left the organization/);
    // Bob's "Research notebook" is his personal key (its principal): dead since he left, still in use, said by
    // key.identity (key.orphaned keeps to keys no one stands behind); the first findings come as one batch, and
    // "still carries traffic" (critical) comes with them or at the next sync, once the poll has stored its usage
    expect(output).toMatch(/→ Slack #security: (🚨|⚠️) (\d+ alerts: key\.identity|Dead API key "Research notebook")/);
    expect(output).toMatch(
      /→ email to security@acme\.example: \[keywarden\] \[(critical|warning)\] (\d+ alerts: key\.identity|Dead API key "Research notebook")/,
    );
    // the runaway key, in Slack
    expect(output).toMatch(/→ Slack #ai-alerts: .*Runaway spend on API key "CI runner"/);
    // rotation: overdue keys and reminders, to Slack, the security address and the owners
    expect(output).toMatch(/→ Slack #security: .*alerts: rotation\.overdue/);
    expect(output).toMatch(/→ email to ana@acme\.example: .*"Production Backend" is past its rotation deadline/);
    expect(output).toMatch(/→ Slack #security: .*alerts: rotation\.due_soon/);
    // spend: the forecast over the organization's limit, and the spend table
    expect(output).toMatch(/→ Slack #finance: .*The organization is projected to exceed its \$[\d,]+\.00 limit/);
    expect(output).toMatch(/→ email to finance@acme\.example: .*projected to exceed/);
    expect(output).toMatch(/\$ keywarden spend\n.*\n\nSCOPE +NAME +LIMIT/);
    expect(output).toMatch(/organization +Organization +\$[\d,]+\.00 +\$[\d,.]+ +\$[\d,.]+ +\$[\d,.]+ +\d+\.\d%/);
    // the digests, asked for once the projection and the rotation stages exist
    expect(output).toMatch(/→ email to finance@acme\.example: \[keywarden\] Finance digest: Acme AI \(demo\)/);
    expect(output).toMatch(/→ email to security@acme\.example: \[keywarden\] Security digest: Acme AI \(demo\)/);
    // the two presses: Acknowledge on the runaway, Approve on the drained overdue key (enforce: approve)
    expect(output).toMatch(/demo: pressing Acknowledge on the runaway as <@U0DEMOSEC>/);
    expect(output).toMatch(/→ Slack message updated: Acknowledged by <@U0DEMOSEC> at \d\d:\d\d UTC/);
    expect(output).toMatch(/→ Slack #security: .*Approve setting API key "Nightly export" inactive\?/);
    expect(output).toMatch(/demo: pressing Approve on "Nightly export" as <@U0DEMOSEC>/);
    expect(output).toMatch(
      /→ Slack message updated: Approved by <@U0DEMOSEC> at \d\d:\d\d UTC: the key was set inactive/,
    );
    expect(output).toMatch(/demo: everything shown \(\d+ s\)/);
    expect(output).toMatch(/stopped; nothing left running/);
    expect(code).toBe(0);
    // the demo's policy file and log are where it said; the log never holds the admin key
    expect(readFileSync(join(out, 'keywarden.yaml'), 'utf8')).toMatch(/sync-inventory/);
    expect(readFileSync(join(out, 'worker.log'), 'utf8')).not.toContain('not-a-secret');
  }, 240_000);
});
