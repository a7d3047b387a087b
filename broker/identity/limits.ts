// What a token the broker minted is limited to: its scope (a ceiling on statement kinds), its targets,
// and its place in a delegation chain. Pure functions over claims, shared by the token exchange (which
// never widens them), the session (targets at login) and the policy (scope before any rule).
import { KINDS, type Identity, type Kind } from '../types.js';

const LEVEL = new Map<Kind, number>(KINDS.map((k, i) => [k, i]));

/**
 * A scope is a ceiling: `read` allows reads only, `write` reads and writes, `ddl` those and schema
 * changes, and so on up the kinds' order (read < write < ddl < destructive < privilege < admin <
 * unknown). A space-separated list (`read write`) means its most severe element.
 */
export type Scope = { ceiling: Kind } | { error: string };

/** Parses a scope string (a `scope` claim or request parameter). */
export function parseScope(text: string): Scope {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0) return { error: 'the scope is empty' };
  let ceiling: Kind | null = null;
  for (const w of words) {
    const k = KINDS.find((x) => x === w);
    if (!k) return { error: `'${w.slice(0, 40)}' is not a scope (expected statement kinds: ${KINDS.join(', ')})` };
    if (ceiling === null || LEVEL.get(k)! > LEVEL.get(ceiling)!) ceiling = k;
  }
  return { ceiling: ceiling! };
}

/** Whether a statement of `kind` is within a scope whose ceiling is `ceiling`. */
export function scopeAllows(ceiling: Kind, kind: Kind): boolean {
  return LEVEL.get(kind)! <= LEVEL.get(ceiling)!;
}

/**
 * The scope limit of an identity: null when its token carries no `scope` claim (only tokens the broker
 * minted keep one); an error when the claim is there but not understood (everything is then refused).
 */
export function identityScope(identity: Pick<Identity, 'claims'>): Scope | null {
  const s = identity.claims['scope'];
  if (s === undefined) return null;
  if (typeof s !== 'string') return { error: 'the scope claim is not a string' };
  return parseScope(s);
}

/** The most severe kind of `kinds` that the scope does not allow, or null when it allows them all. */
export function outOfScope(ceiling: Kind, kinds: readonly Kind[]): Kind | null {
  let worst: Kind | null = null;
  for (const k of kinds) if (!scopeAllows(ceiling, k) && (worst === null || LEVEL.get(k)! > LEVEL.get(worst)!)) worst = k;
  return worst;
}

/**
 * The targets an identity may log in to: null when unlimited (no `target` claim); the listed names
 * otherwise (a string or an array of strings); an empty list when the claim is malformed (fail closed).
 */
export function identityTargets(identity: Pick<Identity, 'claims'>): string[] | null {
  const t = identity.claims['target'];
  if (t === undefined) return null;
  if (typeof t === 'string' && t !== '') return [t];
  if (Array.isArray(t) && t.length > 0 && t.every((x): x is string => typeof x === 'string' && x !== '')) return [...t];
  return [];
}

/** The `jti`s of the tokens this one was exchanged from, nearest first (the `jit_ancestors` claim). */
export function identityAncestors(identity: Pick<Identity, 'claims'>): string[] {
  const a = identity.claims['jit_ancestors'];
  return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string' && x !== '') : [];
}

/** How many delegations deep a token is: the length of its actor chain. */
export function identityDepth(identity: Pick<Identity, 'actors'>): number {
  return identity.actors.length;
}
