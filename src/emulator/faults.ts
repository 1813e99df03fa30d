import { z } from 'zod';
import { seededRandom } from './random/hash.ts';

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
  /** With `status`: the error body's `details.error_code` (`api_key_requester_unconfirmed`, …). */
  errorCode: z.string().min(1).optional(),
  /** With `status`: an `x-should-retry` header, the API's own say on whether to send again. */
  shouldRetry: z.boolean().optional(),
  /** Wait this long before answering (whatever the answer). */
  delayMs: z.number().min(0).optional(),
  /** Never answer: the connection stays open until the client gives up or the emulator closes. */
  hang: z.boolean().optional(),
  /** Only for a request whose path starts with this; the steps before it wait for their own requests. */
  path: z.string().optional(),
  // ── malformed answers ──
  /** Answer with this text instead, status 200 unless `status` says (an outage page, a proxy's error). */
  body: z.string().optional(),
  /** With `body`: its content-type. Default application/json. */
  contentType: z.string().optional(),
  /**
   * Answer normally, but with these changes to the real answer's JSON: `path` is dot-separated (`data.0.id`),
   * `*` stands for every element or key; `value` sets (any JSON), `remove: true` deletes.
   */
  patch: z
    .array(z.strictObject({ path: z.string().min(1), value: z.json().optional(), remove: z.boolean().optional() }))
    .optional(),
  /** Answer normally, but cut the body after this many bytes (a dropped connection, a proxy's size cap). */
  truncateAt: z.int().min(0).optional(),
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
  /**
   * Usage (and cost) shows this many minutes later than the scenario's freshness delay says: the API's data
   * pipeline running behind, for as long as the fault is set. Minutes it held back show again once it is cleared.
   */
  dataDelayMinutes: z.int().min(0).default(0),
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
    const at = this.#script.findIndex((s) => s.path === undefined || path.startsWith(s.path));
    if (at >= 0) return this.#script.splice(at, 1)[0]!;
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

/**
 * The real answer as a faulty step changes it: patched, then truncated. Null when the step leaves it alone.
 * Pure, so a test can see what a drill's answer looks like.
 */
export function malformedBody(body: object, step: FaultStep): string | null {
  if (step.patch === undefined && step.truncateAt === undefined) return null;
  let value: unknown = structuredClone(body);
  for (const p of step.patch ?? []) value = patchAt(value, p.path.split('.'), p.remove ? REMOVE : p.value);
  const text = JSON.stringify(value);
  return step.truncateAt === undefined ? text : Buffer.from(text).subarray(0, step.truncateAt).toString('utf8');
}

const REMOVE = Symbol('remove');

function patchAt(node: unknown, path: string[], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (node === null || typeof node !== 'object') return node;
  const container = node as Record<string, unknown>;
  const keys = head === '*' ? Object.keys(container) : [head];
  for (const key of keys) {
    // a missing key is created only at the end of the path: `*` over a list must not add a field named "*"
    if (!(key in container) && rest.length > 0) continue;
    const next = patchAt(container[key], rest, value);
    if (next === REMOVE) delete container[key];
    else container[key] = next;
  }
  return container;
}
