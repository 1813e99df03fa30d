import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** docs/webhook-payload.schema.json, compiled once: every delivery a test sees is checked against the documented shape. */
const schema = JSON.parse(readFileSync(new URL('../../docs/webhook-payload.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
// ajv-formats is CommonJS: the default import is its module.exports, which carries the plugin as `default` too
addFormatsModule.default(ajv);
const validate = ajv.compile(schema);

/** The schema's complaints about a payload, one line each; empty when it conforms. */
export function webhookSchemaErrors(payload: unknown): string[] {
  if (validate(payload)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}
