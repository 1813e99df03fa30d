import { z } from 'zod';

/**
 * A `block_actions` payload, as either transport brings it: only the fields keywarden uses, each bounded. Everything
 * in it came from Slack (verified) but names and values were typed by people: they are data, never echoed raw.
 */

export interface Press {
  actionId: string;
  /**
   * The button's value: if keywarden made the button, a `slack_buttons` row id, with its organization's id in front
   * where the deployment watches several (buttonValue).
   */
  value: string;
  userId: string;
  /** The Slack user's name (their choice of text): for the audit row only. */
  userName: string;
  teamId: string | null;
  responseUrl: string | null;
  transport: 'http' | 'socket';
}

const payloadSchema = z.object({
  type: z.literal('block_actions'),
  team: z.object({ id: z.string().max(64) }).nullish(),
  user: z.object({
    // U… (W… in an Enterprise Grid org): interpolated as a mention, so it must be exactly that shape
    id: z.string().regex(/^[UW][A-Z0-9]{2,31}$/),
    username: z.string().max(256).optional(),
    name: z.string().max(256).optional(),
  }),
  response_url: z.string().max(2048).optional(),
  actions: z
    .array(
      z.object({
        action_id: z.string().max(255),
        // a button carries `value`; a menu (Snooze) the chosen option's
        value: z.string().max(2000).optional(),
        selected_option: z.object({ value: z.string().max(2000) }).nullish(),
      }),
    )
    .min(1)
    .max(1),
});

/** The press a payload describes, or null when it is not a single well-formed button press. */
export function parsePress(payload: unknown, transport: Press['transport']): Press | null {
  const r = payloadSchema.safeParse(payload);
  if (!r.success) return null;
  const p = r.data;
  const [action] = p.actions;
  if (action === undefined) return null;
  return {
    actionId: action.action_id,
    value: action.value ?? action.selected_option?.value ?? '',
    userId: p.user.id,
    userName: p.user.username ?? p.user.name ?? '',
    teamId: p.team?.id ?? null,
    responseUrl: p.response_url ?? null,
    transport,
  };
}
