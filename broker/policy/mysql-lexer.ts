// MySQL/MariaDB lexing for the classifier: comments, versioned comments, strings, identifiers, statements.
// Written by hand because no maintained library lexes MySQL with its executable /*! */ and /*M! */ comments.
//
// What the server executes depends on its version (`/*!50700 … */` runs on MySQL 5.7+, is skipped by MariaDB
// unless written `/*M!50700`, …), so the text is lexed once per `Reading` and the classifier takes the union.

export type TokenType = 'word' | 'ident' | 'string' | 'dstring' | 'punct';

export interface Token {
  type: TokenType;
  /** The token as written (quotes included). */
  text: string;
  /** Words upper-cased; strings and quoted identifiers decoded; punctuation as written. */
  value: string;
  /** Offsets in the expanded text (`Lexed.text`). */
  start: number;
  end: number;
}

/** The upper-cased word at `t`, or undefined for anything else (strings, quoted identifiers, punctuation). */
export const W = (t: Token | undefined): string | undefined => (t?.type === 'word' ? t.value : undefined);
export const isWord = (t: Token | undefined, ...words: string[]): boolean => t?.type === 'word' && words.includes(t.value);
export const isPunct = (t: Token | undefined, p: string): boolean => t?.type === 'punct' && t.value === p;

/** How one server reads versioned comments. */
export interface Reading {
  /** `mariadb`: 5- or 6-digit versions, `/*M!`, MySQL-only 50700–99999 skipped; `mysql5`: 5 digits; `mysql6`: 5 or 6. */
  family: 'mariadb' | 'mysql5' | 'mysql6';
  /** Server version as the comments write it: 101119 for MariaDB 10.11.19, 80036 for MySQL 8.0.36. */
  version: number;
}

export interface Lexed {
  /** The text as this server reads it: executed versioned comments opened up, other comments kept. */
  text: string;
  tokens: Token[];
  /** A lexical error (unterminated string or comment, NUL byte, nested versioned comment); tokens stop there. */
  error?: string;
}

export interface Piece {
  tokens: Token[];
  /** The statement's own text, trimmed (from the expanded text). */
  text: string;
}

const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);
const OPERATORS = ['<=>', '->>', '||', '&&', ':=', '<=', '>=', '<>', '!=', '<<', '>>', '->', '@@'];

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
/** MySQL identifier characters; every non-ASCII character counts (multi-byte characters are identifier parts). */
const isWordChar = (c: string): boolean => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;
/** `--` starts a comment only before whitespace, a control character or the end of the text (`--1` is minus minus one). */
const endsDashDash = (code: number): boolean => Number.isNaN(code) || code <= 0x20 || code === 0x7f;

/** Skip a comment body from `k` (just after its opener); `nest` levels of inner `/* … *\/` allowed. Index after `*\/`, or -1. */
function skipComment(src: string, k: number, nest: number): number {
  while (k < src.length) {
    if (nest > 0 && src.startsWith('/*', k)) {
      const e = skipComment(src, k + 2, nest - 1);
      if (e < 0) return -1;
      k = e;
    } else if (src.startsWith('*/', k)) {
      return k + 2;
    } else {
      k++;
    }
  }
  return -1;
}

const ESCAPES: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a', '%': '\\%', _: '\\_' };

/** A quoted string or identifier starting at `i`: doubled quotes, and backslash escapes except in backticks. */
function readQuoted(src: string, i: number): { end: number; value: string } | null {
  const q = src[i]!;
  let value = '';
  let k = i + 1;
  while (k < src.length) {
    const ch = src[k]!;
    if (ch === q) {
      if (src[k + 1] !== q) return { end: k + 1, value };
      value += q;
      k += 2;
    } else if (ch === '\\' && q !== '`') {
      const next = src[k + 1];
      if (next === undefined) return null;
      value += ESCAPES[next] ?? next;
      k += 2;
    } else {
      value += ch;
      k++;
    }
  }
  return null;
}

/** Lex `src` as the server described by `reading` would. */
export function lex(src: string, reading: Reading): Lexed {
  const tokens: Token[] = [];
  let out = '';
  let i = 0;
  let inVersioned = false; // inside an executed /*! … */: its `*/` closes it
  const fail = (message: string): Lexed => ({ text: out + src.slice(i), tokens, error: message });
  if (src.includes('\0')) return fail('the statement text contains a NUL byte');
  const push = (type: TokenType, text: string, value: string): void => {
    tokens.push({ type, text, value, start: out.length, end: out.length + text.length });
    out += text;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (SPACE.has(c)) {
      out += c;
      i++;
    } else if (c === '#' || (c === '-' && src[i + 1] === '-' && endsDashDash(src.charCodeAt(i + 2)))) {
      const nl = src.indexOf('\n', i);
      const e = nl < 0 ? src.length : nl;
      out += src.slice(i, e);
      i = e;
    } else if (c === '/' && src[i + 1] === '*') {
      let j = i + 2;
      const maria = reading.family === 'mariadb' && src[j] === 'M' && src[j + 1] === '!';
      if (maria) j++;
      if (src[j] === '!') {
        if (inVersioned) return fail('a versioned comment inside a versioned comment');
        j++;
        let n = 0;
        while (n < 6 && isDigit(src[j + n])) n++;
        if (n < 5) {
          // Not a version number: always executed, digits included.
          out += ' ';
          i = j;
          inVersioned = true;
          continue;
        }
        const len = n === 6 && reading.family !== 'mysql5' ? 6 : 5;
        const v = Number(src.slice(j, j + len));
        const runs = v <= reading.version && (reading.family !== 'mariadb' || maria || v < 50700 || v > 99999);
        if (runs) {
          out += ' ';
          i = j + len;
          inVersioned = true;
          continue;
        }
        const e = skipComment(src, j + len, 1); // a skipped versioned comment may hold one level of comment
        if (e < 0) return fail('unterminated comment');
        out += src.slice(i, e);
        i = e;
      } else {
        const e = skipComment(src, i + 2, 0);
        if (e < 0) return fail('unterminated comment');
        out += src.slice(i, e);
        i = e;
      }
    } else if (inVersioned && c === '*' && src[i + 1] === '/') {
      out += ' ';
      i += 2;
      inVersioned = false;
    } else if (c === "'" || c === '"' || c === '`') {
      const q = readQuoted(src, i);
      if (!q) return fail(c === '`' ? 'unterminated quoted identifier' : 'unterminated string');
      push(c === "'" ? 'string' : c === '"' ? 'dstring' : 'ident', src.slice(i, q.end), q.value);
      i = q.end;
    } else if (isWordChar(c)) {
      let e = i + 1;
      while (e < src.length && isWordChar(src[e]!)) e++;
      const text = src.slice(i, e);
      push('word', text, text.toUpperCase());
      i = e;
    } else {
      const op = OPERATORS.find((o) => src.startsWith(o, i)) ?? c;
      push('punct', op, op);
      i += op.length;
    }
  }
  if (inVersioned) return fail('unterminated versioned comment');
  return { text: out, tokens };
}

/** Split on `;` into statements (empty ones dropped). */
export function split(lexed: Lexed): { pieces: Piece[]; rest: Piece | null } {
  const pieces: Piece[] = [];
  let cur: Token[] = [];
  const piece = (ts: Token[]): Piece => ({ tokens: ts, text: lexed.text.slice(ts[0]!.start, ts[ts.length - 1]!.end).trim() });
  for (const t of lexed.tokens) {
    if (t.type === 'punct' && t.value === ';') {
      if (cur.length) pieces.push(piece(cur));
      cur = [];
    } else {
      cur.push(t);
    }
  }
  if (!lexed.error) {
    if (cur.length) pieces.push(piece(cur));
    return { pieces, rest: null };
  }
  // After a lexical error the server has run the complete statements before it; the rest is unknown.
  const from = cur.length ? cur[0]!.start : (lexed.tokens[lexed.tokens.length - 1]?.end ?? 0);
  return {
    pieces,
    rest: {
      tokens: cur,
      text: lexed.text
        .slice(from)
        .replace(/^\s*;?/, '')
        .trim(),
    },
  };
}

/** Every distinct way a server could read the versioned comments of `src`, the newest MariaDB first; null if too many. */
export function readings(src: string, max = 8): Reading[] | null {
  if (!/\/\*M?!/.test(src)) return [{ family: 'mariadb', version: Infinity }]; // no versioned comment: one reading
  const found = [...src.matchAll(/\/\*M?!(\d{5,6})/g)].map((m) => m[1]!);
  const out: Reading[] = [];
  for (const family of ['mariadb', 'mysql6', 'mysql5'] as const) {
    const versions = new Set(found.map((d) => Number(family === 'mysql5' ? d.slice(0, 5) : d)));
    if (versions.size > max) return null;
    // The outcome only changes at the versions written: newest first, then just below each one.
    const thresholds = [Infinity, ...[...versions].sort((a, b) => b - a).map((v) => v - 1)];
    for (const version of thresholds) out.push({ family, version });
  }
  return out;
}

/** The text handed to node-sql-parser: comments dropped (it mistakes `--1` for one), strings it could misread replaced. */
export function render(tokens: readonly Token[], names: Map<string, string>): string {
  let s = '';
  const strings = new Map<string, string>();
  tokens.forEach((t, k) => {
    const prev = tokens[k - 1];
    let text = t.text;
    if (t.type === 'string' || t.type === 'dstring') {
      const q = t.type === 'string' ? "'" : '"';
      if (!/^[\w %.,:@/+=*-]*$/.test(t.value)) {
        let p = strings.get(t.value);
        if (!p) strings.set(t.value, (p = `__jit_s${strings.size}`));
        text = q + p + q;
      } else {
        text = q + t.value + q;
      }
    } else if (t.type === 'ident') {
      // Placeholders for names it could misread, or that would confuse its `type::db::table` list.
      if (/[`\\\x00-\x1f:]/.test(t.value) || t.value === '' || t.value.toLowerCase() === 'null') {
        const p = `__jit_i${names.size}`;
        names.set(p, t.value);
        text = `\`${p}\``;
      } else {
        text = `\`${t.value}\``;
      }
    }
    if (prev) {
      const glue = prev.text.slice(-1) + text[0];
      if (t.start > prev.end || glue === '--' || glue === '/*' || glue === '*/') s += ' ';
    }
    s += text;
  });
  return s;
}

/** The statements as `reading`'s server runs them, comments removed; null on a lexical error. */
export function expand(src: string, reading: Reading): string | null {
  const lexed = lex(src, reading);
  if (lexed.error) return null;
  return lexed.tokens.map((t, k) => (k > 0 && t.start > lexed.tokens[k - 1]!.end ? ' ' : '') + t.text).join('');
}
