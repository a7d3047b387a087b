// What calling a PostgreSQL function, or changing a setting, does — by name, and where it matters by literal argument.
import type { Kind } from '../types.js';
import { list, literalString, names, node, type Node } from './pg-ast.js';

/** Server file, process, replication and large-object functions, and dblink: `admin` wherever they appear. */
const ADMIN_FUNCTIONS = new Set([
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_logdir_ls',
  'loread',
  'lowrite',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_signal_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_switch_xlog',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_log_backend_memory_contexts',
  'pg_log_standby_snapshot',
  'pg_import_system_collations',
  'pg_logical_emit_message',
  'pg_sync_replication_slots',
  'pg_truncate_visibility_map',
  'pg_nextoid',
  'pg_stat_statements_reset',
  'get_raw_page',
]);
/** Families of the same, by prefix: pg_ls_dir/pg_ls_waldir/…, adminpack's pg_file_*, server-side lo_*, dblink*, … */
const ADMIN_PREFIXES = [
  'pg_ls_',
  'pg_file_',
  'lo_',
  'dblink',
  'pg_stat_reset',
  'pg_replication_origin_',
  'pg_logical_slot_',
  'pg_wal_replay_',
  'pg_xlog_replay_',
  'binary_upgrade_',
];

/** Functions that change data although called from a SELECT (they fail in a read-only transaction). */
const WRITE_FUNCTIONS = new Set([
  'nextval',
  'setval',
  'gin_clean_pending_list',
  'brin_summarize_new_values',
  'brin_summarize_range',
  'brin_desummarize_range',
  'pg_restore_relation_stats',
  'pg_clear_relation_stats',
  'pg_restore_attribute_stats',
  'pg_clear_attribute_stats',
]);

/** Functions that run a query given as text, by argument position: a literal is classified, anything else is unknown. */
const SQL_TEXT_ARGS: Record<string, number[]> = {
  query_to_xml: [0],
  query_to_xmlschema: [0],
  query_to_xml_and_xmlschema: [0],
  ts_stat: [0],
  crosstab: [0, 1],
  crosstab2: [0],
  crosstab3: [0],
  crosstab4: [0],
  crosstab_hash: [0, 1],
  pg_background_launch: [0],
};
/** Functions that build and run SQL the broker cannot see (from names, or later, elsewhere): unknown. */
const OPAQUE_FUNCTIONS = new Set([
  'connectby',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'run_command_on_workers',
  'run_command_on_placements',
  'run_command_on_shards',
  'run_command_on_colocated_placements',
  'run_command_on_all_nodes',
]);
/** pg_cron: schedules arbitrary SQL to run later. */
const CRON_FUNCTIONS = new Set(['schedule', 'schedule_in_database', 'alter_job']);
/** Functions that read a whole table named by a regclass argument: a read of that table. */
const TABLE_ARG_FUNCTIONS = new Set(['table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema']);

/** What one function call does. `sql`: query texts it runs, for the caller to classify one level deeper. */
export interface CallEffect {
  kinds: Kind[];
  tables: string[];
  sql: string[];
  /** Why the call is `unknown` (what could not be seen through), when it is. */
  unknown?: string;
}

/**
 * The setting names a `set_config(<column>, …)` argument stands for, when it is the `name` column of rows that can
 * only be those settings (pg-settings-rows.ts); null otherwise.
 */
export type RowSettings = (arg: unknown) => string[] | null;

/** The lower-cased name of a function call and its schema, if written. */
export function funcName(fc: Node): { schema: string | null; name: string } {
  const parts = (names(fc.funcname) ?? []).map((s) => s.toLowerCase());
  return { name: parts[parts.length - 1] ?? '', schema: parts.length > 1 ? parts[parts.length - 2]! : null };
}

/**
 * Kinds contributed by a function call (the call's arguments are walked by the caller).
 * Names match whatever schema is written: a user function that shadows a dangerous name is treated as it.
 */
export function callEffect(fc: Node, rows?: RowSettings): CallEffect {
  const { schema, name } = funcName(fc);
  const args = list(fc.args);
  const out: CallEffect = { kinds: [], tables: [], sql: [] };
  const unknown = (why: string) => {
    out.kinds.push('unknown');
    out.unknown ??= why;
  };
  if (isAdminFunction(name)) out.kinds.push('admin');
  if (WRITE_FUNCTIONS.has(name)) out.kinds.push('write');
  if (name === 'set_config') {
    // set_config(name, value, is_local) is SET [LOCAL] name = value: the same rule, when the name is a literal —
    // or the name column of pg_settings rows a WHERE clause restricts to literal names (pg_dump does that).
    const literal = literalString(args[0]);
    const settings = literal === null ? (rows?.(args[0]) ?? null) : [literal];
    const value = literalString(args[1]);
    if (settings === null) unknown('the setting name given to set_config() is not a literal');
    else for (const setting of settings) out.kinds.push(...settingKinds(setting, { value }));
  }
  const sqlArgs = SQL_TEXT_ARGS[name] ?? (name === 'ts_rewrite' && args.length === 2 ? [1] : undefined);
  if (sqlArgs) {
    for (const i of sqlArgs) {
      if (i >= args.length) continue;
      const text = literalString(args[i]);
      if (text === null) unknown(`dynamic SQL: the query given to ${name}() is not a literal`);
      else out.sql.push(text);
    }
  }
  if (OPAQUE_FUNCTIONS.has(name) || (schema === 'cron' && CRON_FUNCTIONS.has(name))) unknown(`${name}() builds or schedules SQL the broker cannot see`);
  if (TABLE_ARG_FUNCTIONS.has(name)) {
    const table = literalString(args[0]);
    const parsed = table === null ? null : regclassName(table);
    if (parsed) out.tables.push(parsed);
    else unknown(`the table given to ${name}() is not a literal name`); // a table we cannot name would slip past every table rule
  }
  return out;
}

/** A server file / process / replication / large-object / dblink function, by its lower-cased name. */
export function isAdminFunction(name: string): boolean {
  return ADMIN_FUNCTIONS.has(name) || ADMIN_PREFIXES.some((p) => name.startsWith(p)) || name.includes('replication_slot');
}

/** 'Public."Secrets"' → 'public.secrets' (table names are reported lower-cased); null if it is not a plain name. */
function regclassName(text: string): string | null {
  const parts = text.trim().split('.');
  const out: string[] = [];
  for (const p of parts) {
    const m = /^\s*(?:"((?:[^"]|"")+)"|([A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*))\s*$/.exec(p);
    if (!m) return null;
    out.push((m[1] ?? m[2] ?? '').replace(/""/g, '"').toLowerCase());
  }
  return out.length >= 1 && out.length <= 3 ? out.slice(-2).join('.') : null;
}

/** Client encodings in which every ASCII byte is the ASCII character (SJIS, BIG5, GBK, UHC, JOHAB, GB18030 are not). */
const SAFE_ENCODINGS = new Set([
  'utf8',
  'unicode',
  'sqlascii',
  'latin1',
  'latin2',
  'latin3',
  'latin4',
  'latin5',
  'latin6',
  'latin7',
  'latin8',
  'latin9',
  'latin10',
  'iso88591',
  'iso88592',
  'iso88593',
  'iso88594',
  'iso88595',
  'iso88596',
  'iso88597',
  'iso88598',
  'iso88599',
  'iso885910',
  'iso885913',
  'iso885914',
  'iso885915',
  'iso885916',
  'win1250',
  'win1251',
  'win1252',
  'win1253',
  'win1254',
  'win1255',
  'win1256',
  'win1257',
  'win1258',
  'win866',
  'win874',
  'koi8',
  'koi8r',
  'koi8u',
  'eucjp',
  'euccn',
  'euckr',
  'euctw',
  'eucjis2004',
  'muleinternal',
  'alt',
  'win',
  'tcvn',
  'tcvn5712',
  'vscii',
  'windows1250',
  'windows1251',
  'windows1252',
  'windows1253',
  'windows1254',
  'windows1255',
  'windows1256',
  'windows1257',
  'windows1258',
  'windows866',
  'windows874',
  'cp1250',
  'cp1251',
  'cp1252',
  'cp1253',
  'cp1254',
  'cp1255',
  'cp1256',
  'cp1257',
  'cp1258',
  'cp866',
]);

/** Superuser settings that switch off integrity or auditing, or load code: changing them is `admin`. */
const ADMIN_SETTINGS = new Set([
  'session_replication_role',
  'allow_system_table_mods',
  'zero_damaged_pages',
  'ignore_checksum_failure',
  'ignore_system_indexes',
  'ignore_invalid_pages',
  'session_preload_libraries',
  'local_preload_libraries',
  'dynamic_library_path',
  'lo_compat_privileges',
  'jit_provider',
  'allow_in_place_tablespaces',
]);
/** …and families of them: logging and auditing, and the PL start-up hooks that run code (plperl.on_init, pltcl.start_proc). */
const ADMIN_SETTING_PREFIXES = ['log_', 'debug_', 'trace_', 'pgaudit.', 'plperl.', 'pltcl.', 'pltclu.', 'plpython', 'plv8.'];

/**
 * Kinds of `SET name = value` (also SET LOCAL, RESET, set_config). `value` is the literal value, null when it is
 * not a literal, and absent for DEFAULT / RESET / FROM CURRENT (back to what the session started with).
 *  - role, session_authorization: privilege, whatever the value (RESET ROLE and SET ROLE NONE change the role too);
 *  - standard_conforming_strings off, or a client_encoding whose multibyte characters contain ASCII bytes:
 *    unknown — from then on the server would read a backslash or a quote where this parser does not, and
 *    every later classification could be wrong;
 *  - settings that disable triggers, checksums, logging or load libraries: admin;
 *  - anything else is a harmless session setting: read.
 */
export function settingKinds(name: string, v: { value?: string | null }): Kind[] {
  const n = name.trim().toLowerCase();
  if (n === 'role' || n === 'session_authorization') return ['privilege'];
  if (n === 'standard_conforming_strings') {
    if (!('value' in v)) return ['read'];
    return v.value != null && ['on', 'true', 'yes', '1', 't', 'y'].includes(v.value.trim().toLowerCase()) ? ['read'] : ['unknown'];
  }
  if (n === 'client_encoding') {
    if (!('value' in v)) return ['read'];
    return v.value != null && SAFE_ENCODINGS.has(v.value.toLowerCase().replace(/[^a-z0-9]/g, '')) ? ['read'] : ['unknown'];
  }
  if (ADMIN_SETTINGS.has(n) || ADMIN_SETTING_PREFIXES.some((p) => n.startsWith(p))) return ['admin'];
  return ['read'];
}

/** The literal value of a `SET` statement's argument list (`SET x = 'a'`, `= 1`, `TO on`), null if not one literal. */
export function setValue(args: unknown): string | null {
  const a = list(args);
  if (a.length !== 1) return null;
  const c = node(node(a[0])?.A_Const);
  if (!c) return literalString(a[0]);
  const i = node(c.ival);
  if (i) return String(typeof i.ival === 'number' ? i.ival : 0);
  const f = node(c.fval);
  if (f && typeof f.fval === 'string') return f.fval;
  const b = node(c.boolval);
  if (b) return b.boolval === true ? 'true' : 'false';
  return literalString(a[0]);
}

/**
 * Functions a literal cannot change the classification of: the normalised cache may reuse a plain SELECT's
 * classification for different literals only if every function it calls is one of these (see index.ts).
 */
const SAFE_FUNCTIONS = new Set([
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'bool_and',
  'bool_or',
  'every',
  'array_agg',
  'string_agg',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'stddev',
  'variance',
  'row_number',
  'rank',
  'dense_rank',
  'percent_rank',
  'cume_dist',
  'ntile',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'nth_value',
  'abs',
  'round',
  'trunc',
  'floor',
  'ceil',
  'ceiling',
  'mod',
  'power',
  'sqrt',
  'sign',
  'lower',
  'upper',
  'length',
  'char_length',
  'octet_length',
  'substr',
  'substring',
  'position',
  'strpos',
  'btrim',
  'ltrim',
  'rtrim',
  'trim',
  'replace',
  'concat',
  'concat_ws',
  'left',
  'right',
  'lpad',
  'rpad',
  'split_part',
  'starts_with',
  'md5',
  'to_char',
  'to_date',
  'to_timestamp',
  'to_number',
  'now',
  'date_trunc',
  'date_part',
  'extract',
  'age',
  'make_date',
  'make_interval',
  'coalesce',
  'nullif',
  'greatest',
  'least',
  'array_length',
  'cardinality',
  'unnest',
  'generate_series',
  'jsonb_build_object',
  'json_build_object',
  'to_json',
  'to_jsonb',
  'jsonb_array_elements',
  'json_array_elements',
  'row_to_json',
  'format_type',
  'pg_typeof',
  'overlay',
  'current_schema',
  'current_database',
  'version',
  'statement_timestamp',
  'clock_timestamp',
  'transaction_timestamp',
]);

export function isSafeFunction(fc: Node): boolean {
  const { schema, name } = funcName(fc);
  return (schema === null || schema === 'pg_catalog') && SAFE_FUNCTIONS.has(name);
}
