// SET statements: session settings are reads, server-wide ones admin, passwords and roles privilege — and the
// few session settings that change how the server splits text (sql_mode, the client character set) are unknown
// unless their new value is known to be harmless, since the classifier lexes every statement the default way.
import type { Kind } from '../types.js';
import type { Token } from './mysql-lexer.js';
import { parseTokens } from './mysql-parse.js';
import { isPunct, opaque, splitDepth0, stringLiteral, unparsed, verdict, W, type Verdict } from './mysql-tokens.js';

/**
 * sql_mode flags that leave the lexing of quotes and comments alone. Not here, so unknown: NO_BACKSLASH_ESCAPES
 * (`'a\'; DROP TABLE t; -- '` becomes two statements), ANSI_QUOTES and ANSI ("…" becomes an identifier, where a
 * backslash is no escape), HIGH_NOT_PRECEDENCE, and the ORACLE/MSSQL/DB2/… emulations that change the grammar.
 */
const SAFE_SQL_MODES = new Set([
  '', 'STRICT_TRANS_TABLES', 'STRICT_ALL_TABLES', 'NO_ZERO_IN_DATE', 'NO_ZERO_DATE', 'ERROR_FOR_DIVISION_BY_ZERO',
  'NO_ENGINE_SUBSTITUTION', 'ONLY_FULL_GROUP_BY', 'NO_AUTO_CREATE_USER', 'NO_AUTO_VALUE_ON_ZERO', 'TRADITIONAL',
  'PIPES_AS_CONCAT', 'IGNORE_SPACE', 'REAL_AS_FLOAT', 'NO_UNSIGNED_SUBTRACTION', 'NO_DIR_IN_CREATE',
  'PAD_CHAR_TO_FULL_LENGTH', 'ALLOW_INVALID_DATES', 'NO_FIELD_OPTIONS', 'NO_KEY_OPTIONS', 'NO_TABLE_OPTIONS',
  'TIME_TRUNCATE_FRACTIONAL', 'EMPTY_STRING_IS_NULL', 'SIMULTANEOUS_ASSIGNMENT',
]);

/** Client character sets in which a backslash or quote byte is never the tail of a multi-byte character (unlike gbk, sjis, big5, cp932). */
const SAFE_CHARSETS = new Set(['utf8', 'utf8mb3', 'utf8mb4', 'latin1', 'ascii', 'binary', 'default']);

/** Session variables only a privileged account may set, that hide statements from replication or the binary log. */
const ADMIN_SESSION_VARS = new Set([
  'sql_log_bin', 'sql_log_off', 'pseudo_thread_id', 'pseudo_slave_mode', 'pseudo_replica_mode', 'gtid_next',
  'gtid_domain_id', 'gtid_seq_no', 'server_id', 'skip_replication', 'debug', 'debug_dbug', 'debug_sync',
  'binlog_format', 'binlog_row_image', 'sql_slave_skip_counter', 'sql_replica_skip_counter',
]);
const GLOBAL_SCOPES = new Set(['GLOBAL', 'PERSIST', 'PERSIST_ONLY']);
const SESSION_SCOPES = new Set(['SESSION', 'LOCAL']);

/** The value of `sql_mode = …` or a character set: a literal, a bare word, or DEFAULT; null when it is an expression. */
function literal(ts: readonly Token[]): string | null {
  if (ts.length === 1 && ts[0]!.type === 'word') return ts[0]!.value;
  return stringLiteral(ts);
}

function charsetKind(ts: readonly Token[]): Kind {
  const cs = literal(ts.slice(0, 1));
  return cs !== null && SAFE_CHARSETS.has(cs.toLowerCase()) ? 'read' : 'unknown';
}

/** Whether text written under this sql_mode (`A,B,…`) is lexed as the classifier lexes it (no ANSI_QUOTES, …). */
export function isSafeSqlMode(mode: string): boolean {
  const flags = mode.toUpperCase().split(',').map((f) => f.trim());
  return mode.toUpperCase() === 'DEFAULT' || flags.every((f) => SAFE_SQL_MODES.has(f));
}

function systemVarKind(name: string, global: boolean, value: readonly Token[]): Kind {
  if (global) return 'admin';
  const n = name.toLowerCase();
  if (n === 'sql_mode') {
    const mode = literal(value);
    return mode !== null && isSafeSqlMode(mode) ? 'read' : 'unknown';
  }
  if (n === 'character_set_client') return charsetKind(value);
  if (ADMIN_SESSION_VARS.has(n) || n.startsWith('wsrep_')) return 'admin';
  return 'read';
}

export function classifySet(ts: Token[]): Verdict {
  const first = W(ts[1]);
  if (first === 'PASSWORD' || first === 'ROLE' || (first === 'DEFAULT' && W(ts[2]) === 'ROLE')) return verdict(['privilege']);
  if (first === 'STATEMENT') return opaque(); // SET STATEMENT var=… FOR <statement>: not analysed
  const kinds = new Set<Kind>();
  let global = false; // `SET GLOBAL a = 1, b = 2` sets both globally
  for (const part of splitDepth0(ts.slice(1), ',')) {
    let k = 0;
    const scope = W(part[0]);
    if (scope && GLOBAL_SCOPES.has(scope)) [global, k] = [true, 1];
    else if (scope && SESSION_SCOPES.has(scope)) [global, k] = [false, 1];
    const w = W(part[k]);
    if (w === 'TRANSACTION') {
      kinds.add(global ? 'admin' : 'read');
      continue;
    }
    if (w === 'NAMES' || w === 'CHARSET' || (w === 'CHARACTER' && W(part[k + 1]) === 'SET')) {
      kinds.add(charsetKind(part.slice(w === 'CHARACTER' ? k + 2 : k + 1)));
      continue;
    }
    if (w === 'PASSWORD' || w === 'ROLE') {
      kinds.add('privilege');
      continue;
    }
    const eq = part.findIndex((t) => isPunct(t, '=') || isPunct(t, ':='));
    if (eq < 0) return unparsed('a SET it cannot read');
    const target = part.slice(k, eq);
    const value = part.slice(eq + 1);
    if (isPunct(target[0], '@')) {
      kinds.add('read'); // a user variable
      continue;
    }
    let name = target;
    let g = global;
    if (isPunct(target[0], '@@')) {
      const s = W(target[1]);
      name = target.slice(1);
      if (s && isPunct(target[2], '.') && (GLOBAL_SCOPES.has(s) || SESSION_SCOPES.has(s))) {
        g = GLOBAL_SCOPES.has(s);
        name = target.slice(3);
      }
    }
    if (name.length === 0 || (name[0]!.type !== 'word' && name[0]!.type !== 'ident')) return unparsed('a SET it cannot read');
    // `default.key_buffer_size`, `hot_cache.key_buffer_size`: a key cache's variable, named by its last part.
    const last = name[name.length - 1]!;
    kinds.add(systemVarKind(last.type === 'word' ? last.text : last.value, g, value));
  }
  // A subquery in a value reads tables: take them from the parser, or give up if it cannot say.
  let tables: string[] = [];
  if (ts.some((t) => t.type === 'word' && t.value === 'SELECT')) {
    const p = parseTokens(ts);
    if (typeof p === 'string') return unparsed(p);
    tables = p.tables;
  }
  return verdict(kinds.size ? [...kinds] : ['read'], tables);
}
