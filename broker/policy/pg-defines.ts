// What a PostgreSQL DDL statement redefines, for the time it is not yet committed: the broker reads the catalog
// on its own connection, which does not see a session's uncommitted changes. Until that session's transaction
// ends (and, in one request, for the statements after it), a view it (re)defined is judged by its new query,
// read from the DDL itself; anything else it redefined (a function replaced by a volatile one, an operator, a
// domain) makes the statements that name it `unknown` rather than judged by the catalog as it was; a table made
// a partition or inheritance child counts among its new parent's descendants (pg-inherits.ts adopt()).
import { parseSync } from './pg-parser.js';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { list, names, node, type Node } from './pg-ast.js';

/** Statements that may change anything, or run what nobody can see: every name is in doubt. */
const ANYTHING = new Set(['DoStmt', 'CreateExtensionStmt', 'AlterExtensionStmt', 'AlterExtensionContentsStmt', 'CallStmt', 'ExecuteStmt']);
const RLS = /RowSecurity$/;
/** Objects whose renaming or moving changes what a name means (ALTER TABLE … RENAME also renames views). */
const MOVED = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_FUNCTION',
  'OBJECT_PROCEDURE',
  'OBJECT_ROUTINE',
  'OBJECT_AGGREGATE',
  'OBJECT_OPERATOR',
]);

function last(v: unknown): string | null {
  const n = names(v);
  return n?.length ? n[n.length - 1]!.toLowerCase() : null;
}

function relname(v: unknown): string | null {
  const r = node(v)?.relname;
  return typeof r === 'string' ? r.toLowerCase() : null;
}

/** A view a session (re)defined, with the text of its CREATE statement. */
export interface RedefinedView {
  schema: string | null;
  name: string;
  sql: string;
}

/** A table made a partition or inheritance child (names as written: `schema.name` or `name`, lower-cased). */
export interface NewChild {
  parent: string;
  child: string;
}

/** What statements redefine: views (judged by their new query), other names (in doubt), new children. */
export interface Redefined {
  views: RedefinedView[];
  names: string[];
  children: NewChild[];
}

function qualified(v: unknown): string | null {
  const name = relname(v);
  const schema = node(v)?.schemaname;
  return name && (typeof schema === 'string' ? `${schema.toLowerCase()}.${name}` : name);
}

/** The names one statement node redefines; null for anything. */
function defined(type: string, s: Node, out: Set<string>, views?: { sql: string; list: RedefinedView[] }, children: NewChild[] = []): boolean {
  const add = (n: string | null) => n && out.add(n);
  const adopt = (parent: unknown, child: unknown) => {
    const [p, c] = [qualified(parent), qualified(child)];
    if (p && c) children.push({ parent: p, child: c });
  };
  const view = (rv: unknown) => {
    const name = relname(rv);
    const schema = node(rv)?.schemaname;
    if (name && views) views.list.push({ schema: typeof schema === 'string' ? schema.toLowerCase() : null, name, sql: views.sql });
    else add(name);
  };
  const objectName = (o: unknown) => {
    const owa = node(node(o)?.ObjectWithArgs);
    add(owa ? last(owa.objname) : (last(node(node(o)?.List)?.items) ?? last(o)));
  };
  switch (type) {
    case 'ViewStmt':
      view(s.view);
      break;
    case 'CreateTableAsStmt':
      if (s.objtype === 'OBJECT_MATVIEW') view(node(s.into)?.rel);
      break;
    case 'RuleStmt':
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      add(relname(s.relation ?? s.table));
      break;
    case 'AlterTableStmt':
      if (s.objtype !== 'OBJECT_TABLE' || list(s.cmds).some((c) => RLS.test(String(node(node(c)?.AlterTableCmd)?.subtype ?? '')))) add(relname(s.relation));
      for (const c of list(s.cmds)) {
        const cmd = node(node(c)?.AlterTableCmd) ?? {};
        if (cmd.subtype === 'AT_AttachPartition') adopt(s.relation, node(node(cmd.def)?.PartitionCmd)?.name);
        if (cmd.subtype === 'AT_AddInherit') adopt(node(cmd.def)?.RangeVar, s.relation);
      }
      break;
    case 'CreateStmt': // … PARTITION OF p, … INHERITS (p, q)
      for (const p of list(s.inhRelations)) adopt(node(p)?.RangeVar, s.relation);
      break;
    case 'CreateForeignTableStmt':
      for (const p of list(node(s.base)?.inhRelations)) adopt(node(p)?.RangeVar, node(s.base)?.relation);
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
    case 'CreateDomainStmt':
      add(last(s.domainname));
      break;
    case 'AlterDomainStmt':
      add(last(s.typeName));
      break;
    case 'CreateCastStmt':
      add(last(node(s.targettype)?.names));
      break;
    case 'CreateSchemaStmt':
      for (const e of list(s.schemaElts)) {
        const [t, b] = Object.entries(node(e) ?? {})[0] ?? ['', {}];
        if (!defined(t, node(b) ?? {}, out, undefined, children)) return false;
      }
      break;
    default:
      if (ANYTHING.has(type)) return false;
  }
  return true;
}

/**
 * What the statements of `sql` create, replace, rename, move or alter: views and materialized views created or
 * replaced (with their CREATE text), and the lower-cased, unqualified names of the functions, operators,
 * domains, cast targets, row-security tables and views renamed, moved or altered; the tables made partitions or
 * inheritance children (CREATE TABLE … PARTITION OF / INHERITS, ATTACH PARTITION, INHERIT); null when they may
 * change anything (DO, CREATE EXTENSION, CALL, EXECUTE, unparseable). Plain tables, indexes, grants, comments and
 * drops are not listed otherwise: what they change does not make a read run something else (what is dropped fails
 * upstream).
 */
export function pgRedefines(sql: string): Redefined | null {
  let stmts: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = list(node(parseSync(sql))?.stmts) as typeof stmts;
  } catch {
    return null;
  }
  const bytes = Buffer.from(sql, 'utf8');
  const names = new Set<string>();
  const views: RedefinedView[] = [];
  const children: NewChild[] = [];
  for (const raw of stmts) {
    const start = raw.stmt_location ?? 0;
    const text = bytes.subarray(start, raw.stmt_len ? start + raw.stmt_len : bytes.length).toString('utf8');
    const [type, body] = Object.entries(node(raw.stmt) ?? {})[0] ?? ['', {}];
    if (!defined(type, node(body) ?? {}, names, { sql: text, list: views }, children)) return null;
  }
  return { views, names: [...names], children };
}

/** Every name pgRedefines lists, views' too (lower-cased, unqualified); null for anything. */
export function pgDefinedNames(sql: string): string[] | null {
  const r = pgRedefines(sql);
  return r && [...r.views.map((v) => v.name), ...r.names];
}

/** The names a statement reads or calls, as pgDefinedNames lists them. */
function namesOf(st: ClassifiedStatement): string[] {
  return [
    ...st.tables.map((t) => t.slice(t.lastIndexOf('.') + 1)),
    ...(st.calls ?? []).map((r) => r.name.toLowerCase()),
    ...(st.operators ?? []),
    ...(st.casts ?? []),
  ];
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

/** What a statement of these kinds with this text redefines until it is committed ('all': anything may be). */
export function pgDoubtAfter(sql: string, kinds: readonly Kind[]): Redefined | 'all' | null {
  if (!changesCatalog(kinds)) return null;
  if (kinds.includes('unknown') || kinds.includes('admin')) return 'all';
  return pgRedefines(sql) ?? 'all';
}
