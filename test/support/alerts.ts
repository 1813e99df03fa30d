import type { AlertObservation } from '../../src/alerts/core/lifecycle.ts';

/** A runaway-spend observation on key `keyId` (shown as `name`), as the delivery tests raise it. */
export function runawayObservation(keyId: string, name = keyId): AlertObservation {
  return {
    kind: 'usage.runaway',
    severity: 'critical',
    scopeType: 'key',
    scopeId: keyId,
    workspaceId: 'wrkspc_1',
    period: '',
    title: `Runaway spend on key ${name}`,
    summary: 'The key spent $412.50 in the last 10 minutes.',
    fields: [{ label: 'Key', value: name }],
    links: [{ label: 'Open in Console', url: 'https://console.anthropic.com/settings/keys' }],
    details: {},
  };
}
