import { requireEnv } from '../app.ts';
import { connectionSchema } from '../config/index.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import type { KeyIdentity } from '../inventory/core/identity.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { planRotation } from '../rotation/core/plan.ts';
import { type KeyRow, keyRows } from '../rotation/key-rows.ts';
import { loadRotationInputs } from '../rotation/load.ts';
import { type Command, loadCliConfig, ORG_USAGE, parse, pickOrganization, takeOrg } from './command.ts';
import { reactivateCommand } from './reactivate.ts';

/** Short words for the table's IDENTITY column (`--json` carries the identity as stored). */
const IDENTITY_WORDS: Record<KeyIdentity, string> = {
  personal: 'personal',
  service_account: 'service account',
  legacy: 'legacy',
  unknown: '—',
};

/**
 * A plain-text table for the terminal, columns padded to their widest cell. Every cell goes through
 * `terminalText`: names come from the organization, and a line break or an escape sequence in one must not draw
 * rows or reach the terminal.
 */
export function formatTable(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map(terminalText));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A row of `keywarden keys`: the rotation row and who is behind the key (src/inventory/core/identity.ts). */
type KeyTableRow = KeyRow & { identity?: KeyIdentity };

export function formatKeyTable(rows: KeyTableRow[]): string {
  return formatTable(
    ['KEY', 'HINT', 'WORKSPACE', 'STATUS', 'IDENTITY', 'AGE', 'DEADLINE', 'STAGE', 'OWNER', 'LAST USAGE', 'SUCCESSOR'],
    rows.map((r) => [
      r.name,
      r.hint ?? '',
      r.workspace,
      r.status,
      r.identity === undefined ? '' : IDENTITY_WORDS[r.identity],
      `${r.ageDays}d`,
      r.deadline ?? '—',
      r.stage,
      r.owner,
      r.lastUsage ?? '—',
      r.successor ?? '',
    ]),
  );
}

export const keysCommand: Command = {
  summary: 'list API keys with their identity, rotation deadline, stage, owner, last usage and successor',
  usage: `keywarden keys [--json] [--org <id>]
       keywarden keys reactivate <key id or name> --reason "…" [--org <id>]

  keys: reads what keywarden stored (run sync-inventory first); changes nothing.
  reactivate: sets a key active again through the Admin API (undoing a deactivation), audited.
${ORG_USAGE}`,
  async run(argv) {
    const { org: orgId, rest: args } = takeOrg(argv);
    if (args[0] === 'reactivate') return reactivateCommand(args.slice(1), orgId);
    const { values } = parse(args, { json: { type: 'boolean' } });
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'keys');
    const org = pickOrganization(config, orgId);
    const db = createDb(config.env.databaseUrl!, { max: 2, schema: connectionSchema(org) });
    try {
      const now = new Date();
      const repos = createRepos(db);
      const [inputs, identities] = await Promise.all([
        loadRotationInputs(repos, org.policy.rotation.drain_window_hours, now),
        repos.keys.identities(),
      ]);
      const rows = keyRows(inputs, planRotation(inputs, org.policy.rotation, now), now).map((r) => ({
        ...r,
        identity: identities.get(r.id) ?? 'unknown',
      }));
      if (values.json) console.log(terminalJson(rows));
      else
        console.log(
          rows.length ? formatKeyTable(rows) : 'no keys stored yet: run `keywarden run sync-inventory --once`',
        );
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
