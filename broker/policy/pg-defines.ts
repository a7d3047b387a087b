// What a PostgreSQL DDL statement redefines, for the time it is not yet committed: the broker reads the catalog
// on its own connection, which does not see a session's uncommitted changes. Until that session's transaction
// ends, its statements that name what it redefined (a view created, a function replaced by a volatile one) are
// judged `unknown` rather than by the catalog as it was before (see BrokerSession and doubtful()).
import { parseSync } from 'libpg-query';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { list, names, node, type Node } from './pg-ast.js';

/** Statements that may change anything, or run what nobody can see: every name is in doubt. */
const ANYTHING = new Set(['DoStmt', 'CreateExtensionStmt', 'AlterExtensionStmt', 'AlterExtensionContentsStmt', 'CallStmt', 'ExecuteStmt']);
const RLS = /RowSecurity$/;
/** Objects whose renaming or moving changes what a name means (ALTER TABLE … RENAME also renames views). */
const MOVED = new Set([
  'OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE',
  'OBJECT_AGGREGATE', 'OBJECT_OPERATOR',
]);

function last(v: unknown): string | null {
  const n = names(v);
  return n?.length ? n[n.length - 1]!.toLowerCase() : null;
}

function relname(v: unknown): string | null {
  const r = node(v)?.relname;
  return typeof r === 'string' ? r.toLowerCase() : null;
}

/** The names one statement node redefines; null for anything. */
function defined(type: string, s: Node, out: Set<string>): boolean {
  const add = (n: string | null) => n && out.add(n);
  const objectName = (o: unknown) => {
    const owa = node(node(o)?.ObjectWithArgs);
    add(owa ? last(owa.objname) : (last(node(node(o)?.List)?.items) ?? last(o)));
  };
  switch (type) {
    case 'ViewStmt':
      add(relname(s.view));
      break;
    case 'CreateTableAsStmt':
      if (s.objtype === 'OBJECT_MATVIEW') add(relname(node(s.into)?.rel));
      break;
    case 'RuleStmt':
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      add(relname(s.relation ?? s.table));
      break;
    case 'AlterTableStmt':
      if (s.objtype !== 'OBJECT_TABLE' || list(s.cmds).some((c) => RLS.test(String(node(node(c)?.AlterTableCmd)?.subtype ?? '')))) add(relname(s.relation));
      break;
    case 'RenameStmt':
    case 'AlterObjectSchemaStmt':
      if (!MOVED.has(String(s.renameType ?? s.objectType ?? ''))) break; // a column, a constraint, a schema …
      add(relname(s.relation));
      objectName(s.object);
      if (typeof s.newname === 'string') add(s.newname.toLowerCase());
      break;
    case 'CreateFunctionStmt':
      add(last(s.funcname));
      break;
    case 'AlterFunctionStmt':
      add(last(node(s.func)?.objname));
      break;
    case 'DefineStmt':
      add(last(s.defnames));
      break;
    case 'AlterOperatorStmt':
      add(last(node(s.opername)?.objname));
      break;
    case 'CreateSchemaStmt':
      for (const e of list(s.schemaElts)) {
        const [t, b] = Object.entries(node(e) ?? {})[0] ?? ['', {}];
        if (!defined(t, node(b) ?? {}, out)) return false;
      }
      break;
    default:
      if (ANYTHING.has(type)) return false;
  }
  return true;
}

/**
 * Lower-cased, unqualified names of the views, functions, operators and row-security tables the statements of
 * `sql` create, replace, rename, move or alter; null when they may change anything (DO, CREATE EXTENSION, CALL,
 * EXECUTE, unparseable). Plain tables, indexes, grants, comments and drops are not listed: what they change
 * does not make a read run something else (a dropped view or function fails upstream; stale is stricter).
 */
export function pgDefinedNames(sql: string): string[] | null {
  let stmts: unknown[];
  try {
    stmts = list(node(parseSync(sql))?.stmts);
  } catch {
    return null;
  }
  const out = new Set<string>();
  for (const raw of stmts) {
    const [type, body] = Object.entries(node(node(raw)?.stmt) ?? {})[0] ?? ['', {}];
    if (!defined(type, node(body) ?? {}, out)) return null;
  }
  return [...out];
}

/** The names a statement reads or calls, as pgDefinedNames lists them. */
function namesOf(st: ClassifiedStatement): string[] {
  return [...st.tables.map((t) => t.slice(t.lastIndexOf('.') + 1)), ...(st.calls ?? []).map((r) => r.name.toLowerCase()), ...(st.operators ?? [])];
}

/**
 * Statements of `c` that name something redefined in the session's open transaction (`doubt`; 'all': anything
 * at all the catalog would have to answer for) become `unknown`, saying why.
 */
export function doubtful(c: Classification, doubt: ReadonlySet<string> | 'all'): Classification {
  let changed = false;
  const statements = c.statements.map((st) => {
    const names = namesOf(st);
    const hit = doubt === 'all' ? (names.length ? names[0] : undefined) : names.find((n) => doubt.has(n));
    if (hit === undefined) return st;
    changed = true;
    const kinds = new Set<Kind>([...st.kinds, 'unknown']);
    const reason = `an uncommitted change earlier in this transaction may have redefined ${doubt === 'all' ? 'what it uses' : `'${hit}'`}, and the broker sees the catalog only as committed: COMMIT first, then run it`;
    return { ...st, kinds: KINDS.filter((k) => kinds.has(k)), reason };
  });
  return changed ? { ...c, statements } : c;
}

/** Kinds of a statement after which the catalog may differ. */
const CHANGES: ReadonlySet<Kind> = new Set<Kind>(['ddl', 'privilege', 'admin', 'unknown']);

/** Whether a statement of these kinds may change the catalog. */
export function changesCatalog(kinds: readonly Kind[]): boolean {
  return kinds.some((k) => CHANGES.has(k));
}

/** What a statement of these kinds with this text leaves in doubt until it is committed ('all', or names). */
export function pgDoubtAfter(sql: string, kinds: readonly Kind[]): string[] | 'all' | null {
  if (!changesCatalog(kinds)) return null;
  if (kinds.includes('unknown') || kinds.includes('admin')) return 'all';
  return pgDefinedNames(sql) ?? 'all';
}

/**
 * In one request (`CREATE OR REPLACE FUNCTION f … VOLATILE …; SELECT f()`), a statement after one that redefines
 * something is judged before that runs, against a catalog that predates it: what it redefined is in doubt.
 */
export function doubtfulInSequence(c: Classification): Classification {
  if (c.statements.length < 2) return c;
  let doubt: Set<string> | 'all' | null = null;
  let changed = false;
  const statements = c.statements.map((st) => {
    const out = doubt ? (doubtful({ statements: [st] }, doubt).statements[0] ?? st) : st;
    changed ||= out !== st;
    const after = pgDoubtAfter(st.sql, st.kinds);
    if (after === 'all') doubt = 'all';
    else if (after && doubt !== 'all') doubt = new Set([...(doubt ?? []), ...after]);
    return out;
  });
  return changed ? { ...c, statements } : c;
}
