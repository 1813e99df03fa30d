import { CronExpressionParser } from 'cron-parser';
import type { Policy } from '../config/policy.ts';
import type { JobDefinition } from './define.ts';
import { QUEUE_NAMES } from './queues.ts';

export type Registry = ReadonlyMap<string, JobDefinition>;

/** Problems that make a job registry unsafe to start with, each naming the fix. */
function registryProblems(definitions: readonly JobDefinition[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const def of definitions) {
    if (!/^[a-z][a-z0-9-]*$/.test(def.name)) {
      problems.push(`job "${def.name}": names are lowercase words joined by dashes (like poll-usage)`);
    }
    if (seen.has(def.name)) {
      problems.push(
        `job "${def.name}" is defined twice: rename one of them in jobs/ and list each once in jobs/index.ts`,
      );
    }
    seen.add(def.name);
    if (!(QUEUE_NAMES as readonly string[]).includes(def.queue)) {
      problems.push(`job "${def.name}": unknown queue "${def.queue}" (queues: ${QUEUE_NAMES.join(', ')})`);
    }
    if (typeof def.schedule === 'string') {
      try {
        CronExpressionParser.parse(def.schedule);
      } catch (err) {
        problems.push(`job "${def.name}": default schedule "${def.schedule}" is not cron: ${(err as Error).message}`);
      }
    }
  }
  for (const def of definitions) {
    for (const next of def.followedBy ?? []) {
      if (!seen.has(next)) problems.push(`job "${def.name}" chains to "${next}", which is not in jobs/index.ts`);
    }
  }
  return problems;
}

export class RegistryError extends Error {}

/** The registry as a map, or a RegistryError listing every problem: the worker refuses to start on any. */
export function buildRegistry(definitions: readonly JobDefinition[], policy?: Policy): Registry {
  const problems = registryProblems(definitions);
  const names = new Set(definitions.map((d) => d.name));
  for (const name of Object.keys(policy?.schedules ?? {})) {
    if (!names.has(name)) {
      problems.push(`policy file schedules.${name}: no job of that name (jobs: ${[...names].join(', ')})`);
    }
  }
  for (const def of definitions) {
    if (policy === undefined || typeof def.schedule !== 'function') continue;
    const pattern = def.schedule(policy);
    if (pattern === null) continue;
    try {
      CronExpressionParser.parse(pattern);
    } catch (err) {
      problems.push(
        `job "${def.name}": the policy gives it the schedule "${pattern}", not cron: ${(err as Error).message}`,
      );
    }
  }
  if (problems.length > 0) throw new RegistryError(`the job registry is not valid:\n  - ${problems.join('\n  - ')}`);
  return new Map(definitions.map((d) => [d.name, d]));
}
