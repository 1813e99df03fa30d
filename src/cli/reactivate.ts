import { userInfo } from 'node:os';
import { isKeyIdReference } from '../config/references.ts';
import { KEY_STATUS_LOCK } from '../db/advisory-lock.ts';
import { terminalText } from '../notify/escape.ts';
import { DEFAULT_PREFIX } from '../queue/queues.ts';
import { lastStatusChangeFailure, setKeyStatus } from '../rotation/set-status.ts';
import { loadCliConfig, openApp, parse, pickOrganization, UsageError } from './command.ts';

/** `keywarden keys reactivate <key> --reason "…"`: a key set active again through the Admin API, audited. */
export async function reactivateCommand(args: string[], orgId?: string): Promise<number> {
  const { values, positionals } = parse(args, { reason: { type: 'string' } }, 1);
  const ref = positionals[0];
  if (!ref) throw new UsageError('which key? give its id (apikey_…) or its exact name');
  if (!values.reason?.trim())
    throw new UsageError('--reason: say why the key is reactivated (it goes into the audit log)');
  const config = loadCliConfig();
  const app = await openApp(config, 'keys reactivate', DEFAULT_PREFIX, pickOrganization(config, orgId));
  try {
    const matches = await app.ctx.repos.keys.findByReference(ref);
    if (matches.length === 0) {
      const what = isKeyIdReference(ref) ? 'id' : 'name';
      throw new UsageError(`<key>: no stored key with ${what} "${ref}" (run sync-inventory first)`);
    }
    if (matches.length > 1)
      throw new UsageError(
        `<key>: ${matches.length} keys are named "${ref}"; give the id (${matches.map((m) => m.id).join(', ')})`,
      );
    const key = matches[0]!;
    const actor = `cli:${userInfo().username}`;
    const reason = values.reason;
    // one status change at a time, as enforcement and the kill switch (a run in flight may be settling this key)
    const locked = await app.ctx.repos.keys.withStatusLock(() =>
      setKeyStatus(app.ctx, { keyId: key.id, to: 'active', action: 'api_key.reactivate', actor, reason }),
    );
    if (locked === null) {
      console.error(
        `another run is changing key statuses (enforce-rotation or the kill switch holds ${KEY_STATUS_LOCK}); ${terminalText(key.name)} not reactivated: try again in a minute`,
      );
      return 1;
    }
    if (locked.value === 'done') {
      console.log(`${terminalText(key.name)} (${key.id}) is active again; audited`);
      return 0;
    }
    // the reason ends with the API's own words, text from outside: sanitized for the terminal like every name
    const why = await lastStatusChangeFailure(app.ctx, { keyId: key.id, action: 'api_key.reactivate', actor });
    console.log(`could not reactivate ${terminalText(key.name)}: ${terminalText(why ?? 'see the log')}`);
    return 1;
  } finally {
    await app.close();
  }
}
