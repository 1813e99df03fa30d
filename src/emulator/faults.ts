import { z } from 'zod';
import { seededRandom } from './hash.ts';

/**
 * Fault injection: what the real Admin API does on a bad day. Two ways to ask: `script`, the exact answers to the
 * next requests in order (for tests: "a 429 with retry-after 2, then normal"), and shares, drawn from a seeded
 * sequence so a drill is repeatable (for the demo and soak runs). Faults apply to Admin API paths only, never to
 * the /_emulator/ control endpoints.
 */

const step = z.strictObject({
  /** Answer with this status and the API's error body for it. */
  status: z.int().min(400).max(599).optional(),
  /** With a 429 (or any status): the `retry-after` header, in seconds. */
  retryAfterSeconds: z.number().min(0).optional(),
  /** Wait this long before answering (whatever the answer). */
  delayMs: z.number().min(0).optional(),
  /** Never answer: the connection stays open until the client gives up or the emulator closes. */
  hang: z.boolean().optional(),
});

export type FaultStep = z.output<typeof step>;

export const faultOptionsSchema = z.strictObject({
  /** The next requests get these answers, one each, in order; then the shares apply. */
  script: z.array(step).default([]),
  /** Share of requests answered 429 rate_limit_error with `retry-after: retryAfterSeconds`. */
  rateLimitedShare: z.number().min(0).max(1).default(0),
  retryAfterSeconds: z.number().min(0).default(1),
  /** Share answered 500 api_error. */
  serverErrorShare: z.number().min(0).max(1).default(0),
  /** Share answered 529 overloaded_error. */
  overloadedShare: z.number().min(0).max(1).default(0),
  /** Share answered only after `slowMs`. */
  slowShare: z.number().min(0).max(1).default(0),
  slowMs: z.number().min(0).default(3000),
  /** Share never answered. */
  hangShare: z.number().min(0).max(1).default(0),
  /** Only requests whose path starts with this are affected (e.g. /v1/organizations/usage_report). */
  pathPrefix: z.string().default('/v1/'),
  seed: z.int().default(1),
});

export type FaultOptions = z.input<typeof faultOptionsSchema>;
type Faults = z.output<typeof faultOptionsSchema>;

export class FaultPlan {
  readonly options: Faults;
  readonly #script: FaultStep[];
  readonly #random: () => number;

  constructor(options: FaultOptions = {}) {
    this.options = faultOptionsSchema.parse(options);
    this.#script = [...this.options.script];
    this.#random = seededRandom(this.options.seed);
  }

  /** What to do with the next request to `path`: an empty step means answer normally. */
  next(path: string): FaultStep {
    if (!path.startsWith(this.options.pathPrefix)) return {};
    const scripted = this.#script.shift();
    if (scripted) return scripted;
    const o = this.options;
    const out: FaultStep = {};
    const draw = this.#random();
    if (draw < o.rateLimitedShare) {
      out.status = 429;
      out.retryAfterSeconds = o.retryAfterSeconds;
    } else if (draw < o.rateLimitedShare + o.serverErrorShare) out.status = 500;
    else if (draw < o.rateLimitedShare + o.serverErrorShare + o.overloadedShare) out.status = 529;
    if (this.#random() < o.slowShare) out.delayMs = o.slowMs;
    if (this.#random() < o.hangShare) out.hang = true;
    return out;
  }

  /** Scripted steps not used yet. */
  get pending(): number {
    return this.#script.length;
  }
}
