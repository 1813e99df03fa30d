import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { maskSecret } from '../config/secret.ts';
import { createLogger } from '../log.ts';
import { API_SHAPES, type ApiShape, BUILT_IN_SCENARIOS, loadScenario, ScenarioError } from './scenario.ts';
import { startEmulator } from './server.ts';

const USAGE = `keywarden emulator --scenario <file|name> [--port <p>] [--host <h>] [--delay <minutes>] [--api-shape <shape>] [--admin-key <key>]...

Serves an emulator of the Anthropic Admin API over a simulated organization, for the demo, tests and trying
keywarden before handing it a real admin key. Runs until interrupted (Ctrl-C, SIGTERM).

  --scenario   a built-in scenario (${BUILT_IN_SCENARIOS.join(', ')}) or a YAML/JSON scenario file
  --port       port to listen on (default 4646; 0 picks a free one)
  --host       address to bind (default 127.0.0.1)
  --delay      minutes before a minute's usage shows in reports (default: the scenario's)
  --api-shape  by_version (classic shapes under 2023-06-01, the SDK's under 2026-10-21), classic or 2026
               (those shapes under every version); default: the scenario's api_shape
  --admin-key  an admin key to accept instead of the scenario's admin_keys (repeatable)

Point keywarden at it with ANTHROPIC_BASE_URL=<the printed URL> and ANTHROPIC_ADMIN_KEY=<an accepted key>.
Control endpoints for drills, loopback only: GET /_emulator/health, POST /_emulator/faults,
POST /_emulator/admin-keys, GET /_emulator/requests.`;

export interface CommandIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Resolves when the command should stop; default SIGINT or SIGTERM. */
  stopped?: Promise<unknown>;
}

/** `keywarden emulator …`: returns the exit code (0 after a clean stop, 2 for a bad command line or scenario). */
export async function runEmulatorCommand(
  argv: string[],
  io: CommandIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const fail = (message: string) => {
    io.err.write(`keywarden emulator: ${message}\nRun \`keywarden emulator --help\` for the options.\n`);
    return 2;
  };
  let values: {
    scenario?: string;
    port?: string;
    host?: string;
    delay?: string;
    'api-shape'?: string;
    'admin-key'?: string[];
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        scenario: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        delay: { type: 'string' },
        'api-shape': { type: 'string' },
        'admin-key': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return fail((err as Error).message);
  }
  if (values.help) {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.scenario) return fail('--scenario is required');
  const port = Number(values.port ?? '4646');
  if (!/^\d+$/.test(values.port ?? '4646') || port > 65535)
    return fail(`--port: "${values.port}" is not a port number`);
  const delay = values.delay === undefined ? undefined : Number(values.delay);
  if (delay !== undefined && (!Number.isFinite(delay) || delay < 0)) {
    return fail(`--delay: "${values.delay}" is not a number of minutes (0 or more)`);
  }
  const shape = values['api-shape'];
  if (shape !== undefined && !API_SHAPES.includes(shape as ApiShape)) {
    return fail(`--api-shape: "${shape}" is not one of ${API_SHAPES.join(', ')}`);
  }
  const adminKeys = values['admin-key'];
  const badKey = adminKeys?.find((k) => !k.startsWith('sk-ant-admin'));
  if (badKey !== undefined)
    return fail(`--admin-key: ${maskSecret(badKey)} is not an admin key (they start with sk-ant-admin)`);

  let scenario: ReturnType<typeof loadScenario>;
  try {
    scenario = loadScenario(values.scenario);
  } catch (err) {
    if (err instanceof ScenarioError) return fail(err.message);
    throw err;
  }
  const log = createLogger({ level: process.env.LOG_LEVEL || 'info' });
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emulator = await startEmulator({
      scenario: shape === undefined ? scenario : { ...scenario, api_shape: shape as ApiShape },
      port,
      host: values.host ?? '127.0.0.1',
      log,
      ...(adminKeys ? { adminKeys } : {}),
      ...(delay !== undefined ? { freshnessDelayMinutes: delay } : {}),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      return fail(`--port/--host: cannot listen on ${values.host ?? '127.0.0.1'}:${port} (${code})`);
    }
    throw err;
  }
  const keys = adminKeys ?? scenario.admin_keys;
  const state = emulator.state;
  io.out.write(
    `Admin API emulator: scenario ${scenario.name} (${state.keys.length} keys, ${state.workspaces.length} workspaces, ` +
      `${state.users.length} users), usage visible after ${delay ?? scenario.freshness_delay_minutes} min\n` +
      `  ANTHROPIC_BASE_URL=${emulator.url}\n` +
      `  ANTHROPIC_ADMIN_KEY: ${keys.map(maskSecret).join(', ')}` +
      `${adminKeys ? ' (from --admin-key)' : ` (the full value is in admin_keys of the scenario ${values.scenario})`}\n`,
  );
  const stopped = io.stopped ?? Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await stopped;
  await emulator.close();
  io.out.write('Admin API emulator stopped\n');
  return 0;
}
