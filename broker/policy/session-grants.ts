// Which group roles a session's database role is made a member of (`targets.<name>.session_roles`): the first
// grant whose selectors all match the identity, as a rule's selectors match it (globs on subjects, builds and
// claims; a scope matches the ceiling of a broker-minted token's `scope`), else the default. Pure.
import { identityScope } from '../identity/limits.js';
import type { Identity, Kind } from '../types.js';
import { claimMatches, globMatch } from './glob.js';

export interface SessionGrant {
  scopes?: Kind[];
  claims?: Record<string, string>;
  subjects?: string[];
  builds?: string[];
  roles: string[];
}

export interface SessionGrants {
  grants: readonly SessionGrant[];
  /** The roles of an identity no grant matches; empty: none (the login is refused). */
  default: readonly string[];
}

/** Whether every selector of a grant matches the identity (a grant with none matches nobody: that is `default`). */
export function grantMatches(g: SessionGrant, identity: Identity): boolean {
  if (!g.scopes && !g.claims && !g.subjects && !g.builds) return false;
  if (g.subjects && !g.subjects.some((s) => globMatch(s, identity.subject))) return false;
  if (g.builds && !g.builds.some((b) => identity.build !== null && globMatch(b, identity.build))) return false;
  if (g.scopes) {
    const scope = identityScope(identity);
    if (!scope || 'error' in scope || !g.scopes.includes(scope.ceiling)) return false;
  }
  for (const [name, glob] of Object.entries(g.claims ?? {})) {
    const value = name === 'sub' ? identity.subject : name === 'build' ? identity.build : identity.claims[name];
    if (!claimMatches(glob, value)) return false;
  }
  return true;
}

/** The group roles of a session of this identity, and which grant gave them (null: the default). */
export function sessionGroupRoles(config: SessionGrants, identity: Identity): { roles: string[]; grant: number | null } {
  const i = config.grants.findIndex((g) => grantMatches(g, identity));
  if (i >= 0) return { roles: [...new Set(config.grants[i]!.roles)], grant: i };
  return { roles: [...new Set(config.default)], grant: null };
}
