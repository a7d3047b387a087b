// What a MySQL/MariaDB session holds that decides how its statements read, kept by the session core for the
// classifier (broker/policy/mysql-running.ts): the server's version (from its greeting), sql_mode and the client
// character set (from the server itself), user variables and SQL-level prepared statements (from the statements
// that ran through the broker). Values are learned, never guessed:
//   - what a statement changes is applied once it has run without error, and only when no other statement that
//     changes state is still running; until then, what it changes is not known;
//   - what may set user variables out of the broker's sight (a stored function, a trigger of a written table, a
//     view, CALL, EXECUTE, `:=`, INTO @v) makes every one of them unknown;
//   - a setting of sql_mode or the character set to a value the broker cannot compute (or by a statement that
//     failed) is read back from the server: `wantsSettings`, then the engine asks, holding the client's next
//     commands behind `settling` until `settings()` has the answer. An answer the classifier does not follow
//     (ANSI_QUOTES, sjis, …) makes every later statement unknown.
import { classifyMysqlSession, type SessionClassification } from './policy/classify-mysql.js';
import { charsetProblem, parseServerVersion, sqlModeProblem, type MysqlServer, type Value } from './policy/mysql-env.js';
import { noChanges, type Changes, type PreparedStatement, type SettingChange } from './policy/mysql-running.js';
import type { Decision, StatementRequest } from './types.js';

/** What one server answer about the session's settings holds (null fields: it did not say). */
export interface MysqlSettings {
  sqlMode: string | null;
  charset: string | null;
}

/** What a prepared statement (COM_STMT_PREPARE) changes at each execution: the same things, to values its parameters decide. */
function blank(c: Changes): Changes {
  const out = noChanges();
  out.allVars = c.allVars;
  for (const k of c.vars.keys()) out.vars.set(k, undefined);
  for (const k of c.prepared.keys()) out.prepared.set(k, undefined);
  if (c.sqlMode) out.sqlMode = { to: undefined };
  if (c.charset) out.charset = { to: undefined };
  return out;
}

export class MysqlSessionState {
  private server: MysqlServer | null = null;
  private sqlMode: string | undefined;
  private charset: string | undefined;
  private unreadable: string | undefined;
  private readonly vars = new Map<string, Value>();
  private readonly prepared = new Map<string, PreparedStatement>();
  /** What running the statements of each decision changes. */
  private readonly changesOf = new WeakMap<Decision, Changes>();
  /** Admitted statements that change state, by record id, until they complete. */
  private readonly running = new Map<number, Changes>();
  private settle: { promise: Promise<void>; resolve: () => void } | null = null;
  private ask = false;

  /** The version string of the server's greeting. */
  serverVersion(version: string): void {
    this.server = parseServerVersion(version);
  }

  classify(sql: string): SessionClassification {
    const { server, sqlMode, charset, vars, prepared, unreadable } = this;
    return classifyMysqlSession(sql, { server, sqlMode, charset, vars, prepared, unreadable });
  }

  /**
   * The decision taken on a classification, with what its statements change; `viaCatalog`: a statement reads a
   * view or calls a stored function (the catalog said so), which may set any user variable.
   */
  decided(d: Decision, changes: Changes | null, viaCatalog: boolean): void {
    const c = viaCatalog ? { ...(changes ?? noChanges()), allVars: true, vars: new Map<string, Value | undefined>() } : changes;
    if (c) this.changesOf.set(d, c);
  }

  /** A statement of this decision is about to run (`statementId`: its record, for completed()). */
  admitted(d: Decision, req: StatementRequest, statementId: number | null): void {
    const found = this.changesOf.get(d);
    if (!found || req.protocol === 'parse') return; // a prepared statement changes things when it is executed
    const c = req.protocol === 'execute' ? blank(found) : found;
    if (c.allVars) this.vars.clear();
    for (const k of c.vars.keys()) this.vars.delete(k);
    for (const k of c.prepared.keys()) this.prepared.delete(k);
    const settings = c.sqlMode !== undefined || c.charset !== undefined;
    if (settings) this.hold();
    if (statementId !== null) this.running.set(statementId, c);
    else if (settings) this.ask = true;
  }

  /** The statement recorded as `statementId` finished, without an error or with one. */
  completed(statementId: number, ok: boolean): void {
    const c = this.running.get(statementId);
    if (!c) return;
    this.running.delete(statementId);
    // Another statement that changes state is still running: what this one set may be changed again already.
    if (ok && this.running.size === 0) {
      for (const [k, v] of c.vars) if (v !== undefined) this.vars.set(k, v);
      for (const [k, p] of c.prepared) if (p) this.prepared.set(k, p);
    }
    if (!c.sqlMode && !c.charset) return;
    const known = (x: SettingChange | undefined): boolean => x === undefined || x.to !== undefined;
    if (ok && known(c.sqlMode) && known(c.charset)) {
      if (c.sqlMode) this.sqlMode = c.sqlMode.to;
      if (c.charset) this.charset = c.charset.to;
      this.release();
    } else {
      this.ask = true; // failed (the old value may stand) or not computable: the server says
    }
  }

  /** Whether the engine must ask the server for the session's settings now. */
  get wantsSettings(): boolean {
    return this.ask;
  }

  /** While the settings are being learned: the engine holds the client's next commands until this settles. */
  get settling(): Promise<void> | null {
    return this.settle?.promise ?? null;
  }

  /** The engine is asking the server (at connect, and whenever wantsSettings). */
  asking(): void {
    this.ask = false;
    this.hold();
  }

  /** The server's answer (null: none could be read): every later statement is unknown if it is one not followed. */
  settings(s: MysqlSettings | null): void {
    if (!s || s.sqlMode === null || s.charset === null) {
      this.unreadable = "the broker could not read the session's sql_mode and character set from the server; reconnect";
    } else {
      this.sqlMode = s.sqlMode;
      this.charset = s.charset;
      const problem = sqlModeProblem(s.sqlMode) ?? charsetProblem(s.charset);
      this.unreadable = problem ? `the session's ${problem}; no statement is read under it: reconnect` : undefined;
    }
    this.release();
  }

  /** COM_RESET_CONNECTION: variables and prepared statements are gone, the settings are the server's defaults. */
  reset(): void {
    this.vars.clear();
    this.prepared.clear();
    this.sqlMode = undefined;
    this.charset = undefined;
  }

  private hold(): void {
    if (this.settle) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.settle = { promise, resolve };
  }

  private release(): void {
    const s = this.settle;
    this.settle = null;
    s?.resolve();
  }
}
