// Tables and small helpers for the PostgreSQL classifier: which statement node is which kind, how EXPLAIN,
// DROP/COMMENT objects, DML targets and file_fdw options are read, and the normalised-cache eligibility walk.
import type { Kind } from '../types.js';
import { isNode, list, listNames, names, node, refKey, sval, type Found, type Node } from './pg-ast.js';
import { isAdminFunction, isSafeFunction } from './pg-functions.js';

export const PRIVILEGE_NODES = new Set([
  'GrantStmt',
  'GrantRoleStmt',
  'CreateRoleStmt',
  'AlterRoleStmt',
  'AlterRoleSetStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'AlterOwnerStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'SecLabelStmt',
]);
export const ADMIN_NODES = new Set([
  'AlterSystemStmt',
  'CreateExtensionStmt',
  'AlterExtensionStmt',
  'AlterExtensionContentsStmt',
  'LoadStmt',
  'CheckPointStmt',
  'CreatedbStmt',
  'AlterDatabaseStmt',
  'AlterDatabaseSetStmt',
  'AlterDatabaseRefreshCollStmt',
  'CreateTableSpaceStmt',
  'AlterTableSpaceOptionsStmt',
  'AlterTableMoveAllStmt',
  'CreateSubscriptionStmt',
  'AlterSubscriptionStmt',
  'CreatePublicationStmt',
  'AlterPublicationStmt',
  'CreateFdwStmt',
  'AlterFdwStmt',
  'CreateForeignServerStmt',
  'AlterForeignServerStmt',
  'CreateUserMappingStmt',
  'AlterUserMappingStmt',
  'ImportForeignSchemaStmt',
  'CreateEventTrigStmt',
  'AlterEventTrigStmt',
  'CreatePLangStmt',
  'CreateAmStmt',
]);
/** Dropping these is destructive and more: the object is admin's or privilege's business. */
export const DROP_ALSO: Record<string, Kind> = {
  DropRoleStmt: 'privilege',
  DropOwnedStmt: 'privilege',
  DropdbStmt: 'admin',
  DropTableSpaceStmt: 'admin',
  DropSubscriptionStmt: 'admin',
  DropUserMappingStmt: 'admin',
};
export const READ_NODES = new Set([
  'TransactionStmt',
  'VariableShowStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'DeallocateStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'ConstraintsSetStmt',
]);
/** Objects whose DROP / RENAME is admin's business (DROP of a policy changes who sees what: privilege). */
export const ADMIN_OBJECTS = new Set([
  'OBJECT_EXTENSION',
  'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_PUBLICATION',
  'OBJECT_SUBSCRIPTION',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_LANGUAGE',
  'OBJECT_ACCESS_METHOD',
  'OBJECT_DATABASE',
  'OBJECT_TABLESPACE',
]);
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX']);
const ON_RELATION_OBJECTS = new Set(['OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_COLUMN', 'OBJECT_TABCONSTRAINT']);
/**
 * System relations whose contents are password hashes, server files or raw statistics: reading them is admin.
 * (pg_subscription is admin only where its subconninfo column may be read: pg-secrets.ts.)
 */
export const SENSITIVE_RELATIONS = new Set([
  'pg_authid',
  'pg_shadow',
  'pg_user_mapping',
  'pg_user_mappings',
  'pg_file_settings',
  'pg_hba_file_rules',
  'pg_ident_file_mappings',
  'pg_largeobject',
  'pg_statistic',
]);
/** Keys that look like statements but are parts of one. */
const NOT_STATEMENTS = new Set(['ReplicaIdentityStmt', 'PLAssignStmt', 'RawStmt']);

/** Is this parse-tree key a statement node (`SelectStmt`, `DropStmt`, …)? (`/^[A-Z]\w*Stmt$/`, but cheaper.) */
export function isStatementKey(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 65 && c <= 90 && k.length > 4 && k.endsWith('Stmt') && !NOT_STATEMENTS.has(k);
}

/** The kinds of a statement node that needs no closer look than its type. */
export function kindsByType(type: string): Kind[] {
  if (PRIVILEGE_NODES.has(type)) return ['privilege'];
  if (ADMIN_NODES.has(type)) return ['admin'];
  const also = DROP_ALSO[type];
  if (also) return ['destructive', also];
  if (READ_NODES.has(type)) return ['read'];
  if (
    /^(Create|Alter|Define|Comment|Rename)|^(IndexStmt|ViewStmt|RuleStmt|VacuumStmt|ReindexStmt|ClusterStmt|RefreshMatViewStmt|CompositeTypeStmt)$/.test(type)
  ) {
    return ['ddl'];
  }
  if (/^Drop/.test(type)) return ['destructive'];
  return ['unknown'];
}

/** Names a DML target can be referred to by in its WHERE clause. */
export function targetNames(rel: unknown): Set<string> {
  const rv = node(rel) ?? {};
  const out = new Set<string>();
  if (typeof rv.relname === 'string') {
    out.add(rv.relname);
    if (typeof rv.schemaname === 'string') out.add(`${rv.schemaname}.${rv.relname}`);
  }
  const alias = node(rv.alias)?.aliasname;
  if (typeof alias === 'string') out.add(alias);
  return out;
}

/** EXPLAIN runs its statement only with ANALYZE; `ANALYZE false|off|0|no` does not. */
export function explainExecutes(options: unknown): boolean {
  for (const o of list(options)) {
    const d = node(node(o)?.DefElem);
    if (d?.defname !== 'analyze') continue;
    const arg = node(d.arg);
    if (!arg) return true;
    const i = node(arg.Integer);
    const s = sval(arg) ?? (node(arg.Boolean) ? String(node(arg.Boolean)?.boolval === true) : undefined);
    const off = i
      ? i.ival === undefined || i.ival === 0
      : s !== undefined && ['false', 'off', 'no', 'n', 'f', 'fa', 'fal', 'fals', 'of', '0'].includes(s.toLowerCase());
    if (!off) return true;
  }
  return false;
}

/** The table a DROP / COMMENT object names: a relation by its name, a trigger/rule/policy/column by its table. */
export function objectTable(objtype: unknown, obj: unknown): string | null {
  if (typeof objtype !== 'string') return null;
  const parts = listNames(obj);
  if (!parts) return null;
  const rel = RELATION_OBJECTS.has(objtype) ? parts : ON_RELATION_OBJECTS.has(objtype) ? parts.slice(0, -1) : [];
  return rel.length ? rel.slice(-2).join('.').toLowerCase() : null;
}

/** file_fdw options: a foreign table over a server file or a program's output. */
export const FILE_OPTIONS = new Set(['filename', 'program']);

export function hasOption(v: unknown, opts: ReadonlySet<string>): boolean {
  if (Array.isArray(v)) return v.some((x) => hasOption(x, opts));
  if (!isNode(v)) return false;
  const d = node(v.DefElem);
  if (d && typeof d.defname === 'string' && opts.has(d.defname.toLowerCase())) return true;
  return Object.values(v).some((x) => hasOption(x, opts));
}

/** Only SELECTs, and only calls of known-safe functions, anywhere in the tree (normalised-cache rule). */
export function onlySafeSelects(v: unknown): boolean {
  if (Array.isArray(v)) return v.every(onlySafeSelects);
  if (!isNode(v)) return true;
  for (const k in v) {
    const x = v[k];
    if (k !== 'SelectStmt' && (isStatementKey(k) || k === 'ReplicaIdentityStmt' || k === 'PLAssignStmt')) return false;
    if (k === 'FuncCall' && !(isNode(x) && isSafeFunction(x))) return false;
    if (!onlySafeSelects(x)) return false;
  }
  return true;
}

/** Predefined roles that read or write server files, run programs, or signal other backends. */
export const SERVER_ROLES = new Set([
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
  'pg_signal_backend',
  'pg_signal_autovacuum_worker',
  'pg_checkpoint',
  'pg_create_subscription',
]);

/** A DefElem argument (CREATE AGGREGATE sfunc = …, CREATE OPERATOR function = …) naming a server-file function. */
export function definesAdminFunction(arg: unknown): boolean {
  const a = node(arg);
  const parts = names(node(a?.TypeName)?.names ?? node(a?.List)?.items) ?? [];
  const name = parts[parts.length - 1] ?? sval(a);
  return name !== undefined && isAdminFunction(name.toLowerCase());
}

/**
 * Operators and possible calls of one expression node that runs, recorded in `out` for the catalog to resolve:
 * A_Expr / SubLink / SortBy operators, the `=` of `CASE x WHEN y`, the type of a cast, and attribute notation — `t.f` or `(t).f`
 * is the call `f(t)` when t has no column f, so the last name of a qualified column reference may be a call.
 */
export function runsIn(k: string, x: Node, out: Found): void {
  const op = (v: unknown) => {
    const parts = names(v);
    // OPERATOR(pg_catalog.=) is the built-in one: nobody else can create operators there.
    if (parts?.length && !(parts.length > 1 && parts[parts.length - 2] === 'pg_catalog')) out.operators.add(parts[parts.length - 1]!);
  };
  const maybe = (name: string | undefined) => {
    if (!name) return;
    const ref = { schema: null, name, args: 1, maybe: true };
    out.calls.set(refKey(ref), ref);
  };
  if (k === 'A_Expr') op(x.name);
  else if (k === 'SubLink') op(x.operName);
  else if (k === 'SortBy') op(x.useOp);
  else if (k === 'CaseExpr' && x.arg !== undefined) out.operators.add('=');
  else if (k === 'TypeCast') {
    // Even pg_catalog.int4 (`::int`): a user-defined cast from a user's type to int4 runs the user's function.
    const parts = names(node(x.typeName)?.names);
    if (parts?.length) out.casts.add(parts[parts.length - 1]!.toLowerCase());
  } else if (k === 'ColumnRef') {
    const fields = list(x.fields);
    if (fields.length > 1) maybe(sval(fields[fields.length - 1]));
  } else if (k === 'A_Indirection') for (const i of list(x.indirection)) maybe(sval(i));
}
