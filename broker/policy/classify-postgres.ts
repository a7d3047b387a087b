// Classify PostgreSQL statements with the PostgreSQL grammar itself (libpg-query, the server's parser).
//
// Every statement gets every kind that applies; decide.ts lets the most severe one choose the rules.
// Statements inside statements count: a writing CTE, EXPLAIN ANALYZE (it executes), PREPARE … AS, a rule's
// actions, a view's query, a function's or DO block's body (what it would run), SQL passed as a literal to
// EXECUTE or query_to_xml(). What cannot be seen through is `unknown`: CALL, EXECUTE of a prepared statement,
// dynamic SQL that is not a literal, other procedural languages, and anything that does not parse.
//
// Tables are real relations as written (lower-cased, schema-qualified where written so). A reference to a CTE
// of the statement is not a table; the name is kept if the same name is also written schema-qualified.
// DROP INDEX / SEQUENCE / VIEW / … list the dropped object's name (what a `tables` rule would match);
// DROP TRIGGER / RULE / POLICY … ON t, COMMENT ON COLUMN t.c list t. DROP SCHEMA lists nothing.
//
// Function calls and operators are recorded as written (`calls`, `operators`) wherever they run when the
// statement runs, for policy to resolve against the target's catalog (pg-catalog.ts): a name means what the
// database says it is. Not where they only get stored: a function's or view's or rule's or trigger's or policy's
// or table's definition (CREATE FUNCTION / VIEW / RULE / TRIGGER / POLICY / DOMAIN / TABLE); those bodies still
// count by their text, as before. Attribute notation (`t.f`, `(t).f`, which is `f(t)` when t has no column f)
// is recorded as a possible call.
import type { FunctionRef } from '../catalog/types.js';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { doBlockEffect, functionBodyEffect } from './classify-plpgsql.js';
import { because, found, isNode, list, merge, names, node, refKey, type Found, type Node } from './pg-ast.js';
import { callEffect, isAdminFunction, type RowSettings } from './pg-functions.js';
import {
  ADMIN_OBJECTS,
  definesAdminFunction,
  explainExecutes,
  FILE_OPTIONS,
  hasOption,
  isStatementKey,
  kindsByType,
  objectTable,
  onlySafeSelects,
  runsIn,
  SENSITIVE_RELATIONS,
  SERVER_ROLES,
  targetNames,
} from './pg-nodes.js';
import { readsConninfo, SUBSCRIPTION } from './pg-secrets.js';
import { preparedOp, sessionStatement } from './pg-session-nodes.js';
import { loadPostgresParser, parseSync } from './pg-parser.js';
import { settingsRows } from './pg-settings-rows.js';
import { unrestricted } from './pg-where.js';

export { loadPostgresParser };

/** How deep SQL inside SQL is followed (a DO block's EXECUTE of a literal DO block's EXECUTE …): beyond, unknown. */
const MAX_DEPTH = 6;

interface Ctx {
  out: Found;
  /** CTE names visible here (unqualified references to them are not tables). */
  ctes: ReadonlySet<string>;
  /** CTE names that were referenced and so left out of the tables. */
  cteRefs: Set<string>;
  depth: number;
  /** The top-level statement's text and body: PL/pgSQL compiles from text. */
  text: string;
  top: Node;
  /** Whether what is walked runs when the statement runs (false inside a stored definition): calls are recorded. */
  run: boolean;
  /** In the target list of `SELECT … FROM pg_settings WHERE name = '…'`: the settings its `name` column can be. */
  rows?: RowSettings;
  /**
   * Relations named with ONLY (no partitions, no inheritance children), kept out of `out.tables` until the
   * statement is walked (settleOnly): a name reached any other way as well counts with its descendants.
   */
  only: Set<string>;
}

/** Expression nodes that may run an operator's, a cast's or a function's code (pg-nodes.ts runsIn). */
const RUNS = new Set(['A_Expr', 'SubLink', 'SortBy', 'ColumnRef', 'A_Indirection', 'CaseExpr', 'TypeCast']);

/** Statements that store expressions and queries for later instead of running them. */
const STORES = new Set([
  'CreateFunctionStmt',
  'ViewStmt',
  'RuleStmt',
  'CreateTrigStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'CreateDomainStmt',
  'CreateStmt',
]);

const EMPTY: ReadonlySet<string> = new Set();

function add(ctx: Ctx, ...kinds: Kind[]): void {
  for (const k of kinds) ctx.out.kinds.add(k);
}

function addTable(ctx: Ctx, table: string | null): void {
  if (table) ctx.out.tables.add(table);
}

function addRelation(rv: Node, ctx: Ctx, mayBeCte: boolean): void {
  if (typeof rv.relname !== 'string') return;
  const schema = typeof rv.schemaname === 'string' ? rv.schemaname : null;
  if (mayBeCte && !schema && ctx.ctes.has(rv.relname)) {
    ctx.cteRefs.add(rv.relname.toLowerCase());
    return;
  }
  const rel = rv.relname.toLowerCase();
  const name = schema ? `${schema.toLowerCase()}.${rel}` : rel;
  // The parser sets `inh` on every RangeVar but one written with ONLY (absent from the JSON when false).
  if (rv.inh === true) ctx.out.tables.add(name);
  else ctx.only.add(name);
  if (SENSITIVE_RELATIONS.has(rel) && (!schema || schema.toLowerCase() === 'pg_catalog')) add(ctx, 'admin');
  if (rel === SUBSCRIPTION && (!schema || schema.toLowerCase() === 'pg_catalog') && readsConninfo(ctx.top)) {
    because(
      ctx.out,
      'admin',
      'it may read pg_subscription.subconninfo, which can hold the publisher’s password (pg_dump reads it when its login is a superuser; --no-subscriptions leaves it out)',
    );
  }
}

/** Visit every node under `v`: tables, function calls, statements nested anywhere. */
function walk(v: unknown, ctx: Ctx): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(x, ctx);
    return;
  }
  if (!isNode(v)) return;
  // A bare RangeVar (`relation` of INSERT/UPDATE/DELETE/COPY/CREATE …) always names a real table.
  if (typeof v.relname === 'string') addRelation(v, ctx, false);
  let inner = ctx;
  const wc = node(v.withClause);
  if (wc) {
    const ctes = list(wc.ctes).map((c) => node(node(c)?.CommonTableExpr) ?? {});
    const cteNames = ctes.map((c) => (typeof c.ctename === 'string' ? c.ctename : ''));
    ctes.forEach((c, i) => {
      // A CTE body sees the CTEs before it, or all of them under WITH RECURSIVE.
      const visible = new Set([...ctx.ctes, ...(wc.recursive ? cteNames : cteNames.slice(0, i))]);
      walk(c, { ...ctx, ctes: visible });
    });
    inner = { ...ctx, ctes: new Set([...ctx.ctes, ...cteNames]) };
  }
  for (const k in v) {
    const x = v[k];
    if (k === 'withClause') continue;
    if (k === 'RangeVar' && isNode(x)) addRelation(x, inner, true);
    else if (k === 'FuncCall' && isNode(x)) call(x, inner);
    else if (inner.run && RUNS.has(k) && isNode(x)) {
      runsIn(k, x, inner.out);
      walk(x, inner);
    } else if (k === 'ObjectWithArgs' && isNode(x)) {
      // Renaming, moving, re-owning or granting a server-file function is admin: it would hide or hand it out.
      const name = names(x.objname)?.pop()?.toLowerCase();
      if (name && isAdminFunction(name)) add(inner, 'admin');
      walk(x, inner);
    } else if (isStatementKey(k) && isNode(x)) statement(k, x, inner);
    else walk(x, inner);
  }
}

function call(fc: Node, ctx: Ctx): void {
  const e = callEffect(fc, ctx.rows);
  add(ctx, ...e.kinds);
  if (e.unknown) because(ctx.out, 'unknown', e.unknown);
  for (const t of e.tables) ctx.out.tables.add(t);
  for (const sql of e.sql) merge(ctx.out, subClassify(sql, ctx.depth + 1), ctx.run ? 'all' : 'effects');
  if (ctx.run) {
    const parts = names(fc.funcname);
    const name = parts?.[parts.length - 1];
    // A name that is not a plain list of strings cannot be resolved: an empty name never is (unknown).
    addCall(ctx, { schema: parts && parts.length > 1 ? parts[parts.length - 2]! : null, name: name ?? '', args: list(fc.args).length });
  }
  walk(fc, ctx);
}

function addCall(ctx: Ctx, ref: FunctionRef): void {
  ctx.out.calls.set(refKey(ref), ref);
}

/** Add the kinds of one statement node and walk what it contains. */
function statement(type: string, s: Node, ctx: Ctx): void {
  if (ctx.rows) ctx = { ...ctx, rows: undefined }; // a subquery's `name` is another relation's
  switch (type) {
    case 'SelectStmt': {
      // INTO creates a table; FOR UPDATE/SHARE takes row locks (refused in a read-only transaction).
      add(ctx, s.intoClause || s.lockingClause ? 'write' : 'read');
      const rows = settingsRows(s);
      if (!rows) break;
      walk(s.targetList, { ...ctx, rows }); // computed only for the rows the WHERE clause lets through
      walk({ ...s, targetList: undefined }, ctx);
      return;
    }
    case 'InsertStmt':
      add(ctx, 'write');
      break;
    case 'LockStmt':
      // ACCESS SHARE (mode 1) is the lock every SELECT takes (pg_dump takes it on each table it dumps); stronger
      // modes hold off writers, or readers too.
      add(ctx, s.mode === 1 ? 'read' : 'write');
      break;
    case 'UpdateStmt':
    case 'DeleteStmt':
      add(ctx, unrestricted(s.whereClause, targetNames(s.relation)) ? 'destructive' : 'write');
      break;
    case 'MergeStmt': {
      add(ctx, 'write');
      const targets = targetNames(s.relation);
      for (const c of list(s.mergeWhenClauses)) {
        const w = node(node(c)?.MergeWhenClause) ?? {};
        // Any DELETE action is destructive; so is an UPDATE that nothing restricts to some rows.
        if (w.commandType === 'CMD_DELETE') add(ctx, 'destructive');
        const bySource = w.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE';
        if (w.commandType === 'CMD_UPDATE' && unrestricted(w.condition, targets) && (bySource || unrestricted(s.joinCondition, targets))) {
          add(ctx, 'destructive');
        }
      }
      break;
    }
    case 'ExplainStmt':
      if (!explainExecutes(s.options)) {
        // Planned, never run: a read of the tables it plans. But the planner evaluates immutable and stable
        // calls with constant arguments (folding, estimates): its calls count, for the catalog to judge.
        add(ctx, 'read');
        const plan: Ctx = { ...ctx, out: found(), cteRefs: new Set() };
        walk(s.query, plan);
        plan.out.kinds.clear();
        merge(ctx.out, plan.out);
        return;
      }
      break; // with ANALYZE it executes: the walked statement decides
    case 'DeclareCursorStmt':
    case 'ReturnStmt':
      break; // their query decides
    case 'CreateTableAsStmt':
      add(ctx, s.objtype === 'OBJECT_MATVIEW' ? 'ddl' : 'write');
      break;
    case 'CopyStmt':
      if (s.is_program || typeof s.filename === 'string') add(ctx, 'admin');
      if (s.relation) add(ctx, s.is_from ? 'write' : 'read');
      break;
    case 'DoStmt':
      add(ctx, 'read');
      if (s !== ctx.top) because(ctx.out, 'unknown', 'a DO block inside another statement is not followed');
      else merge(ctx.out, doBlockEffect(s, ctx.text, ctx.depth, subClassify));
      break;
    case 'CreateFunctionStmt':
      add(ctx, 'ddl');
      if (s !== ctx.top) because(ctx.out, 'unknown', 'a CREATE FUNCTION inside another statement is not followed');
      else merge(ctx.out, functionBodyEffect(s, ctx.text, ctx.depth, subClassify), 'effects'); // the body does not run now
      break;
    case 'DropStmt': {
      add(ctx, 'destructive');
      const t = String(s.removeType ?? '');
      if (ADMIN_OBJECTS.has(t)) add(ctx, 'admin');
      if (t === 'OBJECT_POLICY') add(ctx, 'privilege');
      for (const o of list(s.objects)) addTable(ctx, objectTable(t, o));
      return; // object names are not expressions
    }
    case 'TruncateStmt':
      add(ctx, 'destructive');
      break;
    case 'CommentStmt':
      add(ctx, 'ddl');
      addTable(ctx, objectTable(s.objtype, s.object));
      return;
    case 'AlterTableStmt':
      for (const c of list(s.cmds)) {
        const cmd = node(node(c)?.AlterTableCmd) ?? {};
        const sub = String(cmd.subtype ?? '');
        const def = node(cmd.def);
        // ALTER … DROP anything; DROP DEFAULT; a type change that rewrites every value (USING).
        if (sub.startsWith('AT_Drop') || (sub === 'AT_ColumnDefault' && !def) || (sub === 'AT_AlterColumnType' && node(def?.ColumnDef)?.raw_default)) {
          add(ctx, 'destructive');
        } else add(ctx, 'ddl');
        if (sub === 'AT_ChangeOwner' || /RowSecurity$/.test(sub)) add(ctx, 'privilege');
      }
      if (!list(s.cmds).length) add(ctx, 'ddl');
      if (hasOption(s, FILE_OPTIONS)) add(ctx, 'admin'); // ALTER FOREIGN TABLE … OPTIONS (SET program …)
      break;
    case 'CreateForeignTableStmt':
      add(ctx, 'ddl');
      if (hasOption(s, FILE_OPTIONS)) add(ctx, 'admin'); // file_fdw reads a server file or runs a program
      break;
    case 'AlterDomainStmt':
      add(ctx, s.subtype === 'N' || s.subtype === 'X' || (s.subtype === 'T' && !s.def) ? 'destructive' : 'ddl');
      break;
    case 'AlterTSConfigurationStmt':
      add(ctx, s.kind === 'ALTER_TSCONFIG_DROP' ? 'destructive' : 'ddl');
      break;
    case 'AlterOpFamilyStmt':
      add(ctx, s.isDrop ? 'destructive' : 'ddl');
      break;
    case 'CreateSchemaStmt':
      add(ctx, 'ddl');
      if (s.authrole) add(ctx, 'privilege'); // CREATE SCHEMA … AUTHORIZATION r: owned by another role
      break;
    case 'GrantRoleStmt':
      add(ctx, 'privilege');
      // Membership in the server-file and signalling roles is admin's power handed out.
      if (list(s.granted_roles).some((r) => SERVER_ROLES.has(String(node(node(r)?.AccessPriv)?.priv_name ?? '')))) add(ctx, 'admin');
      break;
    case 'DefineStmt':
      // CREATE AGGREGATE / OPERATOR / TYPE … naming a server-file function as its support function.
      add(ctx, 'ddl');
      if (list(s.definition).some((d) => definesAdminFunction(node(node(d)?.DefElem)?.arg))) add(ctx, 'admin');
      break;
    case 'RenameStmt': {
      const t = String(s.renameType ?? '');
      add(ctx, t === 'OBJECT_ROLE' ? 'privilege' : ADMIN_OBJECTS.has(t) ? 'admin' : 'ddl');
      break;
    }
    default: {
      // SET, DISCARD, PREPARE, EXECUTE, DEALLOCATE, CALL (pg-session-nodes.ts).
      if (sessionStatement(type, s, s !== ctx.top || ctx.depth > 0, ctx.out)) break;
      const kinds = kindsByType(type);
      add(ctx, ...kinds);
      if (kinds.includes('unknown')) because(ctx.out, 'unknown', `the broker does not know what a ${type.replace(/Stmt$/, '')} statement does`);
    }
  }
  walk(s, STORES.has(type) && ctx.run ? { ...ctx, run: false } : ctx);
}

/** The ONLY names into the tables; those named no other way stay in `ctx.only`. */
function settleOnly(ctx: Ctx): void {
  for (const t of ctx.only) {
    if (ctx.out.tables.has(t)) ctx.only.delete(t);
    else ctx.out.tables.add(t);
  }
}

/** Kinds and tables of one top-level statement node; `only` receives the tables it names only with ONLY. */
function classifyNode(stmt: Node, text: string, depth: number, only: Set<string> = new Set()): Found {
  const [type, body] = Object.entries(stmt)[0] ?? ['', {}];
  const ctx: Ctx = { out: found(), ctes: EMPTY, cteRefs: new Set(), depth, text, top: node(body) ?? {}, run: true, only };
  try {
    if (isStatementKey(type) && isNode(body)) statement(type, body, ctx);
  } catch {
    because(ctx.out, 'unknown', 'the statement is nested too deeply to follow'); // fail closed
  }
  settleOnly(ctx);
  // Conservative: a CTE name that is also written schema-qualified (s.d) stays a table.
  for (const r of ctx.cteRefs) if ([...ctx.out.tables].some((t) => t.endsWith(`.${r}`))) ctx.out.tables.add(r);
  if (ctx.out.kinds.size === 0) because(ctx.out, 'unknown', `the broker does not know what a ${type.replace(/Stmt$/, '')} statement does`);
  return ctx.out;
}

function bySeverity(kinds: Set<Kind>): Kind[] {
  return KINDS.filter((k) => kinds.has(k));
}

interface Parsed {
  classification: Classification;
  /** Each statement's parse tree (empty on a parse error). */
  nodes: Node[];
}

function classifyText(sql: string, depth: number): Parsed {
  const fail = (error: string): Parsed => ({ classification: { statements: [{ sql: sql.trim(), kinds: ['unknown'], tables: [] }], error }, nodes: [] });
  // The server reads a query string up to its first NUL; so would the parser, and the rest would go unseen.
  if (sql.includes('\0')) return fail('the statement contains a NUL character');
  if (depth > MAX_DEPTH) return fail('SQL nested too deep to follow');
  let tree: { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  const bytes = Buffer.from(sql, 'utf8');
  const nodes: Node[] = [];
  const statements: ClassifiedStatement[] = (tree.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const text = bytes
      .subarray(start, s.stmt_len ? start + s.stmt_len : bytes.length)
      .toString('utf8')
      .trim();
    nodes.push(s.stmt);
    const only = new Set<string>();
    const f = classifyNode(s.stmt, text, depth, only);
    const st: ClassifiedStatement = { sql: text, kinds: bySeverity(f.kinds), tables: [...f.tables] };
    if (only.size) st.only = [...only];
    if (f.calls.size) st.calls = [...f.calls.values()];
    if (f.operators.size) st.operators = [...f.operators];
    if (f.casts.size) st.casts = [...f.casts];
    const why = f.why.get(st.kinds[st.kinds.length - 1]!);
    if (why) st.reason = why;
    const prepared = preparedOp(s.stmt, (e) => bySeverity(runningEffect(e, text, [e.params]).kinds));
    if (prepared) st.prepared = prepared;
    return st;
  });
  return { classification: { statements }, nodes };
}

/** SQL found inside a statement (a body, a literal): all its statements' kinds and tables together. */
function subClassify(sql: string, depth: number): Found {
  const out = found();
  const { classification } = classifyText(sql, depth);
  for (const st of classification.statements) {
    if (st.reason) because(out, st.kinds[st.kinds.length - 1]!, st.reason);
    for (const k of st.kinds) out.kinds.add(k);
    for (const t of st.tables) out.tables.add(t);
    for (const r of st.calls ?? []) out.calls.set(refKey(r), r);
    for (const o of st.operators ?? []) out.operators.add(o);
    for (const t of st.casts ?? []) out.casts.add(t);
  }
  if (classification.error) because(out, 'unknown', `SQL inside the statement cannot be read (${classification.error})`);
  return out;
}

export function classifyPostgres(sql: string): Classification {
  return classifyText(sql, 0).classification;
}

/**
 * The classification, and whether it holds for every text that differs from this one only in the values of
 * its literals. That is so for one statement that is
 *   - a plain SELECT whose kinds are exactly [read] (no INTO, no FOR UPDATE, no writing CTE), or
 *   - an INSERT whose kinds are [write] or [read, write] (VALUES or SELECT, ON CONFLICT, RETURNING),
 * with no other statement nested anywhere, and no function call outside a known-safe list (pg-functions.ts).
 * The classifier reads literal values only in: WHERE of UPDATE/DELETE/MERGE, SET and set_config, EXPLAIN
 * options, SQL-text and table-name arguments (EXECUTE, query_to_xml, table_to_xml, dblink …), COPY file names,
 * DO and function bodies — none of which such a statement can contain.
 */
export function classifyPostgresForCache(sql: string): { classification: Classification; literalIndependent: boolean } {
  const { classification, nodes } = classifyText(sql, 0);
  const st = classification.statements;
  if (classification.error || nodes.length !== 1 || st.length !== 1) return { classification, literalIndependent: false };
  const kinds = st[0]!.kinds.join(',');
  const top = nodes[0]!;
  const literalIndependent =
    ((node(top.SelectStmt) !== undefined && kinds === 'read') || (node(top.InsertStmt) !== undefined && (kinds === 'write' || kinds === 'read,write'))) &&
    onlySafeSelects(node(top.SelectStmt) ?? node(top.InsertStmt));
  return { classification, literalIndependent };
}

/**
 * What running the parts `parts` of statement `top` (text `text`) runs, as if they ran now: for definitions
 * read back from the catalog or from a DDL statement (pg-definitions.ts). PL/pgSQL compiles from `text`.
 */
export function runningEffect(top: Node, text: string, parts: unknown[], body?: 'function'): Found {
  const out = found();
  const ctx: Ctx = { out, ctes: EMPTY, cteRefs: new Set(), depth: 1, text, top, run: true, only: new Set() };
  try {
    if (body) merge(out, functionBodyEffect(top, text, 1, subClassify));
    walk(parts, ctx);
  } catch {
    out.kinds.add('unknown');
  }
  settleOnly(ctx); // a definition's ONLY is not followed: its tables count with their descendants
  return out;
}
