// A stored routine's body as the catalog holds it (information_schema.ROUTINES.ROUTINE_DEFINITION): one statement
// (`RETURN x * 2`), or a compound BEGIN … END with DECLARE, IF, CASE, loops and handlers. Every statement and
// condition in it is classified like a statement sent on its own, and the body does all of what they do, whichever
// branch runs. A construct it does not know (FOR loops, Oracle-mode bodies) makes the body unknown.
import { lex, readings, type Token } from './mysql-lexer.js';
import { classifyTokens } from './mysql-statements.js';
import { fakeWord, isPunct, isWord, merge, opaque, unparsed, type Ctx, type Verdict } from './mysql-tokens.js';

/** How deeply compound statements may nest before the body is unknown. */
const MAX_NEST = 32;

class Unreadable extends Error {}

/** Words that end a statement list: they never begin a statement. */
const ENDS = ['END', 'ELSE', 'ELSEIF', 'WHEN', 'UNTIL'];

class Body {
  readonly parts: Verdict[] = [];

  constructor(
    private readonly ts: readonly Token[],
    private readonly ctx: Ctx,
  ) {}

  private fail(what: string, at: number): never {
    throw new Unreadable(`${what} at '${this.ts[at]?.text ?? 'the end'}'`);
  }

  private expect(at: number, ...words: string[]): number {
    if (!isWord(this.ts[at], ...words)) this.fail(`expected ${words.join(' or ')}`, at);
    return at + 1;
  }

  /** A condition or value (IF …, WHILE …, UNTIL …, DEFAULT …): read as `DO <expr>`. */
  private expr(from: number, to: number): void {
    if (to <= from) this.fail('an empty expression', from);
    this.parts.push(this.ctx.inner([fakeWord('DO'), ...this.ts.slice(from, to)]));
  }

  /** Index of the first depth-0 word among `words` from `from` outside parentheses and CASE … END; -1 if none. */
  private find(from: number, words: readonly string[], until = this.ts.length): number {
    let depth = 0;
    let cases = 0;
    for (let k = from; k < until; k++) {
      const t = this.ts[k];
      if (isPunct(t, '(')) depth++;
      else if (isPunct(t, ')')) depth--;
      else if (depth === 0 && isWord(t, 'CASE')) cases++;
      else if (depth === 0 && cases > 0 && isWord(t, 'END')) cases--;
      else if (depth === 0 && cases === 0 && isWord(t, ...words)) return k;
      else if (depth === 0 && isPunct(t, ';')) return -1;
    }
    return -1;
  }

  /** Skip an optional label after END [LOOP|WHILE|REPEAT]. */
  private label(at: number): number {
    const t = this.ts[at];
    return (t?.type === 'word' || t?.type === 'ident') && !isWord(t, ...ENDS) ? at + 1 : at;
  }

  /** Statements separated by `;` up to one of `ENDS`; returns the index of that word. */
  private list(from: number, nest: number): number {
    let k = from;
    while (k < this.ts.length && !isWord(this.ts[k], ...ENDS)) {
      k = this.statement(k, nest);
      if (!isPunct(this.ts[k], ';')) this.fail("expected ';'", k);
      k++;
    }
    if (k >= this.ts.length) this.fail('a block without END', k);
    return k;
  }

  /** One statement from `at`; returns the index just after it. */
  statement(at: number, nest: number): number {
    if (nest > MAX_NEST) this.fail('compound statements nested too deeply', at);
    const ts = this.ts;
    let k = at;
    if (isPunct(ts[k + 1], ':') && (ts[k]?.type === 'word' || ts[k]?.type === 'ident')) k += 2; // a label
    const w = ts[k]?.type === 'word' ? ts[k]!.value : '';
    switch (w) {
      case 'BEGIN': {
        if (isWord(ts[k + 1], 'WORK') || isPunct(ts[k + 1], ';')) break; // starts a transaction: a statement
        k = isWord(ts[k + 1], 'NOT') && isWord(ts[k + 2], 'ATOMIC') ? k + 3 : k + 1;
        return this.label(this.expect(this.list(k, nest + 1), 'END'));
      }
      case 'IF': {
        for (;;) {
          const then = this.find(k + 1, ['THEN']);
          if (then < 0) this.fail('IF without THEN', k);
          this.expr(k + 1, then);
          k = this.list(then + 1, nest + 1);
          if (!isWord(ts[k], 'ELSEIF')) break;
        }
        if (isWord(ts[k], 'ELSE')) k = this.list(k + 1, nest + 1);
        return this.expect(this.expect(k, 'END'), 'IF');
      }
      case 'CASE': {
        k++;
        if (!isWord(ts[k], 'WHEN')) {
          const when = this.find(k, ['WHEN']);
          if (when < 0) this.fail('CASE without WHEN', k);
          this.expr(k, when);
          k = when;
        }
        while (isWord(ts[k], 'WHEN')) {
          const then = this.find(k + 1, ['THEN']);
          if (then < 0) this.fail('WHEN without THEN', k);
          this.expr(k + 1, then);
          k = this.list(then + 1, nest + 1);
        }
        if (isWord(ts[k], 'ELSE')) k = this.list(k + 1, nest + 1);
        return this.expect(this.expect(k, 'END'), 'CASE');
      }
      case 'WHILE': {
        const d = this.find(k + 1, ['DO']);
        if (d < 0) this.fail('WHILE without DO', k);
        this.expr(k + 1, d);
        return this.label(this.expect(this.expect(this.list(d + 1, nest + 1), 'END'), 'WHILE'));
      }
      case 'LOOP':
        return this.label(this.expect(this.expect(this.list(k + 1, nest + 1), 'END'), 'LOOP'));
      case 'REPEAT': {
        k = this.expect(this.list(k + 1, nest + 1), 'UNTIL');
        const end = this.find(k, ['END']);
        if (end < 0 || !isWord(ts[end + 1], 'REPEAT')) this.fail('REPEAT without END REPEAT', k);
        this.expr(k, end);
        return this.label(end + 2);
      }
      case 'DECLARE':
        return this.declare(k, nest);
      case 'LEAVE':
      case 'ITERATE':
      case 'OPEN':
      case 'FETCH':
      case 'CLOSE':
      case 'SIGNAL':
      case 'RESIGNAL':
        // Control flow, cursors (the query is the DECLARE's), raising an error (its values are literals or variables).
        if (k !== at) this.fail('a label on a statement that is not a block or loop', k);
        return this.simpleEnd(k);
      default:
        if (k !== at) this.fail('a label on a statement that is not a block or loop', k);
    }
    const end = this.simpleEnd(k);
    this.parts.push(this.ctx.inner(ts.slice(k, end)));
    return end;
  }

  /** The end (the depth-0 `;`, or the end of the text) of a statement that holds no compound statement. */
  private simpleEnd(from: number): number {
    let depth = 0;
    for (let k = from; k < this.ts.length; k++) {
      if (isPunct(this.ts[k], '(')) depth++;
      else if (isPunct(this.ts[k], ')')) depth--;
      else if (depth === 0 && isPunct(this.ts[k], ';')) return k;
    }
    return this.ts.length;
  }

  /** DECLARE variables [DEFAULT expr] | name CONDITION FOR … | name CURSOR FOR query | … HANDLER FOR … statement. */
  private declare(at: number, nest: number): number {
    const ts = this.ts;
    if (isWord(ts[at + 1], 'CONTINUE', 'EXIT', 'UNDO') && isWord(ts[at + 2], 'HANDLER')) {
      let k = this.expect(at + 3, 'FOR');
      for (;;) {
        if (isWord(ts[k], 'NOT') && isWord(ts[k + 1], 'FOUND')) k += 2;
        else if (isWord(ts[k], 'SQLSTATE')) k += isWord(ts[k + 1], 'VALUE') ? 3 : 2;
        else k++;
        if (!isPunct(ts[k], ',')) break;
        k++;
      }
      return this.statement(k, nest + 1);
    }
    const end = this.simpleEnd(at);
    if (isWord(ts[at + 2], 'CONDITION')) return end;
    const cursor = isWord(ts[at + 2], 'CURSOR') ? this.find(at + 3, ['FOR'], end) : -1;
    if (cursor >= 0) {
      this.parts.push(this.ctx.inner(ts.slice(cursor + 1, end)));
      return end;
    }
    const dflt = this.find(at + 1, ['DEFAULT'], end);
    if (dflt >= 0) this.expr(dflt + 1, end);
    return end;
  }
}

function readBody(ts: readonly Token[], ctx: Ctx): Verdict {
  const body = new Body(ts, ctx);
  try {
    let end = body.statement(0, 0);
    if (isPunct(ts[end], ';')) end++;
    if (end < ts.length) return unparsed(`the routine body goes on after its statement, at '${ts[end]!.text}'`);
  } catch (e) {
    if (e instanceof Unreadable) return unparsed(`the routine body could not be read: ${e.message}`);
    return unparsed(e instanceof Error ? e.message : String(e)); // pathological nesting: fail closed
  }
  return body.parts.length ? merge(...body.parts) : opaque();
}

/**
 * What running a stored routine's body does: the union of every statement in it (each server's reading of its
 * versioned comments). SQL held in strings (PREPARE, which a function may not use anyway) is unknown.
 */
export function classifyRoutineBody(sql: string): Verdict {
  const rs = readings(sql);
  if (!rs) return unparsed('too many different versioned comments (/*!NNNNN … */) in the routine body');
  const out: Verdict[] = [];
  const seen = new Set<string>();
  for (const reading of rs) {
    const lexed = lex(sql, reading);
    if (lexed.error) return unparsed(`the routine body could not be read: ${lexed.error}`);
    if (seen.has(lexed.text)) continue;
    seen.add(lexed.text);
    if (lexed.tokens.length === 0) return unparsed('an empty routine body');
    const ctx: Ctx = { inner: (tokens) => classifyTokens(tokens, ctx), text: () => opaque() };
    out.push(readBody(lexed.tokens, ctx));
  }
  return merge(...out);
}
