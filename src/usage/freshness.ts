import type { Repos } from '../db/repos/index.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import type { UsageFreshness } from './core/freshness.ts';

/** Both poll watermarks, read together: what src/usage/core/freshness.ts works out how far usage is known from. */
export async function readUsageFreshness(repos: Pick<Repos, 'watermarks'>): Promise<UsageFreshness> {
  const [committed, settled] = await Promise.all([
    repos.watermarks.read(WATERMARKS.usage),
    repos.watermarks.read(WATERMARKS.usageSettled),
  ]);
  return { committed, settled };
}
