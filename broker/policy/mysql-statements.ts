// One MySQL/MariaDB statement (its tokens) → kinds and tables. Queries and DML go through node-sql-parser;
// everything else is dispatched on its leading keywords. A verb not listed here is unknown (fail closed).
import type { Kind } from '../types.js';
import type { Token } from './mysql-lexer.js';
import { classifyAlter, classifyCreate, classifyDrop, classifyRename, classifyTruncate } from './mysql-ddl.js';
import { callsIn } from './mysql-calls.js';
import { closing, fromNames, parseTokens, unrestricted, type Parsed } from './mysql-parse.js';
import { evaluate } from './mysql-env.js';
import { Running } from './mysql-running.js';
import { classifySet } from './mysql-set.js';
import {
  fakeWord,
  findWord,
  isPunct,
  isWord,
  merge,
  nameAt,
  nameList,
  opaque,
  stringLiteral,
  unparsed,
  verdict,
  W,
  type Ctx,
  type Verdict,
} from './mysql-tokens.js';

/** Functions that reach outside the database: server files, and the lib_mysqludf_sys family that runs commands. */
const ADMIN_FUNCTIONS = new Set(['LOAD_FILE']);
const UNKNOWN_FUNCTIONS = new Set(['SYS_EXEC', 'SYS_EVAL', 'SYS_GET', 'SYS_SET', 'SYS_BINEVAL', 'LIB_MYSQLUDF_SYS_INFO']);

/** Found anywhere in a statement, whatever the parser makes of it: INTO OUTFILE, LOAD_FILE(), row locks. */
function tripwires(ts: readonly Token[]): Verdict {
  const out: Kind[] = [];
  let reason: string | undefined;
  ts.forEach((t, k) => {
    const next = ts[k + 1];
    if (isWord(t, 'OUTFILE', 'DUMPFILE') && isWord(ts[k - 1], 'INTO')) out.push('admin');
    if ((t.type === 'word' || t.type === 'ident') && isPunct(next, '(')) {
      const name = t.value.toUpperCase();
      if (ADMIN_FUNCTIONS.has(name)) out.push('admin');
      if (UNKNOWN_FUNCTIONS.has(name)) {
        out.push('unknown');
        reason = `${t.text}() runs commands on the database server`;
      }
    }
    // SELECT … FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE take row locks: a write.
    if ((isWord(t, 'FOR') && isWord(next, 'UPDATE', 'SHARE')) || (isWord(t, 'LOCK') && isWord(next, 'IN') && isWord(ts[k + 2], 'SHARE'))) {
      out.push('write');
    }
  });
  const v = verdict(out);
  if (reason) v.reason = reason;
  return v;
}

/**
 * MariaDB sequences: NEXTVAL(s), SETVAL(s, n), NEXT VALUE FOR s (and s.nextval under sql_mode=ORACLE) advance or set
 * one, a write of the sequence, however read-only the statement looks; LASTVAL(s), PREVIOUS VALUE FOR s read it.
 */
function sequences(ts: readonly Token[]): Verdict {
  const kinds: Kind[] = [];
  const tables: string[] = [];
  const use = (kind: Kind, at: number): void => {
    kinds.push(kind);
    const n = nameAt(ts, at);
    if (n) tables.push(n.name);
  };
  ts.forEach((t, k) => {
    if (isWord(t, 'NEXTVAL', 'SETVAL', 'LASTVAL') && isPunct(ts[k + 1], '(') && !isPunct(ts[k - 1], '.')) use(t.value === 'LASTVAL' ? 'read' : 'write', k + 2);
    else if (isWord(t, 'NEXT', 'PREVIOUS') && isWord(ts[k + 1], 'VALUE') && isWord(ts[k + 2], 'FOR')) use(t.value === 'NEXT' ? 'write' : 'read', k + 3);
    else if (isWord(t, 'NEXTVAL') && isPunct(ts[k - 1], '.')) kinds.push('write');
  });
  return verdict(kinds, tables);
}

/** The tokens of the statement's own (depth-0) WHERE clause; null if it has none, 'ambiguous' if several. */
function whereClause(ts: readonly Token[]): Token[] | null | 'ambiguous' {
  let depth = 0;
  let start = -1;
  let end = ts.length;
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k]!;
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')')) depth--;
    else if (depth === 0 && isWord(t, 'WHERE')) {
      if (start >= 0) return 'ambiguous';
      start = k + 1;
    } else if (depth === 0 && start >= 0 && end === ts.length) {
      if ((isWord(t, 'ORDER') && isWord(ts[k + 1], 'BY')) || isWord(t, 'LIMIT', 'RETURNING')) end = k;
    }
  }
  return start < 0 ? null : ts.slice(start, end);
}

/** Modifiers after the verb that node-sql-parser does not know and that change nothing here. */
function withoutModifiers(ts: Token[]): Token[] {
  let k = 1;
  while (isWord(ts[k], 'LOW_PRIORITY', 'QUICK', 'DELAYED', 'HIGH_PRIORITY')) k++;
  return [ts[0]!, ...ts.slice(k)];
}

/**
 * What node-sql-parser cannot read in a query but that changes nothing here: index hints (`USE INDEX (i)`) only
 * steer the planner, and FOR SHARE is a row lock like FOR UPDATE (the tripwires have already seen it).
 */
function forParser(ts: Token[]): Token[] {
  const out: Token[] = [];
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k]!;
    if (isWord(t, 'USE', 'FORCE', 'IGNORE') && isWord(ts[k + 1], 'INDEX', 'KEY')) {
      let j = k + 2;
      if (isWord(ts[j], 'FOR')) j += isWord(ts[j + 1], 'JOIN') ? 2 : 3; // FOR JOIN | FOR ORDER BY | FOR GROUP BY
      const close = isPunct(ts[j], '(') ? closing(ts, j) : -1;
      if (close > 0) {
        k = close;
        continue;
      }
    }
    out.push(isWord(t, 'SHARE') && isWord(ts[k - 1], 'FOR') ? { ...t, text: 'UPDATE', value: 'UPDATE' } : t);
  }
  return out;
}

/** UPDATE / DELETE: a write, or destructive with no WHERE (single- or multi-table) or one that can hold for every row. */
function dml(ts: Token[], p: Parsed): Verdict {
  const where = whereClause(ts);
  if (where === 'ambiguous' || (where === null) !== (p.ast.where == null)) return unparsed('the WHERE clause could not be located');
  const outer = new Set([...fromNames(p.ast.table), ...fromNames(p.ast.from)]);
  return verdict([where === null || unrestricted(where, outer) ? 'destructive' : 'write'], p.tables);
}

function query(ts: Token[]): Verdict {
  const verb = W(ts[0]) ?? '(';
  if (verb === 'TABLE') {
    const n = nameAt(ts, 1);
    return n ? verdict(['read'], [n.name]) : unparsed('TABLE without a name');
  }
  const p = parseTokens(forParser(['INSERT', 'REPLACE', 'UPDATE', 'DELETE'].includes(verb) ? withoutModifiers(ts) : ts));
  if (typeof p === 'string') return unparsed(p);
  const type = String(p.ast.type);
  const expected: Record<string, string[]> = {
    SELECT: ['select'],
    '(': ['select'],
    VALUES: ['select'],
    INSERT: ['insert'],
    REPLACE: ['replace', 'insert'],
    UPDATE: ['update'],
    DELETE: ['delete'],
    WITH: ['select', 'insert', 'replace', 'update', 'delete'],
  };
  if (!expected[verb]?.includes(type)) return unparsed(`${verb} read as ${type}`);
  if (type === 'select') return verdict(['read'], p.tables);
  if (type === 'insert' || type === 'replace') return verdict(['write'], p.tables);
  return dml(ts, p);
}

/** EXPLAIN / DESCRIBE: a read that plans its statement; with ANALYZE it runs it, so the statement's own kinds. */
function explain(ts: Token[], ctx: Ctx): Verdict {
  let k = 1;
  let analyze = false;
  for (;;) {
    if (isWord(ts[k], 'EXTENDED', 'PARTITIONS')) k++;
    else if (isWord(ts[k], 'ANALYZE')) [analyze, k] = [true, k + 1];
    else if (isWord(ts[k], 'FORMAT') && isPunct(ts[k + 1], '=')) k += 3;
    else break;
  }
  if (isWord(ts[k], 'FOR') && isWord(ts[k + 1], 'CONNECTION')) return verdict(['read']);
  if (isWord(ts[k], 'SELECT', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'TABLE', 'WITH', 'VALUES') || isPunct(ts[k], '(')) {
    const inner = ctx.inner(ts.slice(k));
    if (analyze) return inner;
    return { ...inner, kinds: inner.kinds.includes('unknown') ? ['read', 'unknown'] : ['read'] };
  }
  const n = k === 1 ? nameAt(ts, 1) : null; // DESCRIBE t [column]
  return n && !analyze ? verdict(['read'], [n.name]) : unparsed('an EXPLAIN it cannot read');
}

/** Names after TABLE/TABLES (and optional NO_WRITE_TO_BINLOG / LOCAL). */
function tablesAfter(ts: Token[], from: number): string[] {
  const t = findWord(ts, from, 'TABLE', 'TABLES');
  return t >= 0 ? nameList(ts, t + 1) : [];
}

/** The table of SHOW CREATE TABLE/VIEW t, SHOW [FULL] COLUMNS/INDEX FROM t [FROM db]. */
function showTables(ts: Token[]): string[] {
  if (isWord(ts[1], 'CREATE') && isWord(ts[2], 'TABLE', 'VIEW')) return nameList(ts, 3);
  const k = isWord(ts[1], 'FULL', 'EXTENDED') ? 2 : 1;
  if (!isWord(ts[k], 'COLUMNS', 'FIELDS', 'INDEX', 'INDEXES', 'KEYS') || !isWord(ts[k + 1], 'FROM', 'IN')) return [];
  const n = nameAt(ts, k + 2);
  const db = n && isWord(ts[n.next], 'FROM', 'IN') ? nameAt(ts, n.next + 1) : null;
  return n ? [db ? `${db.name}.${n.name}` : n.name] : [];
}

/** A prepared statement's name as written (`s`, `` `s` ``), lower-cased; null if it is not a name. */
const statementName = (t: Token | undefined): string | null => (t?.type === 'word' || t?.type === 'ident' ? t.value.toLowerCase() : null);

const short = (sql: string): string => (sql.length > 60 ? `${sql.slice(0, 57)}…` : sql);

/** The SQL of PREPARE s FROM … / EXECUTE IMMEDIATE …: a literal, or a value the session knows (`@q`, CONCAT(…)). */
function dynamicText(ts: Token[], ctx: Ctx): { sql: string } | { why: string } {
  const lit = stringLiteral(ts);
  if (lit !== null) return { sql: lit };
  const e = evaluate(ts, ctx.state ?? new Running(null), false);
  if ('value' in e) return e.value === null ? { why: 'its text is NULL' } : { sql: e.value };
  return { why: `its text is not a literal or a value the broker knows: ${e.unknown}` };
}

/** What the SQL of PREPARE/EXECUTE IMMEDIATE does, with the text for messages; from something unknown: unknown. */
function dynamic(ts: Token[], ctx: Ctx): Verdict & { sql?: string } {
  const d = dynamicText(ts, ctx);
  if ('why' in d) return opaque(`dynamic SQL: ${d.why}`);
  return { ...ctx.text(d.sql), sql: d.sql };
}

/** PREPARE s FROM …: what the statement will do at each EXECUTE, remembered by name for this session. */
function prepare(ts: Token[], ctx: Ctx): Verdict {
  const from = findWord(ts, 1, 'FROM');
  if (from !== 2) return unparsed('PREPARE without FROM');
  const v = dynamic(ts.slice(from + 1), ctx);
  const name = statementName(ts[1]);
  if (name !== null && ctx.state) {
    const known = v.sql !== undefined && !v.kinds.includes('unknown') && !v.error;
    ctx.state.prepare(
      name,
      known ? { sql: v.sql!, kinds: v.kinds, tables: v.tables, ...(v.calls ? { calls: v.calls } : {}), settings: !!v.settings } : undefined,
    );
  }
  const { sql: _, ...out } = v;
  return out;
}

/** A setting changed by a statement run through EXECUTE: the server says what it became once it has run. */
function settingsUnknown(ctx: Ctx): void {
  ctx.state?.set('sql_mode', undefined);
  ctx.state?.set('character_set_client', undefined);
  if (ctx.state) ctx.state.doubt = 'sql_mode or character_set_client (by EXECUTE)';
}

/** EXECUTE s [USING …]: what s was prepared as; EXECUTE IMMEDIATE …: what its text does. Either may set any variable. */
function execute(ts: Token[], ctx: Ctx): Verdict {
  ctx.state?.anyVariable();
  if (isWord(ts[1], 'IMMEDIATE')) {
    const using = findWord(ts, 2, 'USING');
    const { sql: _, ...v } = dynamic(ts.slice(2, using < 0 ? ts.length : using), ctx);
    if (v.settings) settingsUnknown(ctx);
    return v;
  }
  const name = statementName(ts[1]);
  const p = name === null ? undefined : ctx.state?.statement(name);
  if (!p)
    return opaque(
      `dynamic SQL: EXECUTE of ${ts[1]?.text ?? 'nothing'}, a statement this session has not PREPAREd through the broker from a text it could read`,
    );
  if (p.settings) settingsUnknown(ctx);
  const v = verdict(p.kinds, p.tables);
  if (p.calls) v.calls = p.calls;
  v.reason = `it runs prepared statement ${ts[1]!.text}: ${short(p.sql)}`;
  return v;
}

/** DEALLOCATE PREPARE s / DROP PREPARE s. */
function deallocate(ts: Token[], ctx: Ctx): Verdict {
  const name = statementName(ts[2]);
  if (name !== null) ctx.state?.prepare(name, null);
  return verdict(['read']);
}

/** Why the statements of these verbs are unknown. */
const OPAQUE_REASONS: Record<string, string> = {
  CALL: 'CALL runs a stored procedure, whose statements the broker does not follow',
  BINLOG: 'BINLOG replays binary-log events the broker cannot read',
  DELIMITER: 'DELIMITER is a command of the mysql client, not SQL',
};
const COMPOUND = 'a compound statement (BEGIN … END, IF, CASE, loops, labels, handlers) is not analysed by the broker';

const ADMIN_VERBS = new Set(['KILL', 'SHUTDOWN', 'RESTART', 'INSTALL', 'UNINSTALL', 'FLUSH', 'RESET', 'PURGE', 'CHANGE', 'CACHE', 'CLONE', 'IMPORT', 'BACKUP']);
const OPAQUE_VERBS = new Set([
  'CALL',
  'BINLOG',
  'DELIMITER',
  'IF',
  'CASE',
  'WHILE',
  'LOOP',
  'REPEAT',
  'DECLARE',
  'LEAVE',
  'ITERATE',
  'SIGNAL',
  'RESIGNAL',
  'OPEN',
  'FETCH',
  'CLOSE',
  'END',
]);
const READ_VERBS = new Set(['SHOW', 'USE', 'HELP', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'XA', 'UNLOCK', 'CHECKSUM']);

function dispatch(ts: Token[], ctx: Ctx): Verdict {
  const verb = W(ts[0]) ?? (isPunct(ts[0], '(') ? '(' : '');
  if (isPunct(ts[1], ':')) return opaque(COMPOUND); // a label: compound statement
  switch (verb) {
    case 'SELECT':
    case '(':
    case 'WITH':
    case 'TABLE':
    case 'VALUES':
    case 'INSERT':
    case 'REPLACE':
    case 'UPDATE':
    case 'DELETE':
      return query(ts);
    case 'DO':
    case 'RETURN': {
      // DO evaluates expressions and discards them; a function's RETURN returns one: read them as a SELECT.
      const p = parseTokens([fakeWord('SELECT'), ...ts.slice(1)]);
      return typeof p === 'string' ? unparsed(p) : verdict(['read'], p.tables);
    }
    case 'CREATE':
      return classifyCreate(ts, ctx);
    case 'ALTER':
      return classifyAlter(ts, ctx);
    case 'DROP':
      return isWord(ts[1], 'PREPARE') ? deallocate(ts, ctx) : classifyDrop(ts);
    case 'RENAME':
      return classifyRename(ts);
    case 'TRUNCATE':
      return classifyTruncate(ts);
    case 'SET':
      return classifySet(ts, ctx);
    case 'GRANT':
    case 'REVOKE':
      return verdict(['privilege']);
    case 'EXPLAIN':
    case 'DESCRIBE':
    case 'DESC':
      return explain(ts, ctx);
    case 'ANALYZE': // MariaDB: ANALYZE [FORMAT=JSON] <statement> runs it; ANALYZE TABLE is maintenance
      if (isWord(ts[1], 'TABLE', 'TABLES') || (isWord(ts[1], 'NO_WRITE_TO_BINLOG', 'LOCAL') && isWord(ts[2], 'TABLE', 'TABLES'))) {
        return verdict(['ddl'], tablesAfter(ts, 1));
      }
      return explain([fakeWord('EXPLAIN'), fakeWord('ANALYZE'), ...ts.slice(1)], ctx);
    case 'OPTIMIZE':
    case 'REPAIR':
    case 'CHECK':
      return verdict(['ddl'], tablesAfter(ts, 1));
    case 'LOAD':
      if (isWord(ts[1], 'DATA', 'XML')) {
        const into = findWord(ts, 2, 'TABLE');
        const n = into >= 0 ? nameAt(ts, into + 1) : null;
        return verdict(['admin'], n ? [n.name] : []);
      }
      return isWord(ts[1], 'INDEX') ? verdict(['admin']) : unparsed('LOAD of something other than DATA, XML or INDEX');
    case 'LOCK':
      if (isWord(ts[1], 'TABLE', 'TABLES')) return verdict(['write'], nameList(ts, 2));
      return isWord(ts[1], 'INSTANCE') ? verdict(['admin']) : unparsed('LOCK of something other than tables');
    case 'HANDLER': {
      // HANDLER t OPEN / READ … / CLOSE: reads a table row by row
      const n = nameAt(ts, 1);
      if (!n || ts.some((t) => isWord(t, 'SELECT'))) return unparsed('a HANDLER it cannot read');
      return verdict(['read'], [n.name]);
    }
    case 'BEGIN': // BEGIN [WORK] starts a transaction; BEGIN NOT ATOMIC … END is a compound statement
      return ts.length === 1 || (ts.length === 2 && isWord(ts[1], 'WORK')) ? verdict(['read']) : opaque(COMPOUND);
    case 'START':
      if (isWord(ts[1], 'TRANSACTION')) return verdict(['read']);
      return isWord(ts[1], 'SLAVE', 'REPLICA', 'GROUP_REPLICATION', 'ALL') ? verdict(['admin']) : opaque();
    case 'STOP':
      return isWord(ts[1], 'SLAVE', 'REPLICA', 'GROUP_REPLICATION', 'ALL') ? verdict(['admin']) : opaque();
    case 'RELEASE':
      return isWord(ts[1], 'SAVEPOINT') ? verdict(['read']) : opaque();
    case 'GET':
      return isWord(ts[1], 'DIAGNOSTICS') || isWord(ts[2], 'DIAGNOSTICS') ? verdict(['read']) : opaque();
    case 'PREPARE':
      return prepare(ts, ctx);
    case 'EXECUTE':
      return execute(ts, ctx);
    case 'DEALLOCATE':
      if (isWord(ts[1], 'PREPARE')) return deallocate(ts, ctx);
      return unparsed('DEALLOCATE of something other than a prepared statement');
    default:
      if (ADMIN_VERBS.has(verb)) return verdict(['admin']);
      if (READ_VERBS.has(verb)) {
        // SHOW … WHERE may hold a subquery: its tables count, so if the parser cannot list them, unknown.
        const p = verb === 'SHOW' ? parseTokens(ts) : null;
        if (typeof p === 'string' && ts.some((t) => isWord(t, 'SELECT'))) return unparsed(p);
        return verdict(['read'], [...(p && typeof p !== 'string' ? p.tables : []), ...(verb === 'SHOW' ? showTables(ts) : [])]);
      }
      // CALL, BINLOG, DELIMITER (a client command), compound statements: it cannot see what they will do.
      if (OPAQUE_VERBS.has(verb)) return opaque(OPAQUE_REASONS[verb] ?? COMPOUND);
      return unparsed(`unrecognised statement ${verb ? `'${verb}'` : 'start'}`);
  }
}

/** Statements that evaluate expressions when they run, so the functions they name are called (CALL stays unknown). */
const CALLING_VERBS = new Set(['SELECT', '(', 'WITH', 'VALUES', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'DO', 'RETURN', 'SET', 'SHOW', 'HANDLER', 'LOAD']);

/** Classify one statement given as tokens. */
export function classifyTokens(ts: Token[], ctx: Ctx): Verdict {
  if (ts.length === 0) return unparsed('empty statement');
  const v = merge(dispatch(ts, ctx), tripwires(ts), sequences(ts));
  const verb = W(ts[0]) ?? (isPunct(ts[0], '(') ? '(' : '');
  return CALLING_VERBS.has(verb) && !isPunct(ts[1], ':') ? merge(v, { kinds: [], tables: [], calls: callsIn(ts) }) : v;
}
