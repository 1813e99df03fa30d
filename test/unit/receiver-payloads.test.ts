import { describe, expect, it } from 'vitest';
import type { AlertKind } from '../../src/kinds.ts';
import type { AlertFacts, DigestMessage, Notification } from '../../src/notify/message.ts';
import { renderPagerDutyEvent } from '../../src/notify/pagerduty.ts';
import { renderTeamsMessage, teamsText } from '../../src/notify/teams.ts';
import { renderWebhookAlert, renderWebhookDigest } from '../../src/notify/webhook-payload.ts';
import { webhookSchemaErrors } from '../support/webhook-schema.ts';

const CTX = { id: 'keywarden-notification-7', organization: 'Acme AI' };

function facts(over: Partial<AlertFacts> & Pick<AlertFacts, 'kind' | 'details'>): AlertFacts {
  return {
    fingerprint: `${over.kind}|key|apikey_01|`,
    severity: 'warning',
    title: 'An alert',
    scope: { type: 'key', id: 'apikey_01', name: 'Production Backend' },
    workspace: { id: 'wrkspc_01', name: 'Customer chatbot' },
    ...over,
  };
}

function note(kind: AlertKind, over: Partial<Notification> = {}): Notification {
  return {
    kind,
    event: 'firing',
    severity: 'warning',
    title: 'An alert',
    summary: 'Something to know.',
    fields: [{ label: 'Key', value: 'Production Backend' }],
    links: [{ label: 'Cost in the Console', url: 'https://console.anthropic.com/settings/cost' }],
    ...over,
  };
}

const SPEND = facts({
  kind: 'spend.threshold',
  details: {
    month: '2026-11',
    limitUsd: '1000.000000000000',
    monthToDateUsd: '823.456789000000',
    p50Usd: '1100.000000000000',
    p90Usd: '1290.500000000000',
    threshold: 0.8,
  },
});
const RUNAWAY = facts({
  kind: 'usage.runaway',
  severity: 'critical',
  details: {
    currentHourlyUsd: 412.5,
    typicalHourlyUsd: 3.1,
    thresholdHourlyUsd: 15.5,
    startedAt: '2026-11-29T09:50:00.000Z',
  },
});
const BLOCKED = facts({
  kind: 'rotation.blocked',
  scope: { type: 'key', id: 'apikey_01', name: 'Production Backend' },
  details: { deadline: '2026-11-20T00:00:00.000Z', successor: 'apikey_02' },
});

describe('webhook payload v1', () => {
  it('spend: amounts as decimal strings in USD, the threshold as a fraction, the percentage used to a hundredth', () => {
    const p = renderWebhookAlert(note('spend.threshold'), SPEND.fingerprint, [SPEND], CTX);
    expect(webhookSchemaErrors(p)).toEqual([]);
    expect(p).toMatchObject({ version: 1, id: CTX.id, type: 'spend.threshold', state: 'firing' });
    expect(p.alerts[0]?.spend).toEqual({
      month: '2026-11',
      limit_usd: '1000.00',
      month_to_date_usd: '823.456789',
      projected_usd: '1100.00',
      projected_p90_usd: '1290.50',
      threshold: 0.8,
      percentage_used: 82.34,
    });
    expect(p.alerts[0]?.scope).toEqual({ type: 'key', id: 'apikey_01', name: 'Production Backend' });
  });

  it('runaway: the rate and the baseline it is measured against', () => {
    const p = renderWebhookAlert(note('usage.runaway'), RUNAWAY.fingerprint, [RUNAWAY], CTX);
    expect(webhookSchemaErrors(p)).toEqual([]);
    expect(p.alerts[0]?.runaway).toEqual({
      rate_usd_per_hour: '412.50',
      baseline_usd_per_hour: '3.10',
      threshold_usd_per_hour: '15.50',
      since: '2026-11-29T09:50:00.000Z',
    });
  });

  it('rotation: the deadline and the successor', () => {
    const p = renderWebhookAlert(note('rotation.blocked', { event: 'resolved' }), BLOCKED.fingerprint, [BLOCKED], CTX);
    expect(webhookSchemaErrors(p)).toEqual([]);
    expect(p.state).toBe('resolved');
    expect(p.alerts[0]?.rotation).toEqual({
      deadline: '2026-11-20T00:00:00.000Z',
      successor: { id: 'apikey_02' },
      stage: null,
    });
  });

  it('a digest is a payload of its own kind, valid against the same schema', () => {
    const digest: DigestMessage = {
      kind: 'digest.finance',
      title: 'Finance digest: Acme AI, Mon 16 Nov 2026',
      summary: 'Spend this month so far.',
      fields: [{ label: 'Month to date', value: '$1,234.56' }],
      sections: [
        {
          title: 'Top keys',
          columns: [{ label: 'Key' }, { label: 'Spend', align: 'right' }],
          rows: [['Production Backend', '$800.00']],
          empty: 'No spend yet.',
          more: 3,
        },
      ],
      links: [{ label: 'Cost in the Console', url: 'https://console.anthropic.com/settings/cost' }],
    };
    const p = renderWebhookDigest(digest, null, '2026-11-16', CTX);
    expect(webhookSchemaErrors(p)).toEqual([]);
    expect(p.state).toBe('digest');
    expect(p.spend).toBeUndefined();
    // the finance digest's chart numbers become decimal figures: per day, month to date, limit, projection
    const chart = {
      title: 'Acme AI: spend in November 2026',
      monthLabel: 'November 2026',
      timezone: 'Europe/Paris',
      daysInMonth: 30,
      cumulativeUsd: [10.1, 30.35, 30.35, 45.123456],
      projection: { p10: 250, p50: 300.5, p90: 410.25 },
      limitUsd: 1000,
    };
    const finance = renderWebhookDigest(digest, chart, '2026-11-04', CTX);
    expect(webhookSchemaErrors(finance)).toEqual([]);
    expect(finance.spend).toEqual({
      date: '2026-11-04',
      timezone: 'Europe/Paris',
      month_to_date_usd: '45.123456',
      daily_usd: ['10.10', '20.25', '0.00', '14.773456'],
      limit_usd: '1000.00',
      projected_usd: '300.50',
      projected_p10_usd: '250.00',
      projected_p90_usd: '410.25',
    });
  });

  it('the schema refuses what it does not document (a float amount, an unknown field)', () => {
    const p = renderWebhookAlert(note('spend.threshold'), SPEND.fingerprint, [SPEND], CTX);
    const floatAmount = structuredClone(p) as unknown as { alerts: { spend: { limit_usd: unknown } }[] };
    floatAmount.alerts[0]!.spend.limit_usd = 1000;
    expect(webhookSchemaErrors(floatAmount)).not.toEqual([]);
    expect(webhookSchemaErrors({ ...p, extra: true })).not.toEqual([]);
  });
});

const HOSTILE = [
  '<!channel>',
  '"}',
  'a\u0000b\u001b[31mred\u202eevil\nnext line',
  '[pay here](https://evil.example)',
  '**bold** _it_',
  '1. first\n+ item',
];

describe.each(HOSTILE)('a key named %j', (name) => {
  const alert = facts({
    kind: 'usage.runaway',
    details: RUNAWAY.details,
    scope: { type: 'key', id: 'apikey_01', name },
  });
  const n = note('usage.runaway', {
    title: `Runaway spend on key "${name}"`,
    summary: `The key ${name} spent $412.50.`,
    fields: [{ label: 'Key', value: name }],
    items: [{ title: name, fields: [{ label: 'Key', value: name }] }],
  });

  it('arrives in the webhook payload as exactly those characters, in valid JSON', () => {
    const body = JSON.stringify(renderWebhookAlert(n, alert.fingerprint, [alert], CTX));
    const back = JSON.parse(body);
    expect(back.alerts[0].scope.name).toBe(name);
    expect(back.title).toBe(`Runaway spend on key "${name}"`);
    expect(webhookSchemaErrors(back)).toEqual([]);
  });

  it('cannot break the Teams card: valid JSON, no markup of its own, no control characters', () => {
    const body = JSON.stringify(renderTeamsMessage(n));
    const card = JSON.parse(body).attachments[0].content;
    const texts: string[] = JSON.stringify(card.body).match(/"(text|value|title)":"(?:[^"\\]|\\.)*"/g) ?? [];
    for (const t of texts) {
      const value = JSON.parse(`{${t}}`) as Record<string, string>;
      const text = Object.values(value)[0]!;
      // the card's own link line is markdown on purpose
      if (text.startsWith('[Cost in the Console](')) continue;
      // every markdown character of the name is escaped, so nothing in it can open a link or a style
      expect(text).not.toMatch(/(?<!\\)[[\]*_<>+]|^\s*\d+\./m);
      expect(text).not.toMatch(/\p{Cf}|(?!\n)\p{Cc}/u);
    }
    expect(card.body[0].text).toBe(teamsText(`⚠️ ${n.title}`));
  });

  it('cannot break the PagerDuty summary: one line, no control characters, at most 1024 characters', () => {
    const event = renderPagerDutyEvent({ ...n, title: `${n.title} ${'x'.repeat(2000)}` }, alert.fingerprint, alert);
    const summary = event.payload!.summary;
    expect(summary).not.toMatch(/[\p{Cc}\p{Cf}]/u);
    expect(summary.length).toBeLessThanOrEqual(1024);
    expect(JSON.parse(JSON.stringify(event)).payload.custom_details.Key).toBe(name);
  });
});

describe('PagerDuty events', () => {
  it('fire → trigger with the figures; resolved → resolve by the same dedup_key; a long fingerprint is hashed', () => {
    const trigger = renderPagerDutyEvent(note('usage.runaway', { severity: 'critical' }), RUNAWAY.fingerprint, RUNAWAY);
    expect(trigger).toMatchObject({
      event_action: 'trigger',
      dedup_key: RUNAWAY.fingerprint,
      payload: { severity: 'critical', source: 'keywarden', class: 'usage.runaway', group: 'Customer chatbot' },
      links: [{ href: 'https://console.anthropic.com/settings/cost', text: 'Cost in the Console' }],
    });
    expect(trigger.payload?.custom_details.alert).toMatchObject({ runaway: { rate_usd_per_hour: '412.50' } });
    const resolve = renderPagerDutyEvent(note('usage.runaway', { event: 'resolved' }), RUNAWAY.fingerprint, RUNAWAY);
    expect(resolve).toEqual({ event_action: 'resolve', dedup_key: RUNAWAY.fingerprint, client: 'keywarden' });
    const long = renderPagerDutyEvent(note('usage.runaway'), 'x'.repeat(300), null);
    expect(long.dedup_key).toMatch(/^keywarden-sha256:[0-9a-f]{64}$/);
    expect(renderPagerDutyEvent(note('usage.runaway'), 'x'.repeat(300), null).dedup_key).toBe(long.dedup_key);
  });
});
