// A PostgreSQL classification refined against the target's catalog: what its calls, operators and views really do.
//
// The classifier judges built-ins by name (pg-functions.ts: admin, set_config, query_to_xml, …; those rules still
// apply); it cannot know what `f()`, `lower(1)` or `SELECT * FROM v` runs on a given database. Here each call is
// resolved the way the server could resolve it, conservatively:
//   - `s.f(…)`: the functions named f in schema s; `f(…)`: the functions named f in EVERY schema (a session can
//     change its search_path, even put pg_catalog after public, with a SET that is a harmless read), in both
//     cases only those that accept the number of arguments written. Names are compared without case (a superset).
//     Every candidate counts (ambiguity takes the most severe). No candidate: `unknown` (a function created since
//     the catalog was read, or none at all) — except attribute notation (`t.f`), which is then a column.
//   - a candidate's kinds: a built-in (pg_catalog, information_schema) that is not VOLATILE, or is a volatile one
//     known to change nothing (SAFE_VOLATILE), is a `read`; another volatile built-in is a `write`. Elsewhere:
//     a procedure is `unknown`; a function in a language whose body the broker cannot read (plperl, plv8, …) is
//     `unknown`, unless it is C (only a superuser creates those: an extension's) and then judged by volatility;
//     VOLATILE or SECURITY DEFINER is `write`, STABLE/IMMUTABLE is `read`; and an SQL or PL/pgSQL function is also
//     what its body does (a STABLE function may call a VOLATILE one), followed through the functions it calls
//     (depth MAX_DEPTH, cycles cut); an aggregate is also what its support functions do.
//   - an operator: every user-defined operator of that name (argument types are not known here), by its function.
//   - a cast to a type (`x::t`, and `t(x)`, which is one when no function t fits): every user-defined cast to a
//     type of that name (whatever from), and a domain's CHECK constraints, by the functions they run.
//   - a view or materialized view (or a table with row-level security policies) named by the statement adds the
//     base relations it reads to the statement's tables (as `schema.name` and `name`), and the kinds of the
//     functions its query (or its policies) call; a base relation that is a sensitive system table is `admin`.
//   - a partitioned table or inheritance parent named without ONLY (or read by such a view or function) adds
//     its partitions and children, every level, to the statement's tables (pg-inherits.ts).
// Results are memoised per snapshot (a WeakMap: a new snapshot starts afresh). The entry point, with what has no
// catalog or a not yet committed one, is pg-refine.ts.
import type { CatalogFunction, CatalogSnapshot, CatalogView, FunctionRef } from '../catalog/types.js';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { classifyPostgres } from './classify-postgres.js';
import { mostSevere } from './decide.js';
import type { Found } from './pg-ast.js';
import { functionDefinitionEffect, viewDefinitionEffect } from './pg-definitions.js';
import { descendantsOf, inheritingTables, namesParent, withDescendants, type Reached } from './pg-inherits.js';
import { SENSITIVE_RELATIONS } from './pg-nodes.js';
import { SUBSCRIPTION } from './pg-secrets.js';
import { BUILTIN_SCHEMAS, OPAQUE_TRUSTED, SAFE_EXTENSION_C, safeBuiltin } from './pg-catalog-trusted.js';

/** How deep calls inside function bodies are followed; beyond, `unknown`. */
const MAX_DEPTH = 8;

/** What running something amounts to: kinds (each with why), base tables read. */
interface Effect {
  kinds: Map<Kind, string>;
  tables: Set<string>;
  /** Calls that no catalog function answers (a reload may know them). */
  unresolved: number;
  /** The first view read through, to say so when its base tables decide. */
  via: string | null;
}

function effect(): Effect {
  return { kinds: new Map(), tables: new Set(), unresolved: 0, via: null };
}

function addKind(e: Effect, k: Kind, why: string): void {
  if (!e.kinds.has(k)) e.kinds.set(k, why);
}

function absorb(into: Effect, from: Effect, prefix: string): void {
  for (const [k, why] of from.kinds) addKind(into, k, `${prefix}${why}`);
  for (const t of from.tables) into.tables.add(t);
  into.unresolved += from.unresolved;
}

interface Memo {
  functions: Map<number, Effect>;
  bodies: Map<number, ReturnType<typeof functionDefinitionEffect>>;
  definitions: Map<string, ClassifiedStatement[]>;
  written: Map<string, Found>;
  refined: WeakMap<Classification, Refined>;
}

const memos = new WeakMap<CatalogSnapshot, Memo>();

function memo(snap: CatalogSnapshot): Memo {
  let m = memos.get(snap);
  if (!m) memos.set(snap, (m = { functions: new Map(), bodies: new Map(), definitions: new Map(), written: new Map(), refined: new WeakMap() }));
  return m;
}

const fnName = (f: CatalogFunction) => `${f.schema}.${f.name}()`;
const VOLATILITY = { i: 'IMMUTABLE', s: 'STABLE', v: 'VOLATILE' } as const;

/** The functions a call may resolve to. */
export function candidates(snap: CatalogSnapshot, ref: FunctionRef): CatalogFunction[] {
  const all = snap.functions.get(ref.name.toLowerCase()) ?? [];
  const schema = ref.schema?.toLowerCase();
  return all.filter(
    (f) => (schema === undefined || f.schema.toLowerCase() === schema) && (ref.args === null || (f.args[0] <= ref.args && ref.args <= f.args[1])),
  );
}

class Resolver {
  constructor(
    private readonly snap: CatalogSnapshot,
    private readonly m: Memo,
  ) {}

  /** What calling `f` runs. Memoised only from the top: below, a cycle may have been cut short. */
  fn(f: CatalogFunction, depth = 0, stack: Set<number> = new Set()): Effect {
    const known = this.m.functions.get(f.oid);
    if (known) return known;
    const e = effect();
    if (stack.has(f.oid)) return e; // already being followed further up: its kinds arrive there
    if (depth > MAX_DEPTH) {
      addKind(e, 'unknown', 'which calls functions nested too deep to follow');
      return e;
    }
    stack.add(f.oid);
    this.own(f, e, depth, stack);
    stack.delete(f.oid);
    if (depth === 0) this.m.functions.set(f.oid, e);
    return e;
  }

  private own(f: CatalogFunction, e: Effect, depth: number, stack: Set<number>): void {
    if (BUILTIN_SCHEMAS.has(f.schema)) {
      if (safeBuiltin(f)) addKind(e, 'read', 'a built-in');
      else addKind(e, 'write', 'which is a VOLATILE built-in that may change data');
      return;
    }
    if (f.prokind === 'p') {
      addKind(e, 'unknown', 'which is a procedure');
      return;
    }
    const lang = f.language.toLowerCase();
    if (lang !== 'sql' && lang !== 'plpgsql' && !OPAQUE_TRUSTED.has(lang)) {
      addKind(e, 'unknown', `which is written in ${f.language}, whose body the broker cannot read`);
      return;
    }
    if (f.volatility === 'v' && !(lang === 'c' && SAFE_EXTENSION_C.has(f.name))) addKind(e, 'write', 'which is VOLATILE');
    if (f.securityDefiner) addKind(e, 'write', 'which is SECURITY DEFINER (it runs with its owner’s rights)');
    addKind(e, 'read', `which is ${VOLATILITY[f.volatility]}`);
    for (const oid of f.runs ?? []) this.byOid(oid, e, depth, stack, 'whose support function ');
    if (lang === 'sql' || lang === 'plpgsql') {
      if (f.body === null) {
        addKind(e, 'unknown', 'whose body the broker could not read');
        return;
      }
      let body = this.m.bodies.get(f.oid);
      if (!body) this.m.bodies.set(f.oid, (body = functionDefinitionEffect(f.body)));
      for (const k of body.kinds) addKind(e, k, k === 'unknown' ? 'whose body the broker cannot follow (dynamic SQL, say)' : `whose body is a ${k}`);
      for (const t of body.tables) e.tables.add(t);
      for (const ref of body.calls.values()) this.call(ref, e, depth + 1, stack, 'which ');
      for (const op of body.operators) this.operator(op, e, depth + 1, stack, 'which ');
      for (const ty of body.casts) this.cast(ty, e, depth + 1, stack, 'which ');
    }
  }

  private byOid(oid: number, e: Effect, depth: number, stack: Set<number>, prefix: string): void {
    const g = this.snap.functionsByOid.get(oid);
    if (!g) addKind(e, 'unknown', `${prefix}(oid ${oid}) is not in the catalog`);
    else absorb(e, this.fn(g, depth + 1, stack), `${prefix}${fnName(g)}, `);
  }

  /** A call `ref` made by something whose effect is `e`; `prefix` says by what ("it ", "which "). */
  call(ref: FunctionRef, e: Effect, depth: number, stack: Set<number>, prefix: string): void {
    // `int4(x)` with no such function is a cast written as a call (and may be one even with such functions).
    if (ref.args === 1 && !ref.maybe) this.cast(ref.name.toLowerCase(), e, depth, stack, prefix);
    const found = candidates(this.snap, ref);
    if (!found.length) {
      if (ref.maybe) return; // a column after all
      const written = `${ref.schema ? `${ref.schema}.` : ''}${ref.name}`;
      addKind(
        e,
        'unknown',
        `${prefix}calls ${written}() with ${ref.args ?? '?'} argument${ref.args === 1 ? '' : 's'}, which is not a function in the target's catalog`,
      );
      e.unresolved++;
      return;
    }
    for (const f of found) absorb(e, this.fn(f, depth, stack), `${prefix}calls ${fnName(f)}, `);
  }

  operator(op: string, e: Effect, depth: number, stack: Set<number>, prefix: string): void {
    for (const f of this.snap.operators.get(op) ?? []) absorb(e, this.fn(f, depth, stack), `${prefix}uses operator ${op} (${fnName(f)}), `);
  }

  /** Reading view `v` (`seen`: views already followed for this statement). */
  cast(type: string, e: Effect, depth: number, stack: Set<number>, prefix: string): void {
    for (const f of this.snap.casts?.get(type) ?? []) absorb(e, this.fn(f, depth, stack), `${prefix}casts to ${type}, which runs ${fnName(f)}, `);
  }

  view(v: CatalogView, e: Effect, seen: Set<string>): void {
    const name = v.schema ? `${v.schema}.${v.name}` : v.name;
    if (seen.has(name) || seen.size > 64) return;
    seen.add(name);
    if (v.tables.length) e.via ??= `it reads ${name}, which reads ${v.tables.join(', ')}`;
    for (const t of v.tables) {
      e.tables.add(t);
      const dot = t.lastIndexOf('.');
      const bare = t.slice(dot + 1);
      e.tables.add(bare);
      // pg_subscription: its definition says whether it reads subconninfo (pg-secrets.ts); without one, it may.
      const secret = SENSITIVE_RELATIONS.has(bare) || (bare === SUBSCRIPTION && v.definition === null);
      if (secret && t.slice(0, dot) === 'pg_catalog') addKind(e, 'admin', `it reads ${t} through ${name}`);
    }
    for (const oid of v.functionOids) this.byOid(oid, e, 0, new Set(), `it reads ${name}, which calls `);
    if (WRITTEN.has(v)) this.written(v, name, e, seen);
    else if (v.definition !== null) this.definition(v, name, e, seen);
  }

  /** A view as a session just (re)defined it: its query as written (names resolved as any call is). */
  private written(v: CatalogView, name: string, e: Effect, seen: Set<string>): void {
    let f = this.m.written.get(v.definition!);
    if (!f) this.m.written.set(v.definition!, (f = viewDefinitionEffect(v.definition!)));
    const prefix = `it reads ${name} as this session redefined it, which `;
    for (const k of f.kinds) addKind(e, k, k === 'unknown' ? `${prefix}the broker cannot follow` : `${prefix}is a ${k}`);
    for (const t of f.tables) {
      e.tables.add(t);
      for (const w of viewsNamed(this.snap, t)) this.view(w, e, seen);
    }
    for (const ref of f.calls.values()) this.call(ref, e, 0, new Set(), prefix);
    for (const op of f.operators) this.operator(op, e, 0, new Set(), prefix);
    for (const ty of f.casts) this.cast(ty, e, 0, new Set(), prefix);
  }

  /**
   * What pg_depend leaves out: built-in functions and relations, seen in the printed definition by the name rules
   * and resolved in pg_catalog (where an unqualified name printed under search_path = pg_catalog is).
   */
  private definition(v: CatalogView, name: string, e: Effect, seen: Set<string>): void {
    let sts = this.m.definitions.get(name);
    if (!sts) this.m.definitions.set(name, (sts = classifyPostgres(v.definition!).statements));
    const prefix = `it reads ${name}, which `;
    for (const st of sts) {
      for (const k of st.kinds) addKind(e, k, k === 'unknown' ? `${prefix}the broker cannot follow` : `${prefix}is a ${k}`);
      for (const t of st.tables) {
        e.tables.add(t);
        for (const w of viewsNamed(this.snap, t)) this.view(w, e, seen);
      }
      for (const ref of st.calls ?? []) if (!ref.maybe) this.call(ref.schema ? ref : { ...ref, schema: 'pg_catalog' }, e, 0, new Set(), prefix);
      for (const ty of st.casts ?? []) this.cast(ty, e, 0, new Set(), prefix);
    }
  }
}

/** The views (and policy-guarded tables) a table name of a statement may be. A view redefined without a schema may be any. */
function viewsNamed(snap: CatalogSnapshot, table: string): CatalogView[] {
  const dot = table.lastIndexOf('.');
  const all = snap.views.get(table.slice(dot + 1)) ?? [];
  if (dot < 0) return [...all];
  const schema = table.slice(0, dot);
  return all.filter((v) => v.schema.toLowerCase() === schema || (v.schema === '' && WRITTEN.has(v)));
}

/** Views a session redefined and has not committed, made by writtenView(): judged by their CREATE text. */
const WRITTEN = new WeakSet<CatalogView>();

/** A view (re)defined by `createSql` (CREATE [OR REPLACE] [MATERIALIZED] VIEW …), not yet in the catalog. */
export function writtenView(schema: string | null, name: string, createSql: string): CatalogView {
  const v: CatalogView = { schema: schema ?? '', name, tables: [], functionOids: [], definition: createSql };
  WRITTEN.add(v);
  return v;
}

const overlays = new WeakMap<readonly CatalogView[], WeakMap<CatalogSnapshot, CatalogSnapshot>>();

/** `snap` with `views` added (alongside views of the same name: both may be what a name means). */
export function overlay(snap: CatalogSnapshot, views: readonly CatalogView[]): CatalogSnapshot {
  if (!views.length) return snap;
  let bySnap = overlays.get(views);
  if (!bySnap) overlays.set(views, (bySnap = new WeakMap()));
  let o = bySnap.get(snap);
  if (!o) {
    const merged = new Map(snap.views);
    for (const v of views) merged.set(v.name, [v, ...(merged.get(v.name) ?? [])]);
    bySnap.set(snap, (o = { ...snap, views: merged }));
  }
  return o;
}

export interface Refined {
  classification: Classification;
  /** Calls that no function of the snapshot answers: a fresher snapshot might. */
  unresolved: number;
}

/** Whether a classification names anything the catalog would have to say something about. */
export function needsCatalog(c: Classification): boolean {
  return c.statements.some((st) => st.tables.length > 0 || (st.calls?.length ?? 0) > 0 || (st.operators?.length ?? 0) > 0 || (st.casts?.length ?? 0) > 0);
}

function withKinds(st: ClassifiedStatement, e: Effect, reached: Reached | null): ClassifiedStatement {
  const before = mostSevere(st.kinds);
  const kinds = new Set<Kind>(st.kinds);
  for (const k of e.kinds.keys()) kinds.add(k);
  const tables = new Set(st.tables);
  for (const t of e.tables) tables.add(t);
  const out: ClassifiedStatement = { ...st, kinds: KINDS.filter((k) => kinds.has(k)), tables: reached ? withDescendants(tables, reached) : [...tables] };
  const after = mostSevere(out.kinds);
  const why = after !== before && !st.kinds.includes(after) ? e.kinds.get(after) : undefined;
  const via = reached ? (e.via ? `${e.via}; ${reached.via}` : reached.via) : e.via;
  const through = out.tables.length > st.tables.length ? via : null;
  // A new most severe kind has its own reason; tables read through views add to what the classifier said.
  if (why) out.reason = why;
  else if (through) out.reason = st.reason ? `${st.reason}; ${through}` : through;
  return out;
}

/** One statement refined against `snap`, with how many of its calls no function answers. */
export function refineStatement(st: ClassifiedStatement, snap: CatalogSnapshot): { st: ClassifiedStatement; unresolved: number } {
  if (untouched(st, snap)) return { st, unresolved: 0 };
  const r = new Resolver(snap, memo(snap));
  const e = effect();
  for (const ref of st.calls ?? []) r.call(ref, e, 0, new Set(), 'it ');
  for (const op of st.operators ?? []) r.operator(op, e, 0, new Set(), 'it ');
  for (const ty of st.casts ?? []) r.cast(ty, e, 0, new Set(), 'it ');
  const seen = new Set<string>();
  for (const t of st.tables) for (const v of viewsNamed(snap, t)) r.view(v, e, seen);
  const reached = descendantsOf(snap, [...inheritingTables(st), ...e.tables]);
  if (e.kinds.size === 0 && e.tables.size === 0 && !reached) return { st, unresolved: 0 };
  return { st: withKinds(st, e, reached), unresolved: e.unresolved };
}

/** No call, and no operator, cast or relation name the snapshot knows as a user operator, a cast, a view or a parent. */
function untouched(st: ClassifiedStatement, snap: CatalogSnapshot): boolean {
  if (st.calls?.length) return false;
  if (namesParent(snap, st)) return false;
  for (const op of st.operators ?? []) if (snap.operators.has(op)) return false;
  for (const ty of st.casts ?? []) if (snap.casts?.has(ty)) return false;
  for (const t of st.tables) if (snap.views.has(t.slice(t.lastIndexOf('.') + 1))) return false;
  return true;
}

/** Refine every statement of `c` against `snap` (memoised per classification: the exact-text cache keeps them). */
export function refineAll(c: Classification, snap: CatalogSnapshot): Refined {
  // The common case, cheaply (no allocation, no memo entry for a one-off literal variant): nothing to resolve.
  if (c.statements.every((st) => untouched(st, snap))) return { classification: c, unresolved: 0 };
  const m = memo(snap);
  const known = m.refined.get(c);
  if (known) return known;
  let unresolved = 0;
  let changed = false;
  const statements = c.statements.map((st) => {
    const out = refineStatement(st, snap);
    unresolved += out.unresolved;
    changed ||= out.st !== st;
    return out.st;
  });
  const refined: Refined = { classification: changed ? { ...c, statements } : c, unresolved };
  m.refined.set(c, refined);
  return refined;
}
