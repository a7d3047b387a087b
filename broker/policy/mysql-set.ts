// SET statements: session settings are reads, server-wide ones admin, passwords and roles privilege — and the
// few session settings that change how the server splits text (sql_mode, the client character set) are unknown
// when their new value is known to be one the classifier does not follow. A value is computed from what the
// session knows (mysql-env.ts): `CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES')`, `@OLD_SQL_MODE`. One that cannot
// be computed is unknown — or, in a session whose engine asks the server afterwards, runs, and the statements
// after it in the same text are unknown until the server has said what the setting became.
import type { Kind } from '../types.js';
import { charsetProblem, evaluate, sqlModeProblem } from './mysql-env.js';
import type { Token } from './mysql-lexer.js';
import { parseTokens } from './mysql-parse.js';
import { Running } from './mysql-running.js';
import { isPunct, opaque, splitDepth0, unparsed, verdict, W, type Ctx, type Verdict } from './mysql-tokens.js';

/** Whether text written under this sql_mode (`A,B,…`) is lexed as the classifier lexes it (no ANSI_QUOTES, …). */
export function isSafeSqlMode(mode: string): boolean {
  return mode.toUpperCase() === 'DEFAULT' || sqlModeProblem(mode) === null;
}

/** Session variables only a privileged account may set, that hide statements from replication or the binary log. */
const ADMIN_SESSION_VARS = new Set([
  'sql_log_bin',
  'sql_log_off',
  'pseudo_thread_id',
  'pseudo_slave_mode',
  'pseudo_replica_mode',
  'gtid_next',
  'gtid_domain_id',
  'gtid_seq_no',
  'server_id',
  'skip_replication',
  'debug',
  'debug_dbug',
  'debug_sync',
  'binlog_format',
  'binlog_row_image',
  'sql_slave_skip_counter',
  'sql_replica_skip_counter',
]);
const GLOBAL_SCOPES = new Set(['GLOBAL', 'PERSIST', 'PERSIST_ONLY']);
const SESSION_SCOPES = new Set(['SESSION', 'LOCAL']);

type Setting = 'sql_mode' | 'character_set_client';

/** One SET statement's assignments: all values are computed first, then assigned (as the server does). */
class Assignments {
  readonly kinds = new Set<Kind>();
  readonly reasons: string[] = [];
  private readonly vars = new Map<string, string | null | undefined>();
  private readonly settings = new Map<Setting, string | undefined>();
  /** A value assigns user variables of its own (`@a := 1` inside it). */
  private nested = false;

  constructor(private readonly run: Running) {}

  user(name: string, value: readonly Token[]): void {
    this.kinds.add('read');
    if (value.some((t) => isPunct(t, ':='))) this.nested = true;
    const e = evaluate(value, this.run, false);
    this.vars.set(name, 'value' in e ? e.value : undefined);
  }

  /** sql_mode or the client character set: how the server lexes every later statement. */
  setting(name: Setting, value: readonly Token[]): void {
    const e = evaluate(value, this.run, true);
    if ('value' in e && e.value !== null) {
      const problem = name === 'sql_mode' ? sqlModeProblem(e.value) : charsetProblem(e.value);
      if (problem) {
        this.kinds.add('unknown');
        this.reasons.push(problem);
      } else {
        this.kinds.add('read');
        this.settings.set(name, e.value);
      }
      return;
    }
    const why = 'value' in e ? 'it is NULL' : e.unknown;
    if (this.run.opts.ask) {
      // The broker asks the server what it became once the SET has run; until then nothing after it is read.
      this.kinds.add('read');
      this.settings.set(name, undefined);
    } else {
      this.kinds.add('unknown');
      this.reasons.push(`the value of ${name} is not a literal or a value the broker knows (${why})`);
    }
  }

  /** Apply, once every value is computed. */
  done(): void {
    if (this.nested) this.run.anyVariable();
    for (const [k, v] of this.vars) this.run.setVariable(k, v);
    for (const [k, v] of this.settings) this.run.set(k, v);
    const asked = [...this.settings].filter(([, v]) => v === undefined).map(([k]) => k);
    if (asked.length) this.run.doubt = asked.join(' and ');
  }
}

/** Session variables that are not sql_mode or the character set. */
function systemVarKind(name: string, global: boolean): Kind {
  if (global) return 'admin';
  const n = name.toLowerCase();
  if (ADMIN_SESSION_VARS.has(n) || n.startsWith('wsrep_')) return 'admin';
  return 'read';
}

/** The lower-cased name of a user variable written `@name`, `@'name'`, `` @`name` ``, `@a.b`; null if it cannot be read. */
function userVariable(target: readonly Token[]): string | null {
  const n = target[1];
  if (!n || target[0]!.end !== n.start) return null;
  if (n.type !== 'word') return target.length === 2 && n.type !== 'punct' ? n.value.toLowerCase() : null;
  let name = n.text;
  for (let k = 2; k < target.length; k += 2) {
    if (!isPunct(target[k], '.') || target[k + 1]?.type !== 'word') return null;
    name += `.${target[k + 1]!.text}`;
  }
  return name.toLowerCase();
}

export function classifySet(ts: Token[], ctx: Ctx): Verdict {
  const first = W(ts[1]);
  if (first === 'PASSWORD' || first === 'ROLE' || (first === 'DEFAULT' && W(ts[2]) === 'ROLE')) return verdict(['privilege']);
  if (first === 'STATEMENT') return opaque('SET STATEMENT … FOR <statement> is not analysed by the broker'); // SET STATEMENT var=… FOR <statement>
  const a = new Assignments(ctx.state ?? new Running(null));
  let global = false; // `SET GLOBAL a = 1, b = 2` sets both globally
  for (const part of splitDepth0(ts.slice(1), ',')) {
    let k = 0;
    const scope = W(part[0]);
    if (scope && GLOBAL_SCOPES.has(scope)) [global, k] = [true, 1];
    else if (scope && SESSION_SCOPES.has(scope)) [global, k] = [false, 1];
    const w = W(part[k]);
    if (w === 'TRANSACTION') {
      a.kinds.add(global ? 'admin' : 'read');
      continue;
    }
    if (w === 'NAMES' || w === 'CHARSET' || (w === 'CHARACTER' && W(part[k + 1]) === 'SET')) {
      const at = w === 'CHARACTER' ? k + 2 : k + 1;
      a.setting('character_set_client', part.slice(at, at + 1)); // NAMES x [COLLATE y]
      continue;
    }
    if (w === 'PASSWORD' || w === 'ROLE') {
      a.kinds.add('privilege');
      continue;
    }
    const eq = part.findIndex((t) => isPunct(t, '=') || isPunct(t, ':='));
    if (eq < 0) return unparsed('a SET it cannot read');
    const target = part.slice(k, eq);
    const value = part.slice(eq + 1);
    if (isPunct(target[0], '@')) {
      const name = userVariable(target);
      if (name === null) return unparsed('a SET of a user variable whose name it cannot read');
      a.user(name, value);
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
    const n = (last.type === 'word' ? last.text : last.value).toLowerCase();
    if (!g && name.length === 1 && (n === 'sql_mode' || n === 'character_set_client')) a.setting(n, value);
    else a.kinds.add(systemVarKind(n, g));
  }
  // A subquery in a value reads tables: take them from the parser, or give up if it cannot say.
  let tables: string[] = [];
  if (ts.some((t) => t.type === 'word' && t.value === 'SELECT')) {
    const p = parseTokens(ts);
    if (typeof p === 'string') return unparsed(p);
    tables = p.tables;
  }
  a.done();
  const v = verdict(a.kinds.size ? [...a.kinds] : ['read'], tables);
  if (a.reasons.length) v.reason = a.reasons.join('; ');
  return v;
}
