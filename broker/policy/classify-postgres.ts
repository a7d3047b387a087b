// Classify PostgreSQL statements with the PostgreSQL grammar itself (libpg-query, the server's parser).
import { loadModule, parseSync } from 'libpg-query';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';

type Node = Record<string, unknown>;

let loaded: Promise<void> | null = null;
/** libpg-query is WebAssembly: load it once at start, then parse synchronously. */
export function loadPostgresParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/** Server file and process functions: reading files, signalling backends, large-object I/O, dblink. */
const ADMIN_FUNCTIONS = new Set([
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_ls_logdir', 'pg_ls_waldir',
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote',
  'lo_import', 'lo_export', 'pg_file_write', 'pg_file_unlink', 'pg_file_rename', 'dblink', 'dblink_exec',
  'dblink_connect', 'set_config', 'pg_switch_wal', 'pg_create_restore_point',
]);

const PRIVILEGE_NODES = new Set([
  'GrantStmt', 'GrantRoleStmt', 'CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt',
  'AlterDefaultPrivilegesStmt', 'ReassignOwnedStmt', 'AlterOwnerStmt',
]);
const ADMIN_NODES = new Set(['AlterSystemStmt', 'CreateExtensionStmt', 'AlterExtensionStmt', 'LoadStmt', 'CheckPointStmt', 'CreatedbStmt', 'DropdbStmt', 'AlterDatabaseStmt', 'AlterDatabaseSetStmt', 'CreateTableSpaceStmt', 'DropTableSpaceStmt', 'CreateSubscriptionStmt', 'CreatePublicationStmt', 'CreateFdwStmt', 'CreateForeignServerStmt', 'CreateUserMappingStmt', 'ImportForeignSchemaStmt']);
const READ_NODES = new Set(['TransactionStmt', 'VariableShowStmt', 'FetchStmt', 'ClosePortalStmt', 'DiscardStmt', 'DeallocateStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt', 'ConstraintsSetStmt', 'CheckPointStmt_']);
const DDL_NODES = new Set(['VacuumStmt', 'ReindexStmt', 'ClusterStmt', 'CommentStmt', 'IndexStmt', 'ViewStmt', 'CreateStmt', 'RefreshMatViewStmt', 'SecLabelStmt']);
const UNKNOWN_NODES = new Set(['DoStmt', 'CallStmt', 'ExecuteStmt']);

/** Is a WHERE clause missing or constantly true (`WHERE true`, `WHERE 1=1`, `WHERE 'a'='a'`)? */
function unrestricted(where: unknown): boolean {
  if (!where) return true;
  const w = where as Node;
  const c = w.A_Const as Node | undefined;
  if (c) return c.boolval !== undefined && (c.boolval as Node).boolval === true;
  const e = w.A_Expr as Node | undefined;
  if (e && e.kind === 'AEXPR_OP') {
    const op = ((e.name as Node[])?.[0]?.String as Node | undefined)?.sval;
    const l = JSON.stringify(stripLocations(e.lexpr));
    const r = JSON.stringify(stripLocations(e.rexpr));
    if (op === '=' && l === r && !l.includes('ColumnRef')) return true;
  }
  const b = w.BoolExpr as Node | undefined;
  if (b && b.boolop === 'OR_EXPR') return (b.args as unknown[]).some(unrestricted);
  if (b && b.boolop === 'AND_EXPR') return (b.args as unknown[]).every(unrestricted);
  return false;
}

function stripLocations(n: unknown): unknown {
  return JSON.parse(JSON.stringify(n ?? null, (k, v: unknown) => (k === 'location' ? undefined : v)));
}

interface Walk {
  kinds: Set<Kind>;
  tables: Set<string>;
}

/** Visit every node under `n`: tables, admin functions and statements nested in CTEs, rules, EXPLAIN. */
function walk(n: unknown, acc: Walk): void {
  if (Array.isArray(n)) {
    for (const x of n) walk(x, acc);
    return;
  }
  if (!n || typeof n !== 'object') return;
  for (const [key, value] of Object.entries(n as Node)) {
    if (key === 'relname' && typeof value === 'string') {
      // A RangeVar: the JSON nests it bare under fields such as `relation`, or wrapped as { RangeVar: … }.
      acc.tables.add([(n as Node).schemaname, value].filter(Boolean).join('.').toLowerCase());
    } else if (key === 'FuncCall') {
      const names = ((value as Node).funcname as Node[]) ?? [];
      const last = (names[names.length - 1]?.String as Node | undefined)?.sval;
      if (typeof last === 'string' && ADMIN_FUNCTIONS.has(last.toLowerCase())) acc.kinds.add('admin');
    } else if (/^[A-Z]\w*Stmt$/.test(key)) {
      for (const k of stmtKinds(key, value as Node)) acc.kinds.add(k);
    }
    walk(value, acc);
  }
}

/** DROP names its objects as lists of strings, not RangeVars; collected here for the caller. */
let droppedTables: string[] = [];

/** The kinds of one statement node, before nested nodes are walked. */
function stmtKinds(type: string, s: Node): Kind[] {
  switch (type) {
    case 'InsertStmt':
    case 'MergeStmt':
    case 'LockStmt':
    case 'CreateTableAsStmt':
      return ['write'];
    case 'UpdateStmt':
    case 'DeleteStmt':
      return [unrestricted(s.whereClause) ? 'destructive' : 'write'];
    case 'SelectStmt':
      // FOR UPDATE / FOR SHARE take row locks: PostgreSQL refuses them in a read-only transaction.
      return [s.intoClause || s.lockingClause ? 'write' : 'read'];
    case 'DropStmt':
      for (const o of (s.objects as Node[]) ?? []) {
        const names = ((o.List as Node | undefined)?.items as Node[] | undefined)?.map((i) => (i.String as Node | undefined)?.sval);
        if (names?.every((x) => typeof x === 'string')) droppedTables.push(names.join('.').toLowerCase());
      }
      return ['destructive'];
    case 'TruncateStmt':
      return ['destructive'];
    case 'AlterTableStmt': {
      const cmds = ((s.cmds as Node[]) ?? []).map((c) => (c.AlterTableCmd as Node | undefined)?.subtype);
      const kinds: Kind[] = [cmds.some((t) => typeof t === 'string' && t.startsWith('AT_Drop')) ? 'destructive' : 'ddl'];
      if (cmds.includes('AT_ChangeOwner')) kinds.push('privilege'); // like ALTER … OWNER TO on other objects
      return kinds;
    }
    case 'CopyStmt':
      if (s.is_program || s.filename) return ['admin'];
      return [s.is_from ? 'write' : 'read'];
    case 'ExplainStmt': {
      const analyze = ((s.options as Node[]) ?? []).some((o) => (o.DefElem as Node | undefined)?.defname === 'analyze');
      return analyze ? [] : ['read']; // with ANALYZE it executes: the walked inner statement decides
    }
    case 'PrepareStmt':
    case 'DeclareCursorStmt':
    case 'RuleStmt':
    case 'CreateTrigStmt':
      return type === 'RuleStmt' || type === 'CreateTrigStmt' ? ['ddl'] : [];
    case 'VariableSetStmt': {
      const name = String(s.name ?? '').toLowerCase();
      return name === 'role' || name === 'session_authorization' ? ['privilege'] : ['read'];
    }
    default:
      if (PRIVILEGE_NODES.has(type)) return ['privilege'];
      if (ADMIN_NODES.has(type)) return ['admin'];
      if (READ_NODES.has(type)) return ['read'];
      if (DDL_NODES.has(type) || /^(Create|Alter|Define|Comment|Rename)/.test(type)) return ['ddl'];
      if (/^Drop/.test(type)) return ['destructive'];
      if (UNKNOWN_NODES.has(type)) return ['unknown'];
      return ['unknown'];
  }
}

function classifyNode(stmt: Node): { kinds: Set<Kind>; tables: Set<string> } {
  const acc: Walk = { kinds: new Set(), tables: new Set() };
  droppedTables = [];
  const [type, body] = Object.entries(stmt)[0] ?? ['', {}];
  for (const k of stmtKinds(type, body as Node)) acc.kinds.add(k);
  // EXPLAIN without ANALYZE plans but never runs its statement: only a read, of the tables it plans.
  if (type === 'ExplainStmt' && acc.kinds.has('read')) {
    walk(body, { kinds: new Set(), tables: acc.tables });
    return acc;
  }
  walk(body, acc);
  for (const t of droppedTables) acc.tables.add(t);
  if (acc.kinds.size === 0) acc.kinds.add('unknown');
  return acc;
}

export function classifyPostgres(sql: string): Classification {
  let tree: { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { statements: [{ sql: sql.trim(), kinds: ['unknown'], tables: [] }], error: message };
  }
  const bytes = Buffer.from(sql, 'utf8');
  const statements: ClassifiedStatement[] = (tree.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const text = bytes.subarray(start, s.stmt_len ? start + s.stmt_len : bytes.length).toString('utf8').trim();
    const { kinds, tables } = classifyNode(s.stmt);
    return { sql: text, kinds: [...kinds], tables: [...tables] };
  });
  return { statements };
}
