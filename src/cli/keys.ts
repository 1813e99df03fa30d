import { requireEnv } from '../app.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { planRotation } from '../rotation/core/plan.ts';
import { type KeyRow, keyRows } from '../rotation/key-rows.ts';
import { loadRotationInputs } from '../rotation/load.ts';
import { type Command, loadCliConfig, parse } from './command.ts';
import { reactivateCommand } from './reactivate.ts';

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

export function formatKeyTable(rows: KeyRow[]): string {
  return formatTable(
    ['KEY', 'HINT', 'WORKSPACE', 'STATUS', 'AGE', 'DEADLINE', 'STAGE', 'OWNER', 'LAST USAGE', 'SUCCESSOR'],
    rows.map((r) => [
      r.name,
      r.hint ?? '',
      r.workspace,
      r.status,
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
  summary: 'list API keys with their rotation deadline, stage, owner, last usage and successor',
  usage: `keywarden keys [--json]
       keywarden keys reactivate <key id or name> --reason "…"

  keys: reads what keywarden stored (run sync-inventory first); changes nothing.
  reactivate: sets a key active again through the Admin API (undoing a deactivation), audited.`,
  async run(args) {
    if (args[0] === 'reactivate') return reactivateCommand(args.slice(1));
    const { values } = parse(args, { json: { type: 'boolean' } });
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'keys');
    const db = createDb(config.env.databaseUrl!, { max: 2 });
    try {
      const now = new Date();
      const inputs = await loadRotationInputs(createRepos(db), config.policy.rotation.drain_window_hours, now);
      const rows = keyRows(inputs, planRotation(inputs, config.policy.rotation, now), now);
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
