/** Child processes of the benchmarks: the keywarden CLI (worker, emulator) and what /proc says of their memory. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `keywarden <args>` as a child process; resolves once its output matches `ready`. */
export async function startCli(args: string[], env: Record<string, string>, ready: RegExp) {
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli', 'index.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });
  let out = '';
  const collect = (d: Buffer) => {
    out += d;
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  await new Promise<void>((resolve, reject) => {
    const check = setInterval(() => {
      if (ready.test(out)) {
        clearInterval(check);
        resolve();
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(check);
      reject(new Error(`keywarden ${args[0]} exited (${code}):\n${out}`));
    });
  });
  return {
    pid: child.pid!,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A process's resident set now (VmRSS) or at its peak (VmHWM), in bytes; null where /proc is not there. */
export function rssOf(pid: number, which: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const kb = new RegExp(`${which}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

/** The V8 flags the image runs the worker with (the Dockerfile's `ENV NODE_OPTIONS`): what a deployment measures. */
export function deployedNodeOptions(): string {
  const dockerfile = readFileSync(join(import.meta.dirname, '..', 'Dockerfile'), 'utf8');
  const flags = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile)?.[1];
  if (flags === undefined) throw new Error('Dockerfile: no `ENV NODE_OPTIONS="…"` line to run the worker as deployed');
  return flags;
}
