// Read a PostgreSQL target's catalog into a CatalogSnapshot, over the broker's own upstream account (`pg`).
//
// One short connection per load, one REPEATABLE READ, READ ONLY transaction (a consistent picture), with
// search_path = pg_catalog so that the definitions the server prints name every object outside pg_catalog with
// its schema (an unqualified name in a printed definition is pg_catalog's).
//   - functions: every pg_proc row outside temporary and TOAST schemas: arity, kind, volatility, SECURITY DEFINER,
//     language; for SQL and PL/pgSQL functions outside pg_catalog/information_schema, pg_get_functiondef(); for an
//     aggregate, its support functions.
//   - operators: those outside pg_catalog, or implemented by a function outside it, by name.
//   - views and materialized views outside pg_catalog/information_schema (temporary ones too: they shadow tables),
//     and tables with row-level security: the relations and functions their query (or policies) depend on
//     (pg_depend of the _RETURN rule / the policies; an operator counts as its function), followed through views
//     of views; and the definition as printed (pg_get_viewdef, the policies' expressions), for what pg_depend does
//     not record: dependencies on built-in ("pinned") objects, such as nextval() or pg_authid.
//   - casts: by target type name, the functions of user-defined casts and of domains' CHECK constraints (a
//     domain over a domain checks both).
//   - parents: partitioned tables and inheritance parents, each with every table below it (pg_inherits, followed
//     here to every level: partitions of partitions), by name. One row per table in a hierarchy: 10,000
//     partitions add 25–60 ms to a load (bench/partitions.ts; reading them is about 20 ms of it).
import type pg from 'pg';
import type { Target } from '../types.js';
import { parseUpstreamUrl } from '../engines/postgres/upstream.js';
import type { CatalogFunction, CatalogParent, CatalogSnapshot, CatalogView } from './types.js';

const BUILTIN = `('pg_catalog', 'information_schema')`;
const NOT_TEMP = `n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'`;

const FUNCTIONS = `
SELECT p.oid::int8 AS oid, n.nspname AS schema, p.proname AS name, p.pronargs AS nargs, p.pronargdefaults AS ndefaults,
       p.provariadic <> 0 AS variadic, p.prokind AS kind, p.provolatile AS volatility, p.prosecdef AS secdef, l.lanname AS language,
       CASE WHEN n.nspname NOT IN ${BUILTIN} AND l.lanname IN ('sql', 'plpgsql') AND p.prokind = 'f' THEN pg_get_functiondef(p.oid) END AS body,
       CASE WHEN p.prokind = 'a' THEN (
         SELECT array_remove(ARRAY[a.aggtransfn::oid, a.aggfinalfn::oid, a.aggcombinefn::oid, a.aggserialfn::oid, a.aggdeserialfn::oid,
                                   a.aggmtransfn::oid, a.aggminvtransfn::oid, a.aggmfinalfn::oid], 0::oid)::int8[]
         FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END AS runs
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE ${NOT_TEMP}`;

const OPERATORS = `
SELECT o.oprname AS name, o.oprcode::oid::int8 AS fn
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
JOIN pg_proc p ON p.oid = o.oprcode JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE n.nspname <> 'pg_catalog' OR pn.nspname <> 'pg_catalog'`;

/** Views, materialized views and tables with row-level security, with their printed definition. */
const RELATIONS = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)
            ELSE (SELECT 'SELECT ' || string_agg(concat_ws(', ', '(' || pg_get_expr(p.polqual, p.polrelid) || ')',
                                                                '(' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'), ', ')
                  FROM pg_policy p WHERE p.polrelid = c.oid) END AS definition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind IN ('v', 'm') OR (c.relkind IN ('r', 'p') AND c.relrowsecurity AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)))
  AND n.nspname NOT IN ${BUILTIN} AND n.nspname NOT LIKE 'pg\\_toast%'`;

/** What each of those depends on: relations (with their names and kinds) and functions (operators as theirs). */
const DEPENDENCIES = `
WITH deps AS (
  SELECT r.ev_class AS owner, d.refclassid, d.refobjid
  FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
  WHERE r.ev_type = '1' AND d.refobjid <> r.ev_class
  UNION
  SELECT p.polrelid, d.refclassid, d.refobjid
  FROM pg_policy p JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
  WHERE d.refobjid <> p.polrelid
)
SELECT d.owner::int8 AS owner,
       CASE WHEN d.refclassid = 'pg_class'::regclass THEN 'r' ELSE 'f' END AS what,
       COALESCE(o.oprcode::oid, d.refobjid)::int8 AS ref, rn.nspname AS schema, rc.relname AS name
FROM deps d
LEFT JOIN pg_class rc ON d.refclassid = 'pg_class'::regclass AND rc.oid = d.refobjid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND o.oid = d.refobjid
WHERE d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_operator'::regclass)
  AND (d.refclassid <> 'pg_class'::regclass OR rc.relkind IN ('r', 'p', 'v', 'm', 'f', 'S'))`;

const CASTS = `
WITH RECURSIVE doms AS (
  SELECT t.oid AS dom, t.oid AS base FROM pg_type t WHERE t.typtype = 'd'
  UNION
  SELECT d.dom, t.typbasetype FROM doms d JOIN pg_type t ON t.oid = d.base WHERE t.typtype = 'd'
)
SELECT lower(t.typname) AS name, COALESCE(o.oprcode::oid, dep.refobjid)::int8 AS fn
FROM doms d JOIN pg_type t ON t.oid = d.dom
JOIN pg_constraint con ON con.contypid = d.base
JOIN pg_depend dep ON dep.classid = 'pg_constraint'::regclass AND dep.objid = con.oid
LEFT JOIN pg_operator o ON dep.refclassid = 'pg_operator'::regclass AND o.oid = dep.refobjid
WHERE dep.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
UNION
SELECT lower(t.typname), c.castfunc::int8
FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ${BUILTIN}`;

/**
 * Tables that are parents (relhassubclass: has, or once had, children) or children, each with a parent (a row per
 * parent; null for a root). Tables only: a partitioned index's partitions are in pg_inherits too. One scan.
 */
const INHERITANCE = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, i.inhparent::int8 AS parent
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'f') AND (c.relhassubclass OR i.inhrelid IS NOT NULL)`;

interface FunctionRow {
  oid: string;
  schema: string;
  name: string;
  nargs: number;
  ndefaults: number;
  variadic: boolean;
  kind: 'f' | 'p' | 'a' | 'w';
  volatility: 'i' | 's' | 'v';
  secdef: boolean;
  language: string;
  body: string | null;
  runs: string[] | null;
}
interface RelationRow {
  oid: string;
  schema: string;
  name: string;
  definition: string | null;
}
interface InheritanceRow {
  oid: string;
  schema: string;
  name: string;
  parent: string | null;
}
interface DependencyRow {
  owner: string;
  what: 'r' | 'f';
  ref: string;
  schema: string | null;
  name: string | null;
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

/** A connection to the target as the broker (its own account), TLS as the target's URL says (as the engines do). */
export function clientConfig(upstream: string, timeoutMs: number): pg.ClientConfig {
  const t = parseUpstreamUrl(upstream);
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    ssl: t.ssl === false || t.ssl === 'prefer' ? false : { rejectUnauthorized: t.ssl === 'verify' },
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'jit-broker catalog',
  };
}

export async function loadPostgresCatalog(target: Target, opts: { timeoutMs?: number } = {}): Promise<CatalogSnapshot> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const { default: pg } = await import('pg'); // loaded by the first catalog read, not by every broker
  const client = new pg.Client(clientConfig(target.upstream, timeoutMs));
  client.on('error', () => {}); // a connection lost after the load: nothing to do
  await client.connect();
  try {
    await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog; SET LOCAL statement_timeout = ${timeoutMs}`);
    const fns = (await client.query<FunctionRow>(FUNCTIONS)).rows;
    const ops = (await client.query<NamedFunction>(OPERATORS)).rows;
    const rels = (await client.query<RelationRow>(RELATIONS)).rows;
    const deps = (await client.query<DependencyRow>(DEPENDENCIES)).rows;
    const casts = (await client.query<NamedFunction>(CASTS)).rows;
    const inheritance = (await client.query<InheritanceRow>(INHERITANCE)).rows;
    await client.query('COMMIT');
    return { ...snapshot(fns, ops, rels, deps, casts), parents: parents(inheritance) };
  } finally {
    await client.end().catch(() => {});
  }
}

type NamedFunction = { name: string; fn: string };

function byName(rows: NamedFunction[], functionsByOid: ReadonlyMap<number, CatalogFunction>): Map<string, CatalogFunction[]> {
  const out = new Map<string, CatalogFunction[]>();
  for (const r of rows) {
    const f = functionsByOid.get(Number(r.fn));
    if (f) pushTo(out, r.name, f);
  }
  return out;
}

function snapshot(fns: FunctionRow[], ops: NamedFunction[], rels: RelationRow[], deps: DependencyRow[], casts: NamedFunction[]): CatalogSnapshot {
  const functions = new Map<string, CatalogFunction[]>();
  const functionsByOid = new Map<number, CatalogFunction>();
  for (const r of fns) {
    const f: CatalogFunction = {
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      // A variadic parameter may also be given no argument at all, with a default; count it as optional.
      args: [Math.max(0, r.nargs - r.ndefaults - (r.variadic ? 1 : 0)), r.variadic ? Infinity : r.nargs],
      prokind: r.kind,
      volatility: r.volatility,
      securityDefiner: r.secdef,
      language: r.language,
      dataAccess: null,
      body: r.body,
    };
    if (r.runs?.length) f.runs = r.runs.map(Number);
    pushTo(functions, r.name.toLowerCase(), f);
    functionsByOid.set(f.oid, f);
  }
  const operators = byName(ops, functionsByOid);
  const direct = new Map<number, { tables: Set<string>; fns: Set<number>; rels: Set<number> }>();
  for (const d of deps) {
    const owner = Number(d.owner);
    let e = direct.get(owner);
    if (!e) direct.set(owner, (e = { tables: new Set(), fns: new Set(), rels: new Set() }));
    if (d.what === 'f') e.fns.add(Number(d.ref));
    else {
      e.rels.add(Number(d.ref));
      if (d.schema !== null && d.name !== null) e.tables.add(`${d.schema}.${d.name}`.toLowerCase());
    }
  }
  const views = new Map<string, CatalogView[]>();
  const names = new Map(rels.map((r) => [Number(r.oid), `${r.schema}.${r.name}`.toLowerCase()]));
  for (const r of rels) {
    // Through views of views: their base relations and functions too (cycle-safe).
    const tables = new Set<string>();
    const fnOids = new Set<number>();
    const seen = new Set<number>();
    const visit = (oid: number) => {
      if (seen.has(oid)) return;
      seen.add(oid);
      const e = direct.get(oid);
      if (!e) return;
      for (const f of e.fns) fnOids.add(f);
      for (const t of e.tables) tables.add(t);
      for (const rel of e.rels) if (names.has(rel)) visit(rel);
    };
    visit(Number(r.oid));
    tables.delete(names.get(Number(r.oid))!);
    pushTo(views, r.name.toLowerCase(), { schema: r.schema, name: r.name, tables: [...tables], functionOids: [...fnOids], definition: r.definition });
  }
  return { dialect: 'postgres', loadedAt: Date.now(), functions, functionsByOid, operators, views, casts: byName(casts, functionsByOid) };
}

/** Every parent with all the tables below it, by lower-cased name. */
function parents(rows: readonly InheritanceRow[]): Map<string, CatalogParent[]> {
  const children = new Map<number, number[]>();
  const tables = new Map<number, { schema: string; name: string; qualified: string }>();
  for (const r of rows) {
    const oid = Number(r.oid);
    tables.set(oid, { schema: r.schema, name: r.name, qualified: `${r.schema}.${r.name}`.toLowerCase() });
    if (r.parent !== null) pushTo(children, Number(r.parent), oid);
  }
  // Each parent's descendants, memoised: a partition of a partition is listed under both (no cycles in PostgreSQL;
  // cut anyway).
  const below = new Map<number, number[]>();
  const visiting = new Set<number>();
  const descendants = (oid: number): number[] => {
    const known = below.get(oid);
    if (known) return known;
    if (visiting.has(oid)) return [];
    visiting.add(oid);
    const out = new Set<number>();
    for (const c of children.get(oid) ?? []) {
      out.add(c);
      for (const d of descendants(c)) out.add(d);
    }
    visiting.delete(oid);
    const list = [...out];
    below.set(oid, list);
    return list;
  };
  const out = new Map<string, CatalogParent[]>();
  for (const oid of children.keys()) {
    const p = tables.get(oid);
    if (!p) continue; // not a table (the query lists every parent table)
    pushTo(out, p.name.toLowerCase(), { schema: p.schema, name: p.name, descendants: descendants(oid).map((d) => tables.get(d)!.qualified) });
  }
  return out;
}
