import type { Repos } from '../db/repos/index.ts';

/** The name digests call the organization by: the policy's `organization.name`, else the name the Admin API gives. */
export async function organizationName(repos: Pick<Repos, 'keys'>, configured: string): Promise<string> {
  if (configured.trim()) return configured;
  return (await repos.keys.organizationName()) ?? 'Your organization';
}
