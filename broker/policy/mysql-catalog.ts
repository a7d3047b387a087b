// A MySQL/MariaDB classification made to mean what the target's catalog says its names are (pure: the snapshot is
// handed in, loaded by broker/catalog/mysql.ts).
//   - a call (mysql-calls.ts lists those that are not certainly built-ins): `db.f()` is the stored function f of
//     db; `f()` is f of EVERY schema (a superset of the session's own database). A function is as severe as its
//     declared SQL data access (anything but NO SQL / READS SQL DATA may write — and the default, CONTAINS SQL,
//     counts as writing) and as what its body does: the server does not enforce the declaration, so the body is
//     read with the same classifier (mysql-compound.ts), and the functions it calls in turn (depth MAX_DEPTH,
//     a cycle is unknown). A body that cannot be read, or a UDF (mysql.func), is unknown. No function of that
//     name: a built-in name is the built-in (or an error); any other name is unknown (counted as unresolved: a
//     fresher snapshot may know it).
//   - a view the statement names adds its base tables (as `schema.name` and `name`, as for PostgreSQL), read from
//     its definition (views of views followed), and the kinds of the functions its query calls.
// Without a catalog, a statement that names a relation or calls such a function is unknown: fail closed; so is one
// that follows, in the same request, a statement that may redefine functions or views (the snapshot predates it).
import type { CatalogFunction, CatalogSnapshot, CatalogView, FunctionRef } from '../catalog/types.js';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { classifyMysql } from './classify-mysql.js';
import { mostSevere } from './decide.js';
import { isBuiltinName } from './mysql-builtins.js';
import { classifyRoutineBody } from './mysql-compound.js';

/** Kinds of statement after which a function or view may mean something else. */
const CHANGES: ReadonlySet<Kind> = new Set<Kind>(['ddl', 'privilege', 'admin', 'unknown']);

/** How many functions and views deep a name is followed before it is unknown. */
const MAX_DEPTH = 16;

/** What using a function or view does: each kind with why, base tables as `schema.name`. */
interface Effect {
  kinds: Map<Kind, string>;
  tables: Set<string>;
  /** Calls no function of the snapshot answers. */
  unresolved: number;
  /** Cut short by MAX_DEPTH or a cycle: not remembered, since another path may resolve it. */
  partial: boolean;
}

const effect = (): Effect => ({ kinds: new Map(), tables: new Set(), unresolved: 0, partial: false });
const only = (k: Kind, why: string, partial = false): Effect => ({ ...effect(), kinds: new Map([[k, why]]), partial });

function absorb(into: Effect, from: Effect, prefix = ''): void {
  for (const [k, why] of from.kinds) if (!into.kinds.has(k)) into.kinds.set(k, `${prefix}${why}`);
  for (const t of from.tables) into.tables.add(t);
  into.unresolved += from.unresolved;
  into.partial ||= from.partial;
}

const a = (k: string): string => (/^[aeiou]/.test(k) ? `an ${k}` : `a ${k}`);

/** `schema.name` for a name as written (`t` or `db.t`) inside an object of schema `home`. */
const qualify = (name: string, home: string): string => (name.includes('.') ? name : `${home.toLowerCase()}.${name}`);

/** MySQL's own characteristic: anything but NO SQL / READS SQL DATA may write (CONTAINS SQL is the default). */
function declaredKind(f: CatalogFunction): Kind {
  const access = (f.dataAccess ?? '').toUpperCase();
  return access === 'NO SQL' || access === 'READS SQL DATA' ? 'read' : 'write';
}

interface Memo {
  effects: Map<string, Effect>;
  refined: WeakMap<Classification, RefinedMysql>;
}

const memos = new WeakMap<CatalogSnapshot, Memo>();

function memo(snap: CatalogSnapshot): Memo {
  let m = memos.get(snap);
  if (!m) memos.set(snap, (m = { effects: new Map(), refined: new WeakMap() }));
  return m;
}

class Resolver {
  private readonly active = new Set<string>();

  constructor(
    private readonly snap: CatalogSnapshot,
    private readonly m: Memo,
  ) {}

  private once(key: string, what: string, depth: number, f: () => Effect): Effect {
    const known = this.m.effects.get(key);
    if (known) return known;
    if (this.active.has(key)) return only('unknown', `${what}, which refers back to itself`, true);
    if (depth > MAX_DEPTH) return only('unknown', `${what}, more than ${MAX_DEPTH} functions and views deep`, true);
    this.active.add(key);
    try {
      const e = f();
      if (!e.partial) this.m.effects.set(key, e);
      return e;
    } finally {
      this.active.delete(key);
    }
  }

  /** What a call does: every function of the catalog it may reach. */
  call(ref: FunctionRef, depth: number): Effect {
    const all = (this.snap.functions.get(ref.name.toLowerCase()) ?? []).filter((f) => f.prokind !== 'p');
    const schema = ref.schema?.toLowerCase() ?? null;
    // A UDF is global: only an unqualified call reaches it.
    const found = schema === null ? all : all.filter((f) => f.schema.toLowerCase() === schema && f.language.toUpperCase() !== 'UDF');
    const written = `${ref.schema ? `${ref.schema}.` : ''}${ref.name}()`;
    if (found.length === 0) {
      // The server runs its built-in, or fails: there is no function of that name for it to call.
      if (schema === null && isBuiltinName(ref.name)) return effect();
      const e = only('unknown', `${written}, which is neither a built-in nor a function in the target's catalog`);
      e.unresolved = 1;
      return e;
    }
    const e = effect();
    for (const f of found) absorb(e, this.function(f, depth));
    return e;
  }

  private function(f: CatalogFunction, depth: number): Effect {
    const name = `${f.schema ? `${f.schema}.` : ''}${f.name}()`;
    return this.once(`f:${f.schema}.${f.name}`, name, depth, () => {
      if (f.language.toUpperCase() !== 'SQL') return only('unknown', `${name}, a loadable function (UDF) whose effects cannot be seen`);
      if (f.body === null) return only('unknown', `${name}, whose body could not be read from the target's catalog`);
      const body = classifyRoutineBody(f.body);
      if (body.error) return only('unknown', `${name}, whose body could not be read (${body.error})`);
      const e = effect();
      const declared = declaredKind(f);
      e.kinds.set(declared, `${name}, declared ${f.dataAccess ?? 'CONTAINS SQL'}`);
      for (const k of body.kinds) if (!e.kinds.has(k)) e.kinds.set(k, `${name}, whose body runs ${a(k)} statement`);
      for (const t of body.tables) e.tables.add(qualify(t, f.schema));
      for (const r of body.calls ?? []) absorb(e, this.call({ ...r, schema: r.schema ?? f.schema }, depth + 1), `${name}, which calls `);
      for (const t of body.tables) absorb(e, this.relation(qualify(t, f.schema), depth + 1), `${name}, which reads `);
      return e;
    });
  }

  /** The views a table name (as written) may be; unqualified: of that name in any schema. */
  views(table: string): CatalogView[] {
    const t = table.toLowerCase();
    const dot = t.lastIndexOf('.');
    const all = this.snap.views.get(t.slice(dot + 1)) ?? [];
    return dot < 0 ? [...all] : all.filter((v) => v.schema.toLowerCase() === t.slice(0, dot));
  }

  /** What reading a relation adds: nothing for a table; for a view, its base tables and its calls' kinds. */
  relation(table: string, depth: number): Effect {
    const e = effect();
    for (const v of this.views(table)) absorb(e, this.view(v, depth));
    return e;
  }

  private view(v: CatalogView, depth: number): Effect {
    const name = `view ${v.schema}.${v.name}`;
    return this.once(`v:${v.schema}.${v.name}`, name, depth, () => {
      if (v.definition === null) return only('unknown', `${name}, whose definition could not be read from the target's catalog`);
      const c = classifyMysql(v.definition);
      const st = c.statements[0];
      if (c.error || !st || c.statements.length !== 1) return only('unknown', `${name}, whose definition could not be read${c.error ? ` (${c.error})` : ''}`);
      const e = effect();
      for (const k of st.kinds) e.kinds.set(k, `${name}, which is ${a(k)} query`);
      for (const r of st.calls ?? []) absorb(e, this.call({ ...r, schema: r.schema ?? v.schema }, depth + 1), `${name}, which calls `);
      for (const t of st.tables) {
        const q = qualify(t, v.schema);
        const inner = this.views(q);
        if (inner.length === 0) e.tables.add(q);
        else absorb(e, this.relation(q, depth + 1), `${name}, which reads `);
      }
      return e;
    });
  }
}

/** The base tables a view reads, `schema.name` (views of views followed), or null if a definition cannot be read. */
export function viewBaseTables(snap: CatalogSnapshot, v: CatalogView): string[] | null {
  const e = new Resolver(snap, memo(snap)).relation(`${v.schema}.${v.name}`, 0);
  return e.kinds.has('unknown') ? null : [...e.tables];
}

function refineStatement(st: ClassifiedStatement, r: Resolver): { st: ClassifiedStatement; unresolved: number } {
  const e = effect();
  for (const ref of st.calls ?? []) absorb(e, r.call(ref, 0), 'it calls ');
  let via: string | null = null;
  for (const t of st.tables) {
    const views = r.views(t);
    if (views.length === 0) continue;
    via ??= `it reads view ${views[0]!.schema}.${views[0]!.name}, whose base tables count as its own`;
    absorb(e, r.relation(t, 0), 'it reads ');
  }
  if (e.kinds.size === 0 && e.tables.size === 0) return { st, unresolved: 0 };
  const before = mostSevere(st.kinds);
  const kinds = new Set<Kind>([...st.kinds, ...e.kinds.keys()]);
  // Base tables as `schema.name` and as `name`, so a rule on either spelling sees them.
  const tables = new Set(st.tables);
  for (const q of e.tables) tables.add(q).add(q.slice(q.indexOf('.') + 1));
  const out: ClassifiedStatement = { ...st, kinds: KINDS.filter((k) => kinds.has(k)), tables: [...tables] };
  const after = mostSevere(out.kinds);
  const why = after !== before ? e.kinds.get(after) : undefined;
  const through = out.tables.length > st.tables.length ? via : null;
  if (why ?? through) out.reason = (why ?? through)!;
  return { st: out, unresolved: e.unresolved };
}

export interface RefinedMysql {
  classification: Classification;
  /** Calls that no function of the snapshot answers: a fresher snapshot might. */
  unresolved: number;
}

/** Refine `c` against `snap` (null: the catalog could not be read, `why` says how), with its unresolved calls. */
export function refineMysqlDetailed(c: Classification, snap: CatalogSnapshot | null, why = "the target's catalog could not be read"): RefinedMysql {
  if (!snap) {
    const reason = `${why}, so what its functions and views do is not known`;
    const statements = c.statements.map((st) =>
      st.tables.length || st.calls?.length ? { ...st, kinds: KINDS.filter((k) => k === 'unknown' || st.kinds.includes(k)), reason } : st,
    );
    return { classification: statements.some((st, i) => st !== c.statements[i]) ? { ...c, statements } : c, unresolved: 0 };
  }
  const m = memo(snap);
  const known = m.refined.get(c);
  if (known) return known;
  const r = new Resolver(snap, m);
  let unresolved = 0;
  let changer: string | null = null;
  const statements = c.statements.map((st) => {
    const out = refineStatement(st, r);
    unresolved += out.unresolved;
    const needs = st.tables.length > 0 || (st.calls?.length ?? 0) > 0;
    // The snapshot predates the request: after a statement that may redefine a function or view (CREATE OR REPLACE
    // VIEW v …; SELECT * FROM v), the names of the statements that follow it in the same request mean what it made them.
    const reason = `an earlier statement of the same request (${changer}) may change what its functions and views are`;
    const result = changer && needs ? { ...out.st, kinds: KINDS.filter((k) => k === 'unknown' || out.st.kinds.includes(k)), reason } : out.st;
    if (!changer && st.kinds.some((k) => CHANGES.has(k))) changer = st.sql.length > 60 ? `${st.sql.slice(0, 57)}…` : st.sql;
    return result;
  });
  const refined: RefinedMysql = { classification: statements.some((st, i) => st !== c.statements[i]) ? { ...c, statements } : c, unresolved };
  m.refined.set(c, refined);
  return refined;
}

/** Refine a MySQL classification against the target's catalog snapshot (null: it could not be read). */
export function refineMysql(c: Classification, snap: CatalogSnapshot | null): Classification {
  return refineMysqlDetailed(c, snap).classification;
}
