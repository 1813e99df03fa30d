import type { Repos } from '../db/repos/index.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import { HOUR_MS } from '../time.ts';
import type { RotationInputs } from './core/types.ts';

/**
 * Reads what the rotation core needs: keys with their workspace name and owner, each key's usage over the drain
 * window, how fresh the usage data is (the end of the newest minute the API answered with data: poll-usage's
 * settled watermark, not the range it asked for), the reminder stages sent, and each key's newest Deny.
 */
export async function loadRotationInputs(
  repos: Pick<Repos, 'keys' | 'usage' | 'watermarks' | 'approvals'>,
  drainWindowHours: number,
  now: Date,
): Promise<RotationInputs> {
  const [keys, traffic, dataUntil, sent, denials] = await Promise.all([
    repos.keys.rotationKeys(),
    repos.usage.trafficByKey(new Date(now.getTime() - drainWindowHours * HOUR_MS)),
    repos.watermarks.read(WATERMARKS.usageSettled),
    repos.keys.sentStages(),
    repos.approvals.latestDenials(),
  ]);
  return { keys, traffic, usage: { dataUntil }, sent, denials };
}
