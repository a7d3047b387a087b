// Small helpers over libpg-query's JSON parse tree, shared by the PostgreSQL classifier's modules.
// The JSON leaves out zero values: `{ ival: {} }` is 0, `{ boolval: {} }` is false, `{ sval: {} }` is ''.
import type { FunctionRef } from '../catalog/types.js';
import type { Kind } from '../types.js';

/** A parse-tree object: libpg-query's JSON, read without trusting its shape. */
export type Node = Record<string, unknown>;

export function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function node(v: unknown): Node | undefined {
  return isNode(v) ? v : undefined;
}

export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The string of a `{ String: { sval } }` node. */
export function sval(v: unknown): string | undefined {
  const s = node(node(v)?.String);
  if (!s) return undefined;
  return typeof s.sval === 'string' ? s.sval : '';
}

/** The strings of a name list such as `funcname` or a DROP object (`[{String}, …]`); null if any is not a string. */
export function names(v: unknown): string[] | null {
  const out: string[] = [];
  for (const item of list(v)) {
    const s = sval(item);
    if (s === undefined) return null;
    out.push(s);
  }
  return out;
}

/** The name items of a `{ List: { items } }` node (how DROP and COMMENT name most objects). */
export function listNames(v: unknown): string[] | null {
  const l = node(node(v)?.List);
  return l ? names(l.items) : null;
}

/** The string a constant expression denotes: 'x', E'x', $$x$$, U&'x', 'x'::text, 'a' || 'b'. Else null. */
export function literalString(v: unknown): string | null {
  const n = node(v);
  if (!n) return null;
  const c = node(n.A_Const);
  if (c) {
    if (c.isnull) return null;
    const s = node(c.sval);
    if (!s) return null;
    return typeof s.sval === 'string' ? s.sval : '';
  }
  const cast = node(n.TypeCast);
  if (cast) {
    const type = names(node(cast.typeName)?.names)?.pop()?.toLowerCase();
    return type && ['text', 'varchar', 'bpchar', 'name', 'unknown'].includes(type) ? literalString(cast.arg) : null;
  }
  const e = node(n.A_Expr);
  if (e && e.kind === 'AEXPR_OP' && names(e.name)?.join('.') === '||' && e.lexpr !== undefined) {
    const l = literalString(e.lexpr);
    const r = l === null ? null : literalString(e.rexpr);
    return l === null || r === null ? null : l + r;
  }
  return null;
}

/** What a nested analysis found: kinds, tables, and the calls and operators it runs, merged into the enclosing statement's. */
export interface Found {
  kinds: Set<Kind>;
  tables: Set<string>;
  /** Function calls that run, by `schema|name|args` (see refKey). */
  calls: Map<string, FunctionRef>;
  /** Operator names used where they run. */
  operators: Set<string>;
  /** Type names cast to where it runs (a domain's CHECK, a user-defined cast's function). */
  casts: Set<string>;
  /** Why it is of a kind its text does not show (`unknown`: what could not be seen through), first reason per kind. */
  why: Map<Kind, string>;
}

export function found(): Found {
  return { kinds: new Set(), tables: new Set(), calls: new Map(), operators: new Set(), casts: new Set(), why: new Map() };
}

/** Add `kind` to `f`, saying why (the first reason given for a kind is kept). */
export function because(f: Found, kind: Kind, why: string): void {
  f.kinds.add(kind);
  if (!f.why.has(kind)) f.why.set(kind, why);
}

/** A Found of one kind, with its reason. */
export function oneKind(kind: Kind, why: string): Found {
  const f = found();
  because(f, kind, why);
  return f;
}

export function refKey(r: FunctionRef): string {
  return `${r.schema ?? ''}|${r.name}|${r.args ?? ''}${r.maybe ? '?' : ''}`;
}

/** Merge everything; `what: 'effects'` leaves calls and operators out (a body that does not run now). */
export function merge(into: Found, from: Found, what: 'all' | 'effects' = 'all'): void {
  for (const k of from.kinds) into.kinds.add(k);
  for (const [k, why] of from.why) if (!into.why.has(k)) into.why.set(k, why);
  for (const t of from.tables) into.tables.add(t);
  if (what === 'effects') return;
  for (const [key, r] of from.calls) into.calls.set(key, r);
  for (const o of from.operators) into.operators.add(o);
  for (const t of from.casts) into.casts.add(t);
}

/** Classify SQL text found inside a statement (a function body, an EXECUTE literal) one level deeper. */
export type SubClassify = (sql: string, depth: number) => Found;
