import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { SlackClient } from '../notify/slack.ts';
import { MINUTE_MS } from '../time.ts';

/** How long a user group's members are trusted: a person removed from the group loses the buttons within this. */
const GROUP_TTL_MS = 5 * MINUTE_MS;

export interface GroupMembers {
  /** The groups among `groups` that `userId` is a member of (a group Slack will not list counts as not). */
  groupsOf(userId: string, groups: readonly string[]): Promise<Set<string>>;
}

/** Members of the user groups in `slack_actions.allow`, read with usergroups.users.list and cached briefly. */
export function groupMembers(slack: SlackClient | null, clock: Clock, log: Logger): GroupMembers {
  const cache = new Map<string, { users: Set<string>; until: number }>();
  const membersOf = async (group: string): Promise<Set<string>> => {
    const now = clock.now().getTime();
    const hit = cache.get(group);
    if (hit !== undefined && hit.until > now) return hit.users;
    if (slack === null) return new Set();
    const r = await slack.usergroupMembers(group);
    if (!r.ok) {
      // refused, not cached: the next press asks again
      log.warn(
        { usergroup: group, reason: r.failure.reason },
        'could not read a Slack user group: its members may not press',
      );
      return new Set();
    }
    const users = new Set(r.users);
    cache.set(group, { users, until: now + GROUP_TTL_MS });
    return users;
  };
  return {
    async groupsOf(userId, groups) {
      const member = new Set<string>();
      for (const g of groups) if (g.startsWith('S') && (await membersOf(g)).has(userId)) member.add(g);
      return member;
    },
  };
}
