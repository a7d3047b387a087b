// CREATE / ALTER / DROP / RENAME / TRUNCATE. Keyword-driven (node-sql-parser knows only some of these forms);
// the parser is asked only for the tables a CREATE TABLE … SELECT or a view reads.
import type { Kind } from '../types.js';
import type { Token } from './mysql-lexer.js';
import { callsIn } from './mysql-calls.js';
import { closing, parseTokens } from './mysql-parse.js';
import {
  findWord,
  isPunct,
  isWord,
  merge,
  nameAt,
  nameList,
  opaque,
  skipIfExists,
  splitDepth0,
  unparsed,
  verdict,
  W,
  type Ctx,
  type Verdict,
} from './mysql-tokens.js';

interface Prefix {
  /** Index of the object word (TABLE, VIEW, …). */
  at: number;
  orReplace: boolean;
  /** `DEFINER = someone` other than CURRENT_USER: the object runs with another account's rights. */
  definer: boolean;
}

/** Skip the modifiers between CREATE/ALTER and the object word. */
function prefix(ts: readonly Token[]): Prefix {
  let i = 1;
  let orReplace = false;
  let definer = false;
  for (;;) {
    const w = W(ts[i]);
    if (w === 'OR' && W(ts[i + 1]) === 'REPLACE') [orReplace, i] = [true, i + 2];
    else if (w === 'ALGORITHM' && isPunct(ts[i + 1], '=')) i += 3;
    else if (w === 'SQL' && W(ts[i + 1]) === 'SECURITY') i += 3;
    else if (w === 'DEFINER' && isPunct(ts[i + 1], '=')) {
      i += 2;
      if (W(ts[i]) === 'CURRENT_USER') i += isPunct(ts[i + 1], '(') ? 3 : 1;
      else {
        definer = true;
        i += isPunct(ts[i + 1], '@') ? 3 : 1; // 'u'@'h', u@h, `u`@`h`, or a lone name
      }
    } else if (w && ['TEMPORARY', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'ONLINE', 'OFFLINE', 'IGNORE', 'AGGREGATE'].includes(w)) i++;
    else return { at: i, orReplace, definer };
  }
}

/** Storage options that reach outside the database: other servers, files, other directories. */
function tableOptions(ts: readonly Token[], alter: boolean): Kind[] {
  const out: Kind[] = [];
  ts.forEach((t, k) => {
    const v = isPunct(ts[k + 1], '=') ? ts[k + 2] : ts[k + 1];
    if (isWord(t, 'ENGINE') && isWord(v, 'CONNECT', 'FEDERATED', 'FEDERATEDX', 'SPIDER')) out.push('admin');
    if (isWord(t, 'ENGINE') && alter && isWord(v, 'BLACKHOLE')) out.push('destructive'); // discards every row
    if (isWord(t, 'CONNECTION') && (v?.type === 'string' || v?.type === 'dstring')) out.push('admin');
    if (isWord(t, 'DATA', 'INDEX') && isWord(ts[k + 1], 'DIRECTORY')) out.push('admin');
  });
  return out;
}

/** Words that can begin a routine body. */
const BODY_START = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'REPLACE',
  'RETURN',
  'BEGIN',
  'CALL',
  'SET',
  'DROP',
  'CREATE',
  'ALTER',
  'TRUNCATE',
  'DO',
  'IF',
  'CASE',
  'WHILE',
  'LOOP',
  'REPEAT',
  'DECLARE',
  'LOAD',
  'GRANT',
  'REVOKE',
  'RENAME',
  'PREPARE',
  'EXECUTE',
  'LOCK',
  'UNLOCK',
  'WITH',
  'START',
  'COMMIT',
  'ROLLBACK',
  'INSTALL',
  'KILL',
  'FLUSH',
  'SHOW',
  'HANDLER',
  'OPTIMIZE',
  'ANALYZE',
  'REPAIR',
  'LEAVE',
  'ITERATE',
  'SIGNAL',
  'RESIGNAL',
  'OPEN',
  'FETCH',
  'CLOSE',
]);

/** CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT: ddl, plus whatever its body does (compound BEGIN … END bodies: unknown). */
function routine(ts: Token[], at: number, ctx: Ctx): Verdict {
  const obj = W(ts[at]);
  const n = nameAt(ts, skipIfExists(ts, at + 1));
  if (!n) return unparsed(`CREATE ${obj} without a name`);
  if (obj === 'FUNCTION' && findWord(ts, n.next, 'SONAME') >= 0) return verdict(['admin']); // a UDF from a shared library
  let body = -1;
  const tables: string[] = [];
  if (obj === 'TRIGGER') {
    const on = findWord(ts, n.next, 'ON');
    const t = on >= 0 ? nameAt(ts, on + 1) : null;
    if (t) tables.push(t.name);
    const row = findWord(ts, n.next, 'ROW');
    body = row >= 0 && isWord(ts[row - 1], 'EACH') ? row + 1 : -1;
    if (body >= 0 && isWord(ts[body], 'FOLLOWS', 'PRECEDES')) body = nameAt(ts, body + 1)?.next ?? -1;
  } else if (obj === 'EVENT') {
    body = findWord(ts, n.next, 'DO');
    if (body >= 0) body++;
  } else if (isPunct(ts[n.next], '(')) {
    const close = closing(ts, n.next);
    for (let k = close + 1; close > 0 && k < ts.length && body < 0; k++) {
      if (W(ts[k]) !== undefined && BODY_START.has(W(ts[k])!)) body = k;
      else if (isPunct(ts[k + 1], ':') && (ts[k]!.type === 'word' || ts[k]!.type === 'ident')) body = k; // a label
    }
  }
  if (body < 0 || body >= ts.length) return unparsed(`the body of CREATE ${obj} could not be found`);
  if (isWord(ts[body], 'BEGIN') || isPunct(ts[body + 1], ':')) return merge(verdict(['ddl'], tables), opaque());
  return merge(verdict(['ddl'], tables), (ctx.later ?? ctx.inner)(ts.slice(body)));
}

function createTable(ts: Token[], p: Prefix): Verdict {
  const n = nameAt(ts, skipIfExists(ts, p.at + 1));
  if (!n) return unparsed('CREATE TABLE without a name');
  const extra: Kind[] = tableOptions(ts, false);
  if (p.orReplace) extra.push('destructive'); // CREATE OR REPLACE TABLE drops the old table and its rows
  const tables = [n.name];
  const like = findWord(ts, n.next, 'LIKE');
  const source = like >= 0 ? nameAt(ts, like + 1) : isPunct(ts[n.next], '(') && isWord(ts[n.next + 1], 'LIKE') ? nameAt(ts, n.next + 2) : null;
  if (source) tables.push(source.name);
  if (findWord(ts, n.next, 'SELECT', 'TABLE') >= 0 || ts.some((t) => isWord(t, 'SELECT'))) {
    // CREATE TABLE … SELECT is a write, of the new table, reading the tables of its query (as CREATE TABLE AS in
    // the PostgreSQL classifier, so one rule means the same on both).
    const parsed = parseTokens(p.orReplace ? [ts[0]!, ...ts.slice(p.at)] : ts);
    if (typeof parsed === 'string') return unparsed(parsed);
    // The query runs, so do the functions it calls: those after the column definitions, if any.
    const from = isPunct(ts[n.next], '(') && !isWord(ts[n.next + 1], 'SELECT', 'WITH') && !isPunct(ts[n.next + 1], '(') ? closing(ts, n.next) + 1 : n.next;
    const v = verdict(['write', ...extra], [...tables, ...parsed.tables]);
    return from > 0 ? merge(v, { kinds: [], tables: [], calls: callsIn(ts.slice(from)) }) : unparsed('CREATE TABLE … SELECT it cannot read');
  }
  return verdict(['ddl', ...extra], tables);
}

function createView(ts: Token[], p: Prefix): Verdict {
  const n = nameAt(ts, skipIfExists(ts, p.at + 1));
  const as = findWord(ts, p.at, 'AS');
  if (!n || as < 0) return unparsed('a view without a name or AS');
  let query = ts.slice(as + 1);
  const check = findWord(query, 0, 'CHECK'); // WITH [CASCADED | LOCAL] CHECK OPTION ends the definition
  const w = isWord(query[check - 1], 'WITH') ? check - 1 : isWord(query[check - 2], 'WITH') ? check - 2 : -1;
  if (w > 0 && isWord(query[check + 1], 'OPTION')) query = query.slice(0, w);
  const q = parseTokens(query);
  if (typeof q === 'string') return unparsed(q);
  return verdict(['ddl'], [n.name, ...q.tables]);
}

export function classifyCreate(ts: Token[], ctx: Ctx): Verdict {
  const p = prefix(ts);
  const obj = W(ts[p.at]);
  const extra: Kind[] = p.definer ? ['privilege'] : [];
  const withExtra = (v: Verdict): Verdict => merge(v, verdict(extra));
  switch (obj) {
    case 'TABLE':
      return withExtra(createTable(ts, p));
    case 'VIEW':
      return withExtra(createView(ts, p));
    case 'INDEX': {
      const on = findWord(ts, p.at, 'ON');
      const t = on >= 0 ? nameAt(ts, on + 1) : null;
      return verdict(['ddl'], t ? [t.name] : []);
    }
    case 'DATABASE':
    case 'SCHEMA':
    case 'SEQUENCE':
      return verdict(p.orReplace ? ['ddl', 'destructive'] : ['ddl']);
    case 'PROCEDURE':
    case 'FUNCTION':
    case 'TRIGGER':
    case 'EVENT':
      return withExtra(routine(ts, p.at, ctx));
    case 'USER':
    case 'ROLE':
      return verdict(['privilege']);
    case 'SERVER':
    case 'TABLESPACE':
    case 'LOGFILE':
    case 'RESOURCE':
      return verdict(['admin']);
    case 'REFERENCE': // CREATE SPATIAL REFERENCE SYSTEM
      return verdict(['ddl']);
    default:
      return unparsed(`CREATE ${obj ?? ''} is not understood`);
  }
}

export function classifyAlter(ts: Token[], ctx: Ctx): Verdict {
  const p = prefix(ts);
  const obj = W(ts[p.at]);
  const extra: Kind[] = p.definer ? ['privilege'] : [];
  switch (obj) {
    case 'TABLE': {
      const n = nameAt(ts, skipIfExists(ts, p.at + 1));
      if (!n) return unparsed('ALTER TABLE without a name');
      const kinds: Kind[] = ['ddl', ...tableOptions(ts, true)];
      // Any DROP (column, index, partition, constraint …), TRUNCATE PARTITION, DISCARD TABLESPACE loses data.
      const drops = ts.some((t, k) => k >= n.next && isWord(t, 'DROP', 'TRUNCATE', 'DISCARD') && !(isWord(t, 'DROP') && isWord(ts[k + 1], 'DEFAULT')));
      if (drops) kinds.push('destructive');
      const tables = [n.name];
      const rename = findWord(ts, n.next, 'RENAME');
      const to = rename >= 0 ? nameAt(ts, isWord(ts[rename + 1], 'TO', 'AS') ? rename + 2 : rename + 1) : null;
      if (to && !isWord(ts[rename + 1], 'COLUMN', 'INDEX', 'KEY')) tables.push(to.name);
      return verdict([...kinds, ...extra], tables);
    }
    case 'DATABASE':
    case 'SCHEMA':
    case 'PROCEDURE':
    case 'FUNCTION':
    case 'SEQUENCE':
    case 'VIEW':
      return verdict(['ddl', ...extra]);
    case 'EVENT': {
      const body = findWord(ts, p.at, 'DO');
      return merge(verdict(['ddl', ...extra]), body >= 0 ? (ctx.later ?? ctx.inner)(ts.slice(body + 1)) : verdict([]));
    }
    case 'USER':
    case 'ROLE':
      return verdict(['privilege']);
    case 'SERVER':
    case 'INSTANCE':
    case 'TABLESPACE':
    case 'LOGFILE':
    case 'RESOURCE':
      return verdict(['admin']);
    default:
      return unparsed(`ALTER ${obj ?? ''} is not understood`);
  }
}

export function classifyDrop(ts: Token[]): Verdict {
  const at = isWord(ts[1], 'TEMPORARY') ? 2 : 1;
  const obj = W(ts[at]);
  switch (obj) {
    case 'TABLE':
    case 'TABLES':
    case 'VIEW':
    case 'SEQUENCE':
      return verdict(['destructive'], nameList(ts, skipIfExists(ts, at + 1)));
    case 'INDEX': {
      const on = findWord(ts, at, 'ON');
      const t = on >= 0 ? nameAt(ts, on + 1) : null;
      return verdict(['destructive'], t ? [t.name] : []);
    }
    case 'DATABASE':
    case 'SCHEMA':
    case 'PROCEDURE':
    case 'FUNCTION':
    case 'TRIGGER':
    case 'EVENT':
    case 'PACKAGE':
      return verdict(['destructive']);
    case 'USER':
    case 'ROLE':
      return verdict(['privilege']);
    case 'SERVER':
    case 'TABLESPACE':
    case 'LOGFILE':
    case 'RESOURCE':
      return verdict(['destructive', 'admin']);
    case 'PREPARE': // deallocates a prepared statement
      return verdict(['read']);
    default:
      return unparsed(`DROP ${obj ?? ''} is not understood`);
  }
}

/** RENAME TABLE a TO b, c TO d: ddl (no row is lost; every name involved is a table it touches). RENAME USER: privilege. */
export function classifyRename(ts: Token[]): Verdict {
  if (isWord(ts[1], 'USER')) return verdict(['privilege']);
  if (!isWord(ts[1], 'TABLE', 'TABLES')) return unparsed('RENAME of something other than tables or users');
  const tables: string[] = [];
  for (const part of splitDepth0(ts.slice(2), ',')) {
    const from = nameAt(part, 0);
    const to = findWord(part, 0, 'TO');
    const target = to >= 0 ? nameAt(part, to + 1) : null;
    if (!from || !target) return unparsed('RENAME TABLE it cannot read');
    tables.push(from.name, target.name);
  }
  return verdict(['ddl'], tables);
}

export function classifyTruncate(ts: Token[]): Verdict {
  const n = nameAt(ts, isWord(ts[1], 'TABLE') ? 2 : 1);
  return n ? verdict(['destructive'], [n.name]) : unparsed('TRUNCATE without a table');
}
