// A literal-normalised key for the classification cache: `SELECT abalance FROM pgbench_accounts WHERE aid = 12345;`
// and `… aid = 678;` get the same key, so the second is not parsed again.
//
// Why this is safe: the lexer below accepts only a small subset of PostgreSQL's lexical grammar — ASCII
// letters/digits/underscore words, plain decimal numbers, '…' strings without backslashes, "…" identifiers,
// a few one- or two-character operators and punctuation, spaces/tabs/newlines — and within that subset it
// tokenises exactly as PostgreSQL's scanner does. On anything else (comments, $, backslashes, E'' U&'' B'' X''
// strings, other operators, non-ASCII, a `;` before the end, two adjacent strings, `1e`, `.5`, `1_000`, `0x1`)
// it gives up and returns null, and the caller parses as usual. So two texts with the same key have the same
// tokens except for the values of numeric and string literals; their parse trees differ only in A_Const values.
// The caller reuses a classification only when it came from a statement whose classification provably ignores
// A_Const values (classifyPostgresForCache: one plain SELECT, kinds exactly [read], only known-safe functions).

const SEP = '\u0001';
const OPERATORS = new Set(['=', '<', '>', '<=', '>=', '<>', '!=', '+', '-', '*', '/', '%', '||']);
/** PostgreSQL's operator characters, by char code. */
const OP_CHAR = new Uint8Array(128);
for (const ch of '+-*/<>=~!@#%^&|`?') OP_CHAR[ch.charCodeAt(0)] = 1;
const isOpChar = (c: number): boolean => c < 128 && OP_CHAR[c] === 1;

function isWordStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isWord(c: number): boolean {
  return isWordStart(c) || isDigit(c);
}

export interface LiteralKey {
  key: string;
  /** The statement's text as the parser-based classifier reports it (trimmed, without the final `;`). */
  sql: string;
}

/** The literal-normalised key of a one-statement SQL text, or null when the text is outside the safe subset. */
export function pgLiteralKey(sql: string): LiteralKey | null {
  if (sql.length > 4096) return null;
  const parts: string[] = [];
  // Words are case-folded. Every character before a word is ASCII (anything else gives up as soon as it is
  // reached), so lower-casing the whole text moves no index of a word.
  const lower = sql.toLowerCase();
  let i = 0;
  const n = sql.length;
  let semicolon = -1;
  let lastWasString = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    if (semicolon >= 0) return null; // something after the `;`: a second statement
    let isString = false;
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWord(sql.charCodeAt(j))) j++;
      const next = sql.charCodeAt(j);
      if (next === 39 || next === 36 || next === 38 || next > 127) return null; // E'…', a$b, U&'…', non-ASCII
      parts.push(lower.slice(i, j));
      i = j;
    } else if (isDigit(c)) {
      // digits [. digits] [e [+-] digits]
      let j = i + 1;
      let float = false;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (sql.charCodeAt(j) === 46 && isDigit(sql.charCodeAt(j + 1))) {
        float = true;
        j += 2;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
      }
      const e = sql.charCodeAt(j);
      if (e === 101 || e === 69) {
        let k = j + 1;
        const sign = sql.charCodeAt(k);
        if (sign === 43 || sign === 45) k++;
        if (!isDigit(sql.charCodeAt(k))) return null; // 1e, 1e+: an error (or an identifier) to the server
        while (k < n && isDigit(sql.charCodeAt(k))) k++;
        float = true;
        j = k;
      }
      const next = j < n ? sql.charCodeAt(j) : 32;
      if (isWord(next) || next === 46 || next === 36 || next === 39 || next === 34 || next > 127) return null;
      parts.push(float ? '#f' : '#i');
      i = j;
    } else if (c === 39) {
      if (lastWasString) return null; // 'a' 'b' (or 'a'\n'b', which the server concatenates)
      let j = i + 1;
      for (;;) {
        if (j >= n) return null;
        const d = sql.charCodeAt(j);
        if (d === 92 || d > 126 || (d < 32 && d !== 9 && d !== 10 && d !== 13)) return null;
        if (d === 39) {
          if (sql.charCodeAt(j + 1) === 39) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      parts.push('#s');
      i = j + 1;
      isString = true;
    } else if (c === 34) {
      const j = sql.indexOf('"', i + 1);
      if (j < 0 || j === i + 1 || sql.charCodeAt(j + 1) === 34) return null;
      const id = sql.slice(i, j + 1);
      if (!/^"[\x20-\x7e]+"$/.test(id)) return null;
      parts.push(id);
      i = j + 1;
    } else if (isOpChar(c)) {
      let j = i + 1;
      while (j < n && isOpChar(sql.charCodeAt(j))) j++;
      const op = sql.slice(i, j);
      if (!OPERATORS.has(op)) return null; // also catches -- and /* comments
      parts.push(op);
      i = j;
    } else if (c === 40 || c === 41 || c === 44 || c === 91 || c === 93) {
      parts.push(sql[i]!); // ( ) , [ ]
      i++;
    } else if (c === 46) {
      const next = sql.charCodeAt(i + 1);
      if (isDigit(next) || next === 46) return null; // .5, and `..` (one token to the server)
      parts.push('.');
      i++;
    } else if (c === 58 && sql.charCodeAt(i + 1) === 58) {
      parts.push('::');
      i += 2;
    } else if (c === 59) {
      semicolon = i;
      parts.push(';');
      i++;
    } else {
      return null;
    }
    lastWasString = isString;
  }
  if (!parts.length || (parts.length === 1 && semicolon >= 0)) return null;
  return { key: parts.join(SEP), sql: (semicolon >= 0 ? sql.slice(0, semicolon) : sql).trim() };
}
