// Small helpers shared by the MySQL statement handlers: reading words and names off a token list, and verdicts.
import type { FunctionRef } from '../catalog/types.js';
import type { Kind } from '../types.js';
import { isPunct, isWord, W, type Token } from './mysql-lexer.js';
import type { Running } from './mysql-running.js';

/** The token predicates live with the Token (mysql-lexer.ts), where mysql-env.ts reads them too. */
export { isPunct, isWord, W };

/** The kinds and tables of one statement; `error` only when something could not be parsed. */
export interface Verdict {
  kinds: Kind[];
  tables: string[];
  /** Functions it calls that are not certainly built-ins (mysql-calls.ts), for the catalog to judge. */
  calls?: FunctionRef[];
  error?: string;
  /** Why it is of its kinds when its text does not show it (why it is unknown, what an EXECUTE runs): for refusals. */
  reason?: string;
  /** It sets sql_mode or the client character set (what a PREPAREd statement records). */
  settings?: boolean;
}

/** What handlers need from the classifier: inner statements (bodies, EXPLAIN targets) and SQL held in strings. */
export interface Ctx {
  /** Classify a slice of tokens as one statement. */
  inner(tokens: Token[]): Verdict;
  /** Classify a slice of tokens as a statement that runs later (a routine's, trigger's or event's body): no session state. */
  later?(tokens: Token[]): Verdict;
  /** Classify SQL text held in a string or variable (PREPARE … FROM '…'), to run later: every statement in it, merged. */
  text(sql: string): Verdict;
  /** The session as this statement meets it, and what the statements before it in the text changed; absent: nothing known. */
  state?: Running;
}

export const verdict = (kinds: Kind[], tables: Iterable<string> = []): Verdict => ({ kinds, tables: [...new Set(tables)] });
/** Deliberately unknown: the classifier cannot see what it will do (`reason` says why, for the refusal). */
export const opaque = (reason?: string): Verdict => (reason ? { kinds: ['unknown'], tables: [], reason } : { kinds: ['unknown'], tables: [] });
/** Unknown because it could not be parsed. */
export const unparsed = (error: string): Verdict => ({ kinds: ['unknown'], tables: [], error });

/** Function calls of several lists as one, without repeats. */
export function mergeCalls(lists: readonly (readonly FunctionRef[] | undefined)[]): FunctionRef[] {
  const out = new Map<string, FunctionRef>();
  for (const list of lists) for (const r of list ?? []) out.set(`${r.schema ?? ''}\0${r.name}\0${r.args ?? ''}`, r);
  return [...out.values()];
}

export function merge(...vs: Verdict[]): Verdict {
  const error = vs.find((v) => v.error)?.error;
  const out: Verdict = verdict(
    [...new Set(vs.flatMap((v) => v.kinds))],
    vs.flatMap((v) => v.tables),
  );
  const calls = mergeCalls(vs.map((v) => v.calls));
  if (calls.length) out.calls = calls;
  const reason = vs.find((v) => v.reason && v.kinds.includes('unknown'))?.reason ?? vs.find((v) => v.reason)?.reason;
  if (reason) out.reason = reason;
  if (vs.some((v) => v.settings)) out.settings = true;
  return error ? { ...out, error } : out;
}

const namePart = (t: Token | undefined): string | null => (t?.type === 'word' ? t.text.toLowerCase() : t?.type === 'ident' ? t.value.toLowerCase() : null);

/** A possibly qualified name (`t`, `db.t`, `` `db`.`t` ``) at `i`, lower-cased. */
export function nameAt(ts: readonly Token[], i: number): { name: string; next: number } | null {
  const a = namePart(ts[i]);
  if (a === null) return null;
  const b = isPunct(ts[i + 1], '.') ? namePart(ts[i + 2]) : null;
  return b === null ? { name: a, next: i + 1 } : { name: `${a}.${b}`, next: i + 3 };
}

/** Skip `IF EXISTS` / `IF NOT EXISTS` at `i`. */
export function skipIfExists(ts: readonly Token[], i: number): number {
  if (!isWord(ts[i], 'IF')) return i;
  return isWord(ts[i + 1], 'NOT') ? i + 3 : i + 2;
}

/** Comma-separated names at `i` (each possibly followed by words such as an alias or lock type, up to the comma). */
export function nameList(ts: readonly Token[], i: number): string[] {
  const out: string[] = [];
  for (const part of splitDepth0(ts.slice(i), ',')) {
    const n = nameAt(part, 0);
    if (n) out.push(n.name);
  }
  return out;
}

/** Split at a depth-0 punctuation token. */
export function splitDepth0(ts: readonly Token[], sep: string): Token[][] {
  const parts: Token[][] = [[]];
  let depth = 0;
  for (const t of ts) {
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')')) depth--;
    else if (depth === 0 && isPunct(t, sep)) {
      parts.push([]);
      continue;
    }
    parts[parts.length - 1]!.push(t);
  }
  return parts;
}

/** Index of the first depth-0 word among `words` from `from`, or -1. */
export function findWord(ts: readonly Token[], from: number, ...words: string[]): number {
  let depth = 0;
  for (let k = from; k < ts.length; k++) {
    if (isPunct(ts[k], '(')) depth++;
    else if (isPunct(ts[k], ')')) depth--;
    else if (depth === 0 && isWord(ts[k], ...words)) return k;
  }
  return -1;
}

/** The text of one or more adjacent string literals (MySQL concatenates them), after an optional `_charset`/`N`. */
export function stringLiteral(ts: readonly Token[]): string | null {
  let k = 0;
  if (ts[0]?.type === 'word' && /^(_\w+|N)$/i.test(ts[0].text)) k = 1;
  if (k >= ts.length) return null;
  let s = '';
  for (; k < ts.length; k++) {
    const t = ts[k]!;
    if (t.type !== 'string' && t.type !== 'dstring') return null;
    s += t.value;
  }
  return s;
}

/** A fake token, for re-parsing a statement under another verb (`DO x` as `SELECT x`). */
export const fakeWord = (w: string): Token => ({ type: 'word', text: w, value: w, start: -2, end: -1 });
