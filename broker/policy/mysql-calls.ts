// The functions a MySQL/MariaDB statement calls by name, for policy to look up in the target's catalog
// (mysql-catalog.ts): every `name(…)` that is not certainly a built-in (mysql-builtins.ts), qualified or not.
// Read off the tokens, since a name's meaning depends on how it is written (`now()` is NOW, `now ()` may be a
// stored function), which the parser's tree does not keep; the few places where a name before `(` is not a
// call (INSERT's table, a CTE's column list, JSON_TABLE's COLUMNS, …) are recognised here.
import type { FunctionRef } from '../catalog/types.js';
import { isBuiltinCall, type CallForm } from './mysql-builtins.js';
import type { Token } from './mysql-lexer.js';
import { isPunct, isWord, mergeCalls } from './mysql-tokens.js';

/** A name part (`fw`, `` `fw` ``, `"fw"` under ANSI_QUOTES), lower-cased; null for anything else, numbers included. */
function nameOf(t: Token | undefined): string | null {
  if (!t) return null;
  if (t.type === 'word') return /^\d+$/.test(t.text) ? null : t.text.toLowerCase();
  return t.type === 'ident' || t.type === 'dstring' ? t.value.toLowerCase() : null;
}

/** Index of the `)` matching the `(` at `i`, or -1. */
function close(ts: readonly Token[], i: number): number {
  let depth = 0;
  for (let k = i; k < ts.length; k++) {
    if (isPunct(ts[k], '(')) depth++;
    else if (isPunct(ts[k], ')') && --depth === 0) return k;
  }
  return -1;
}

/** Arguments written between the `(` at `open` and its `)`: depth-0 commas + 1, or 0; null if it never closes. */
function argCount(ts: readonly Token[], open: number): number | null {
  const end = close(ts, open);
  if (end < 0) return null;
  if (end === open + 1) return 0;
  let n = 1;
  let depth = 0;
  for (let k = open + 1; k < end; k++) {
    if (isPunct(ts[k], '(')) depth++;
    else if (isPunct(ts[k], ')')) depth--;
    else if (depth === 0 && isPunct(ts[k], ',')) n++;
  }
  return n;
}

const INSERT_MODIFIERS = ['LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE', 'INTO', 'TABLE'];

/** Indices of names before `(` that name a table, a CTE or a column list, not a function. */
function notCalls(ts: readonly Token[]): Set<number> {
  const out = new Set<number>();
  ts.forEach((t, k) => {
    // INSERT [LOW_PRIORITY …] [INTO] t (cols), REPLACE …, LOAD DATA … INTO TABLE t (cols): the table
    if ((isWord(t, 'INSERT', 'REPLACE') && !isPunct(ts[k + 1], '(')) || isWord(t, 'INTO')) {
      let j = k + 1;
      while (isWord(ts[j], ...INSERT_MODIFIERS)) j++;
      out.add(isPunct(ts[j + 1], '.') ? j + 2 : j);
    }
    // AS name (…): a derived table's or an INSERT … AS alias's column list; name (cols) AS (…): a CTE's
    if (isWord(t, 'AS')) out.add(k + 1);
    if (nameOf(t) !== null && isPunct(ts[k + 1], '(')) {
      const c = close(ts, k + 1);
      if (c > 0 && isWord(ts[c + 1], 'AS') && isPunct(ts[c + 2], '(')) out.add(k);
    }
    // JSON_TABLE(doc, '$[*]' COLUMNS (…)) and the table function itself, MATCH (…) AGAINST (…), x MEMBER OF (…)
    if (isWord(t, 'COLUMNS') && (ts[k - 1]?.type === 'string' || ts[k - 1]?.type === 'dstring')) out.add(k);
    if (isWord(t, 'JSON_TABLE') && isWord(ts[k - 1], 'FROM', 'JOIN')) out.add(k);
    if (isWord(t, 'AGAINST') && isPunct(ts[k - 1], ')')) out.add(k);
    if (isWord(t, 'OF') && isWord(ts[k - 1], 'MEMBER')) out.add(k);
  });
  return out;
}

/**
 * Every call in the statement's tokens that is not certainly a built-in: `fw()`, `db.fw()`, `` `now`() ``,
 * `now ()`. Schema as written (lower-cased) or null; name lower-cased; the number of arguments written.
 */
export function callsIn(ts: readonly Token[]): FunctionRef[] {
  const skip = notCalls(ts);
  const out: FunctionRef[] = [];
  for (let k = 0; k + 1 < ts.length; k++) {
    const t = ts[k]!;
    if (!isPunct(ts[k + 1], '(')) continue;
    const name = nameOf(t);
    if (name === null || skip.has(k)) continue;
    // `db.fw(…)`, `db . fw (…)`: always a stored function (or an error), whatever the name.
    const schema = isPunct(ts[k - 1], '.') ? nameOf(ts[k - 2]) : null;
    if (schema === null) {
      const form: CallForm = t.type !== 'word' ? 'quoted' : t.end === ts[k + 1]!.start ? 'adjacent' : 'spaced';
      if (isBuiltinCall(name, form)) continue;
    }
    out.push({ schema, name, args: argCount(ts, k + 1) });
  }
  return mergeCalls([out]);
}
