#!/usr/bin/env node
import { ConfigError } from '../config/index.ts';
import { scrubSecrets } from '../log.ts';
import { terminalText } from '../notify/escape.ts';
import { RegistryError } from '../queue/registry.ts';
import { alertsListCommand } from './alerts.ts';
import { checkConfigCommand } from './check-config.ts';
import { type Command, UsageError } from './command.ts';
import { demoCommand } from './demo.ts';
import { emulatorCommand } from './emulator.ts';
import { keysCommand } from './keys.ts';
import { migrateCommand } from './migrate.ts';
import { runCommand } from './run.ts';
import { silenceCliCommand } from './silence.ts';
import { spendCommand } from './spend.ts';
import { workerCommand } from './worker.ts';

/** `keywarden <command>`, in the order the help lists them. */
const COMMANDS: Record<string, Command> = {
  worker: workerCommand,
  migrate: migrateCommand,
  run: runCommand,
  'check-config': checkConfigCommand,
  keys: keysCommand,
  demo: demoCommand,
  alerts: alertsListCommand,
  silence: silenceCliCommand,
  spend: spendCommand,
  emulator: emulatorCommand,
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `keywarden: watches an Anthropic organization through the Admin API

Usage: keywarden <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Run \`keywarden <command> --help\` for a command's options. Configuration: environment variables (DATABASE_URL,
REDIS_URL, ANTHROPIC_ADMIN_KEY, …) and the policy file named by KEYWARDEN_CONFIG (default ./keywarden.yaml).`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(mainHelp());
    return command ? 0 : 2;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    console.error(`keywarden: unknown command "${command}"\n\n${mainHelp()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    if (spec === emulatorCommand) return spec.run(rest);
    console.log(`${spec.summary}\n\nUsage: ${spec.usage}`);
    return 0;
  }
  try {
    return await spec.run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) console.error(`config: ${p}`);
      return 2;
    }
    if (err instanceof RegistryError || err instanceof UsageError) {
      // a usage error can quote a stored key's name; the registry's lines are keywarden's own
      const message = err instanceof UsageError ? terminalText(err.message) : err.message;
      console.error(`keywarden ${command}: ${message}\n\nUsage: ${spec.usage}`);
      return 2;
    }
    // an error can quote a key or workspace name: scrubbed, and shown on one line with its escapes visible
    console.error(`keywarden ${command}: ${terminalText(scrubSecrets((err as Error).message ?? String(err)))}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
