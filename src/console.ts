/** Pages of the Anthropic Console that alerts and digests link to. */
export const CONSOLE_USAGE_URL = 'https://console.anthropic.com/usage';
export const CONSOLE_COST_URL = 'https://console.anthropic.com/settings/cost';
export const CONSOLE_KEYS_URL = 'https://console.anthropic.com/settings/keys';
export const CONSOLE_ADMIN_KEYS_URL = 'https://console.anthropic.com/settings/admin-keys';
export const CONSOLE_LIMITS_URL = 'https://console.anthropic.com/settings/limits';
