import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_LIMITS_URL } from '../../console.ts';
import { singleLineName } from '../../glob.ts';
import { formatUsd, type Pico, picoToUsd } from '../../money.ts';
import type { LimitPeriod } from './limits.ts';

/**
 * A Claude Enterprise member's pending request for a higher spend limit, asked about in Slack. Pure.
 *
 * The question is a `spend.limit_changed` notice on the scope `member:<user id>` whose period names the request
 * (`increase:<request id>`): said once per request, never repeated (the lifecycle's once-per-period kinds), and its
 * buttons (Approve, Deny) answer it through the Admin API. The API's request carries no amount asked for, so
 * keywarden proposes one: twice the member's current limit for the period, in whole cents. A request without a
 * positive USD limit to double (none applies, or another currency) is still told, with Deny only: what to raise it
 * to is a person's call in the Console.
 */

export interface PendingIncreaseFact {
  requestId: string;
  userId: string;
  /** The organization's text (hostile): travels on one line, as data. */
  name: string | null;
  email: string | null;
  period: LimitPeriod;
  /** The member's limit and spend in this period, from the request's live summary; null where it gives none. */
  currency: string | null;
  limit: Pico | null;
  spent: Pico | null;
  requestedAt: Date;
}

/** What the request is recorded with when first asked about (minor units: cents). */
interface AskedIncrease {
  requestId: string;
  userId: string;
  period: LimitPeriod;
  currency: string;
  limitMinor: bigint | null;
  amountMinor: bigint | null;
  requestedAt: Date;
}

const PICO_PER_CENT = 10n ** 10n;
const PER: Record<LimitPeriod, string> = { daily: 'per day', weekly: 'per week', monthly: 'per month' };
const IN_PERIOD: Record<LimitPeriod, string> = { daily: 'today', weekly: 'this week', monthly: 'this month' };

/** The amount Approve sets, picodollars in whole cents: twice a positive USD limit; null: nothing to double. */
export function proposedIncrease(limit: Pico | null, currency: string | null): Pico | null {
  if (limit === null || limit <= 0n || currency !== 'USD') return null;
  return ((limit * 2n) / PICO_PER_CENT) * PICO_PER_CENT;
}

export function askIncreaseRequests(facts: readonly PendingIncreaseFact[]): {
  asked: AskedIncrease[];
  observations: AlertObservation[];
} {
  const asked: AskedIncrease[] = [];
  const observations: AlertObservation[] = [];
  for (const f of facts) {
    const offered = proposedIncrease(f.limit, f.currency);
    asked.push({
      requestId: f.requestId,
      userId: f.userId,
      period: f.period,
      currency: f.currency ?? 'USD',
      limitMinor: f.limit === null ? null : f.limit / PICO_PER_CENT,
      amountMinor: offered === null ? null : offered / PICO_PER_CENT,
      requestedAt: f.requestedAt,
    });
    const who = singleLineName(f.name ?? '') || (f.email === null ? f.userId : singleLineName(f.email));
    const usd = f.currency === 'USD';
    const limitText = f.limit === null || !usd ? 'none keywarden can read' : `${formatUsd(f.limit)} ${PER[f.period]}`;
    observations.push({
      kind: 'spend.limit_changed',
      scopeType: 'member',
      scopeId: f.userId,
      severity: 'info',
      period: `increase:${f.requestId}`,
      title: `Member "${who}" asks for a higher ${f.period} spend limit`,
      summary:
        offered === null
          ? 'There is no current limit in dollars to raise from here: set the new limit in the Console, or Deny.'
          : `Approve raises it to ${formatUsd(offered)} ${PER[f.period]} (twice the current limit); Deny keeps it. Either may also be answered in the Console.`,
      scopeName: f.name,
      workspaceId: null,
      workspaceName: null,
      keyOwnerEmail: null,
      details: {
        increaseRequestId: f.requestId,
        userId: f.userId,
        limitPeriod: f.period,
        limitUsd: f.limit === null || !usd ? null : picoToUsd(f.limit),
        periodToDateUsd: f.spent === null || !usd ? null : picoToUsd(f.spent),
        proposedUsd: offered === null ? null : picoToUsd(offered),
        requestedAt: f.requestedAt.toISOString(),
      },
      fields: [
        { label: 'Member', value: who },
        { label: 'Limit now', value: limitText },
        ...(f.spent === null || !usd ? [] : [{ label: `Spent ${IN_PERIOD[f.period]}`, value: formatUsd(f.spent) }]),
        ...(offered === null ? [] : [{ label: 'Approve sets', value: `${formatUsd(offered)} ${PER[f.period]}` }]),
        { label: 'Asked', value: f.requestedAt.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' },
      ],
      links: [{ label: 'Spend limits in the Console', url: CONSOLE_LIMITS_URL }],
    });
  }
  return { asked, observations };
}

/**
 * A press on a request's Approve or Deny, decided in three steps around the shell's reads and writes (src/actions/
 * increase.ts): before the claim (keywarden's row), after reading the request again (the API's state and the
 * member's live limit), and after an answer whose outcome was lost (the API's state read back).
 */
type Answer = 'approve' | 'deny';
type Ended = 'approved' | 'denied';

/** keywarden's row of the request, as the press finds it. */
interface PressedRequest {
  state: 'pending' | 'approving' | 'denying' | Ended;
  /** Minor units (cents); null: the message offered Deny only. */
  amountMinor: bigint | null;
  currency: string;
}

type BeforeClaim = { do: 'claim' } | { do: 'nothing'; answered: Ended } | { do: 'refuse'; reason: 'not_offered' };

export function beforeClaim(row: PressedRequest, answer: Answer): BeforeClaim {
  if (row.state === 'approved' || row.state === 'denied') return { do: 'nothing', answered: row.state };
  if (answer === 'approve' && (row.amountMinor === null || row.currency !== 'USD')) {
    return { do: 'refuse', reason: 'not_offered' };
  }
  return { do: 'claim' };
}

/**
 * The claim was taken: another press holds the request, or has just answered it. The audit says which: an answer
 * given meanwhile as `unchanged:answered:<state>`, a press still at the Admin API as `unchanged:in_progress`.
 */
export function claimTaken(
  current: PressedRequest['state'] | null,
): { outcome: `unchanged:answered:${Ended}`; answered: Ended } | { outcome: 'unchanged:in_progress' } {
  if (current === 'approved' || current === 'denied') {
    return { outcome: `unchanged:answered:${current}`, answered: current };
  }
  return { outcome: 'unchanged:in_progress' };
}

/** The request as the Admin API has it at the press: its status, and the member's USD limit while pending. */
interface LiveRequest {
  status: 'pending' | Ended;
  /** Picodollars; null: no USD limit in the request's summary. */
  limitUsd: Pico | null;
}

type PressPlan =
  | { do: 'approve'; amountMinor: bigint }
  | { do: 'deny' }
  | { do: 'answered_elsewhere'; status: Ended }
  | { do: 'earlier_press_applied'; status: Ended }
  | { do: 'refuse'; reason: 'limit_already_higher'; limit: Pico };

/**
 * After the claim and a fresh read; `row` is keywarden's row as the press found it (it passed beforeClaim). A row
 * still claimed was taken over from a stale press (its outcome unknown): ended as that press asked, it is that press's
 * answer, applied with its reply lost, not one given outside keywarden.
 */
export function planPress(row: PressedRequest, answer: Answer, live: LiveRequest): PressPlan {
  if (live.status !== 'pending') {
    const earlier = row.state === (live.status === 'approved' ? 'approving' : 'denying');
    return { do: earlier ? 'earlier_press_applied' : 'answered_elsewhere', status: live.status };
  }
  if (answer === 'deny') return { do: 'deny' };
  const amountMinor = row.amountMinor!;
  // a limit raised meanwhile (in the Console, or by approving another request of the member) to the proposed amount
  // or above: approving now would lower it
  if (live.limitUsd !== null && live.limitUsd >= amountMinor * PICO_PER_CENT) {
    return { do: 'refuse', reason: 'limit_already_higher', limit: live.limitUsd };
  }
  return { do: 'approve', amountMinor };
}

type AfterLostAnswer = { do: 'settle'; state: Ended; byThisPress: boolean } | { do: 'release' };

/**
 * The answer's POST failed without a definite refusal, so it may have been applied: the request read back says.
 * Ended as this press asked: its answer (the claim kept every other press out); ended the other way: answered
 * outside keywarden meanwhile; still pending: nothing changed.
 */
export function afterLostAnswer(answer: Answer, readBack: 'pending' | Ended): AfterLostAnswer {
  if (readBack === 'pending') return { do: 'release' };
  return { do: 'settle', state: readBack, byThisPress: readBack === (answer === 'approve' ? 'approved' : 'denied') };
}
