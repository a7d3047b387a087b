// What a MySQL/MariaDB session has set that decides how its statements read — the server's version (which
// versioned comments run), sql_mode and the client character set (how text is lexed), user variables (what a
// setting or a PREPARE takes its value from) — and the evaluation of the few expressions such a value is
// written with: literals, variables, CONCAT, CONCAT_WS, IFNULL, COALESCE, REPLACE. The session keeps the state
// (broker/session-mysql.ts); the classifier reads it as data (mysql-running.ts) and never guesses a value.
import { isPunct, type Reading, type Token } from './mysql-lexer.js';

/** The server a session's statements reach, from its greeting: 101119 for MariaDB 10.11.19, 80036 for MySQL 8.0.36. */
export interface MysqlServer {
  family: 'mariadb' | 'mysql';
  version: number;
}

/** The server a greeting's version string names (`5.5.5-10.11.19-MariaDB-0+deb12u1`, `8.0.36`), or null. */
export function parseServerVersion(v: string): MysqlServer | null {
  const maria = /(\d+)\.(\d+)\.(\d+)-MariaDB/i.exec(v);
  if (!maria && /mariadb/i.test(v)) return null;
  const m = maria ?? /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m) return null;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (minor > 99 || patch > 99) return null;
  return { family: maria ? 'mariadb' : 'mysql', version: major * 10000 + minor * 100 + patch };
}

/**
 * How this server reads versioned comments: one reading for MariaDB; for MySQL both ways of reading a 6-digit
 * version (as 6 digits, or as 5 and a digit of text), since which releases read 6 is not something to guess.
 */
export function serverReadings(s: MysqlServer): Reading[] {
  return s.family === 'mariadb'
    ? [{ family: 'mariadb', version: s.version }]
    : [
        { family: 'mysql6', version: s.version },
        { family: 'mysql5', version: s.version },
      ];
}

/**
 * sql_mode flags that leave the lexing of quotes, comments and expressions alone. PIPES_AS_CONCAT is among them:
 * `||` is an operator either way, between the same operands (tables and calls), only its value differs.
 */
const SAFE_SQL_MODES = new Set([
  '',
  'STRICT_TRANS_TABLES',
  'STRICT_ALL_TABLES',
  'NO_ZERO_IN_DATE',
  'NO_ZERO_DATE',
  'ERROR_FOR_DIVISION_BY_ZERO',
  'NO_ENGINE_SUBSTITUTION',
  'ONLY_FULL_GROUP_BY',
  'NO_AUTO_CREATE_USER',
  'NO_AUTO_VALUE_ON_ZERO',
  'TRADITIONAL',
  'PIPES_AS_CONCAT',
  'IGNORE_SPACE',
  'REAL_AS_FLOAT',
  'NO_UNSIGNED_SUBTRACTION',
  'NO_DIR_IN_CREATE',
  'PAD_CHAR_TO_FULL_LENGTH',
  'ALLOW_INVALID_DATES',
  'NO_FIELD_OPTIONS',
  'NO_KEY_OPTIONS',
  'NO_TABLE_OPTIONS',
  'TIME_TRUNCATE_FRACTIONAL',
  'TIME_ROUND_FRACTIONAL',
  'EMPTY_STRING_IS_NULL',
  'SIMULTANEOUS_ASSIGNMENT',
]);

/** Why the other flags are not followed. */
const MODE_EFFECTS: Record<string, string> = {
  ANSI_QUOTES: '"…" becomes a name, not a string',
  NO_BACKSLASH_ESCAPES: 'a backslash in a string becomes an ordinary character',
  ANSI: 'it includes ANSI_QUOTES',
  DB2: 'it includes ANSI_QUOTES',
  MAXDB: 'it includes ANSI_QUOTES',
  MSSQL: 'it includes ANSI_QUOTES',
  POSTGRESQL: 'it includes ANSI_QUOTES',
  ORACLE: 'it switches the server to its Oracle grammar, with ANSI_QUOTES',
  HIGH_NOT_PRECEDENCE: 'NOT binds tighter than the classifier reads it',
  MYSQL323: 'it includes HIGH_NOT_PRECEDENCE',
  MYSQL40: 'it includes HIGH_NOT_PRECEDENCE',
};

/** Why a session under this sql_mode (`A,B,…`) would not be read as the classifier reads it, or null. */
export function sqlModeProblem(mode: string): string | null {
  const flags = mode
    .toUpperCase()
    .split(',')
    .map((f) => f.trim());
  const bad = [...new Set(flags.filter((f) => !SAFE_SQL_MODES.has(f)))];
  if (bad.length === 0) return null;
  const why = bad.map((f) => `${f}: ${MODE_EFFECTS[f] ?? (/^\d+$/.test(f) ? 'a number is a bit mask of modes' : 'a mode the classifier does not know')}`);
  return `sql_mode '${mode}' makes the server read statements differently from the broker's classifier (${why.join('; ')})`;
}

/** Client character sets in which a backslash or quote byte is never part of a multi-byte character (unlike gbk, sjis, big5, cp932). */
const SAFE_CHARSETS = new Set(['utf8', 'utf8mb3', 'utf8mb4', 'latin1', 'ascii', 'binary']);

/** Why text in this client character set would be misread by the classifier, or null. */
export function charsetProblem(cs: string): string | null {
  if (SAFE_CHARSETS.has(cs.toLowerCase())) return null;
  return `the client character set '${cs}' is not one the broker's classifier reads (only ${[...SAFE_CHARSETS].join(', ')}: in others, such as gbk, sjis or big5, a multi-byte character may end in a backslash or quote byte)`;
}

/** A value a session holds: a string, or SQL NULL. */
export type Value = string | null;

/** What an expression is worth, or why that cannot be told. */
export type Evaluated = { value: Value } | { unknown: string };

/** What evaluation may look up. */
export interface StateView {
  /** A user variable (lower-cased name); undefined: not known. */
  variable(name: string): Value | undefined;
  /** sql_mode or character_set_client of the session; undefined: not known exactly. */
  setting(name: 'sql_mode' | 'character_set_client'): string | undefined;
}

class NotKnown extends Error {}

const adjacent = (a: Token | undefined, b: Token | undefined): boolean => !!a && !!b && a.end === b.start;

/** Built-ins a value may be computed with (written `NAME(` with no space, so no stored function can stand in). */
const FUNCTIONS: Record<string, (args: Value[]) => Value> = {
  CONCAT: (a) => (a.some((x) => x === null) ? null : a.join('')),
  CONCAT_WS: ([sep, ...a]) => (sep === null || sep === undefined ? null : a.filter((x): x is string => x !== null).join(sep)),
  IFNULL: ([a, b]) => a ?? b ?? null,
  COALESCE: (a) => a.find((x) => x !== null) ?? null,
  REPLACE: ([s, from, to]) => (s == null || from == null || to == null ? null : from === '' ? s : s.split(from).join(to)),
};
const ARITY: Record<string, [number, number]> = { CONCAT: [1, 999], CONCAT_WS: [2, 999], IFNULL: [2, 2], COALESCE: [1, 999], REPLACE: [3, 3] };

class Evaluator {
  private k = 0;
  constructor(
    private readonly ts: readonly Token[],
    private readonly view: StateView,
    /** The value of a system variable: a bare word (`SET sql_mode = TRADITIONAL`) is a string. */
    private readonly setting: boolean,
  ) {}

  run(): Evaluated {
    try {
      const v = this.expr();
      if (this.k < this.ts.length) throw new NotKnown(`it goes on after its value, at '${this.ts[this.k]!.text}'`);
      return { value: v };
    } catch (e) {
      if (e instanceof NotKnown) return { unknown: e.message };
      throw e;
    }
  }

  private expect(p: string): void {
    if (!isPunct(this.ts[this.k], p)) throw new NotKnown(`'${p}' expected`);
    this.k++;
  }

  private expr(): Value {
    const t = this.ts[this.k];
    if (!t) throw new NotKnown('the value is missing');
    if (isPunct(t, '(')) {
      this.k++;
      const v = this.expr();
      this.expect(')');
      return v;
    }
    if (t.type === 'string' || t.type === 'dstring') return this.strings();
    if (isPunct(t, '@@')) return this.systemVariable();
    if (isPunct(t, '@')) return this.userVariable();
    const next = this.ts[this.k + 1];
    if (t.type === 'word') {
      if (/^(_\w+|N)$/i.test(t.text) && (next?.type === 'string' || next?.type === 'dstring')) {
        this.k++; // a character set introducer: _utf8mb4'…', N'…'
        return this.strings();
      }
      if (isPunct(next, '(')) {
        const f = FUNCTIONS[t.value];
        if (!f || !adjacent(t, next)) throw new NotKnown(`it calls ${t.text}(), which the broker does not evaluate`);
        return this.call(t.value, f);
      }
      this.k++;
      if (t.value === 'NULL') return null;
      if (/^\d+$/.test(t.text)) return t.text;
      if (t.value === 'DEFAULT') throw new NotKnown("DEFAULT is the server's own default");
      if (this.setting) return t.text;
      throw new NotKnown(`${t.text} is a name, not a value`);
    }
    if (t.type === 'ident' && this.setting && !isPunct(next, '(')) {
      this.k++;
      return t.value;
    }
    throw new NotKnown(`'${t.text}' is not a value the broker evaluates`);
  }

  /** One or more adjacent string literals (MySQL concatenates them). */
  private strings(): string {
    let s = '';
    while (this.ts[this.k]?.type === 'string' || this.ts[this.k]?.type === 'dstring') s += this.ts[this.k++]!.value;
    return s;
  }

  private systemVariable(): Value {
    const at = this.ts[this.k]!;
    let k = this.k + 1;
    const scope = this.ts[k]?.type === 'word' && isPunct(this.ts[k + 1], '.') ? this.ts[k]!.value : null;
    if (scope) k += 2;
    const n = this.ts[k];
    if (!adjacent(at, this.ts[this.k + 1]) || !n || (n.type !== 'word' && n.type !== 'ident')) throw new NotKnown('a system variable it cannot read');
    this.k = k + 1;
    const name = (n.type === 'word' ? n.text : n.value).toLowerCase();
    const written = `@@${scope ? `${scope.toLowerCase()}.` : ''}${name}`;
    if (scope === 'GLOBAL') throw new NotKnown(`${written} is the server's global value`);
    if (scope !== null && scope !== 'SESSION' && scope !== 'LOCAL') throw new NotKnown(`${written} is not a session variable`);
    if (name !== 'sql_mode' && name !== 'character_set_client') throw new NotKnown(`${written} is not a variable the broker follows`);
    const v = this.view.setting(name);
    if (v === undefined) throw new NotKnown(`${written} is not known to the broker here`);
    return v;
  }

  private userVariable(): Value {
    const at = this.ts[this.k]!;
    const n = this.ts[this.k + 1];
    if (!adjacent(at, n) || !n || (n.type !== 'word' && n.type !== 'ident' && n.type !== 'string' && n.type !== 'dstring'))
      throw new NotKnown('a user variable it cannot read');
    let name = n.type === 'word' ? n.text : n.value;
    let k = this.k + 2;
    // `@a.b`: dots are part of an unquoted variable name
    while (
      n.type === 'word' &&
      isPunct(this.ts[k], '.') &&
      adjacent(this.ts[k - 1], this.ts[k]) &&
      this.ts[k + 1]?.type === 'word' &&
      adjacent(this.ts[k], this.ts[k + 1])
    ) {
      name += `.${this.ts[k + 1]!.text}`;
      k += 2;
    }
    this.k = k;
    const v = this.view.variable(name.toLowerCase());
    if (v === undefined)
      throw new NotKnown(`@${name} holds a value the broker does not know (one set outside its sight, or before a statement that may have changed it)`);
    return v;
  }

  private call(name: string, f: (args: Value[]) => Value): Value {
    this.k += 2; // name (
    const args: Value[] = [];
    if (!isPunct(this.ts[this.k], ')')) {
      for (;;) {
        args.push(this.expr());
        if (isPunct(this.ts[this.k], ',')) this.k++;
        else break;
      }
    }
    this.expect(')');
    const [min, max] = ARITY[name]!;
    if (args.length < min || args.length > max) throw new NotKnown(`${name}() with ${args.length} arguments`);
    return f(args);
  }
}

/** The value written as `ts`, as far as the session's state tells. */
export function evaluate(ts: readonly Token[], view: StateView, setting: boolean): Evaluated {
  return new Evaluator(ts, view, setting).run();
}
