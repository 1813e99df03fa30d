import { chmodSync, writeFileSync } from 'node:fs';

/**
 * A file only its owner can read: the demo's env.sh holds the real DATABASE_URL (with its password) and its emails
 * hold what the alerts say. `mode` only applies when the file is created, so a file left by an earlier run is
 * narrowed too.
 */
export function writePrivateFile(path: string, content: string | Buffer): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** A value as one single-quoted shell word: inside single quotes nothing is special but the quote itself. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines that `source` gives back exactly, whatever the values hold, then `footer`. */
export function writeEnvFile(path: string, env: Record<string, string>, footer: string): void {
  const lines = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  writePrivateFile(path, `${lines.join('\n')}\n${footer}\n`);
}
