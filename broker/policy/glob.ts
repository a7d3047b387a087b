// Glob matching for rule fields (targets, tables, claims, subjects): `*` any run, `?` one character.

const cache = new Map<string, RegExp>();

export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (!re) {
    const body = glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
    cache.set(glob, re);
  }
  return re;
}

export function globMatch(glob: string, value: string): boolean {
  return globToRegExp(glob).test(value);
}

/** A claim value matches if it (or, for an array, any element of it) matches the glob. */
export function claimMatches(glob: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.some((v) => claimMatches(glob, v));
  if (typeof value === 'object') return false;
  return globMatch(glob, String(value));
}
