// What `jit doctor` finds: one line per check of one target, ok / warn / FAIL with its reason.

export type Status = 'ok' | 'warn' | 'FAIL';

/** One check of one target. */
export interface Finding {
  check: 'password file' | 'reachable' | 'privileges' | 'session roles';
  status: Status;
  detail: string;
  /** `reachable`: the server's version as it reports it. */
  version?: string;
}

/**
 * `targets.<name>.session_roles`, read tolerantly (the key may be absent from an older config schema): the prefix of
 * the roles the broker creates per session, and every group role it may grant them (`default` and each grant's `roles`).
 */
export interface SessionRolesProbe {
  prefix: string;
  roles: string[];
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : []);

/** The session roles of a configured target (null: none configured). */
export function sessionRolesOf(target: object): SessionRolesProbe | null {
  const raw = 'session_roles' in target ? target.session_roles : undefined;
  if (!raw || typeof raw !== 'object') return null;
  const prefix = 'prefix' in raw && typeof raw.prefix === 'string' ? raw.prefix : 'jit_';
  const grants = 'grants' in raw && Array.isArray(raw.grants) ? (raw.grants as unknown[]) : [];
  const roles = [
    ...strings('default' in raw ? raw.default : undefined),
    ...grants.flatMap((g) => (g && typeof g === 'object' && 'roles' in g ? strings(g.roles) : [])),
  ];
  return { prefix, roles: [...new Set(roles)] };
}

/** `<prefix>doctor_<8 hex>`: the temporary login role the session-roles check creates and drops. */
export function probeRoleName(prefix: string, random: string): string {
  return `${prefix}doctor_${random}`;
}

export const SEE_LEAST_PRIVILEGE = 'see docs/operations.md "Least-privilege upstream accounts"';
