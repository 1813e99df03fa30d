import { slackContextTexts } from './tour.ts';

/**
 * The demo presses two buttons as a person would: Acknowledge on the runaway, Approve on the drained overdue key.
 * These read what it needs from the messages the Slack stand-in received. Pure.
 */

/** The demo's own organization gains one key: retired by its team months ago, so drained, and overdue. */
export const DRAINED_KEY = {
  name: 'Nightly export',
  workspace: 'Research',
  created_by: 'chloe@acme.example',
  age_days: 120,
} as const;

/** Who presses: a person on the allow lists of the demo's policy (`slack_actions.allow`). */
export const DEMO_PRESSER = { userId: 'U0DEMOSEC', userName: 'dana' } as const;

/** The value of the button with this action id in a message's blocks, or null when it has none. */
export function buttonValue(blocks: unknown, actionId: string): string | null {
  if (!Array.isArray(blocks)) return null;
  for (const b of blocks as Array<{ type?: unknown; elements?: unknown }>) {
    if (b?.type !== 'actions' || !Array.isArray(b.elements)) continue;
    for (const e of b.elements as Array<{ action_id?: unknown; value?: unknown }>) {
      if (e?.action_id === actionId && typeof e.value === 'string') return e.value;
    }
  }
  return null;
}

/** What a pressed message says last (`Acknowledged by <@U…> at 14:02 UTC`): the line chat.update added. */
export function answeredLine(blocks: unknown): string | null {
  return slackContextTexts(blocks).at(-1) ?? null;
}
