// The command phase between an authenticated client and its upstream: every SQL-bearing command goes
// through the session (decide + record) before it is forwarded; a refused one is answered by the broker
// with an ERR packet and never reaches the server. MySQL does not abort a transaction on an error, so a
// refusal needs no upstream action: client and server agree that the statement did not run, and the
// transaction goes on (a later COMMIT commits the statements that did run — exactly as on the server).
import type net from 'node:net';
import type { Admission, Decision, Kind } from '../../types.js';
import type { SessionPort } from '../engine.js';
import { PacketFramer, type Message } from './framing.js';
import { COM, command, commandName, ER, errPacket, okPayload, packet, PacketReader, ProtocolError, STATUS, type ErrorCode } from './protocol.js';
import { outcome, Responses, type Outcome, type Pending, type Prepared } from './responses.js';
import type { ResultSetHook } from './results.js';
import { MysqlResultTap } from './sample.js';
import { UpstreamScanner } from './scanner.js';
import { confineTo, parseKill, quoteIdent, quoteString, useDatabase, type Confine } from './scope.js';
import { InOrder } from '../in-order.js';
import { Wire } from '../writer.js';

/** What the engine does with a KILL of a broker connection id (see index.ts). */
export type KillPlan = { allowed: false; message: string } | { allowed: true; self: boolean; run: () => Promise<void> };

export interface RelayOptions {
  maxMessageBytes: number;
  /** How the client's SQL text is decoded for classification and the audit log (its handshake character set). */
  encoding: 'utf8' | 'latin1';
  /** The target's name (what clients call the database) and its upstream database. */
  targetName: string;
  database: string;
  kill: (scope: 'QUERY' | 'CONNECTION', id: number) => KillPlan;
  /** The masking seam: see results.ts. */
  resultSet?: ResultSetHook | undefined;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const engineDecision = (action: 'allow' | 'deny', message: string, kinds: Kind[], ruleId: string | null = null): Decision => ({
  action,
  ruleId,
  message,
  kinds,
});
const KILL_RULE = 'broker:kill-own-build';
/** The rule id of the session's own containment refusals (session.ts). */
const CONFINE_RULE = 'broker:confine';
/** The broker's own question to the server about the session (never recorded, never shown to the client). */
export const SETTINGS_QUERY = 'SELECT @@SESSION.sql_mode, @@SESSION.character_set_client';

export class Relay {
  private readonly framer: PacketFramer;
  readonly responses: Responses;
  private readonly scanner: UpstreamScanner;
  private readonly statements = new Map<number, Prepared>();
  /** MariaDB's statement id 0xffffffff means "the one prepared last". */
  private lastPrepared: Prepared | null = null;
  private readonly confine: Confine;
  /** The check for a query that is `USE <target>` alone, sent upstream as COM_INIT_DB of the upstream database. */
  private readonly confineMapped: Confine;
  private ended = false;
  /** Client messages, strictly in order (holds behind a statement awaiting its decision). */
  private readonly order: InOrder<Message>;
  /** The server asked for a LOCAL INFILE: the client's packets are file data up to an empty one. */
  private infile = false;
  /** Sequence id an answer to the command being handled takes (a client waiting on a command expects 1). */
  private answerSeq = 1;
  /** Server status flags last seen, for the broker's own OK packets. */
  private status: number = STATUS.AUTOCOMMIT;
  /** What goes to the client and upstream: one write per turn each way (writer.ts). */
  private readonly wire: Wire;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    private readonly session: SessionPort,
    private readonly opts: RelayOptions,
    private readonly onEnd: (reason: string, error?: Error) => void,
  ) {
    this.framer = new PacketFramer(opts.maxMessageBytes);
    this.wire = new Wire(client, upstream);
    // Twin of the Postgres relay's wiring on purpose: in-order.ts holds the logic, each relay gives its own framer and handlers.
    this.order = new InOrder<Message>({
      client,
      upstream,
      wire: this.wire,
      next: () => this.framer.next(),
      ended: () => this.ended,
      buffered: () => this.framer.buffered,
      handle: (m) => this.handle(m),
      fail: (e) => this.fail(e),
    });
    this.confine = confineTo(opts.targetName, opts.database);
    this.confineMapped = confineTo(opts.targetName, opts.database, true);
    this.responses = new Responses({
      finish: (o) => this.finish(o),
      prepared: (stmt, id) => this.statements.set(id, stmt),
      infile: () => (this.infile = true),
      status: (s) => (this.status = s),
      resultSet: opts.resultSet,
      // Each recorded statement's rows, as the client receives them (after masking), into the session's recorder.
      sample: () => {
        const r = session.recorder();
        return r ? new MysqlResultTap(r, opts.encoding) : null;
      },
    });
    this.scanner = new UpstreamScanner(this.responses, (b) => this.toClient(b));
  }

  get inFlight(): boolean {
    return this.responses.inFlight;
  }

  /**
   * Runs the broker's own queries (the blast-radius estimate, estimate.ts) when nothing of the client's is in flight
   * (a statement held for approval waits unforwarded): each answer is read as a probe's, never forwarded; the first
   * row of each, null after an error. Null when something is in flight or the relay ended.
   */
  run(queries: readonly string[]): Promise<((string | null)[] | null)[]> | null {
    if (this.ended || this.infile || this.responses.inFlight) return null;
    return Promise.all(
      queries.map(
        (q) =>
          new Promise<(string | null)[] | null>((done) => {
            this.expect({ kind: 'probe', row: null, done });
            this.toUpstream(command(COM.QUERY, q));
          }),
      ),
    );
  }

  start(initial?: Buffer): void {
    this.client.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      this.order.received();
    });
    this.upstream.on('data', (chunk: Buffer) => {
      // One write for what one read turns into (runs, rewritten rows, the broker's own answers queued behind them).
      this.wire.client.hold();
      try {
        this.scanner.scan(chunk);
      } catch (e) {
        this.opts.log?.('malformed packet from the upstream', { error: String(e) });
        this.fail(new ProtocolError(`the server sent a packet the broker cannot follow: ${(e as Error).message}`, ER.UNKNOWN_ERROR));
      }
      this.wire.client.release();
    });
    this.client.on('drain', () => this.upstream.resume());
    this.upstream.on('drain', () => this.client.resume());
    this.upstream.resume();
    this.client.resume();
    this.probe(); // the session's sql_mode and character set, before its first statement is read
    if (initial?.length) {
      this.framer.push(initial);
      void this.order.pump();
    }
  }

  /** Write to the client (at the end of the turn), pausing the upstream while the client's buffer is full. */
  toClient(buf: Buffer): void {
    if (!this.ended) this.wire.client.push(buf);
  }

  private toUpstream(buf: Buffer): void {
    if (!this.ended) this.wire.upstream.push(buf);
  }

  /** A malformed packet: the client learns why (as the answer to what it sent), and only this connection ends. */
  private fail(e: Error): void {
    if (this.ended) return;
    const code = e instanceof ProtocolError ? e.code : ER.MALFORMED_PACKET;
    this.toClient(errPacket(this.answerSeq, code, `jit-broker: protocol violation: ${e.message}; closing the connection`));
    this.end('protocol error', e);
  }

  /** What is pending goes out first (an error after the bytes before it), then the connection ends. */
  end(reason: string, error?: Error): void {
    if (this.ended) return;
    this.wire.flush();
    this.ended = true;
    this.onEnd(reason, error); // first: the connection still sees what was in flight (to kill it upstream)
    this.responses.abandon(reason);
  }

  stop(reason = 'connection closed'): void {
    if (this.ended) return;
    this.wire.flush();
    this.ended = true;
    this.responses.abandon(reason);
  }

  /** Queue an expected response (or send the broker's own answer when nothing is ahead of it). */
  private expect(p: Pending): void {
    const now = this.responses.push(p);
    if (now) this.toClient(now);
  }

  private reply(m: Message, code: ErrorCode, message: string): void {
    this.expect({ kind: 'reply', bytes: errPacket(m.lastSeq + 1, code, message) });
  }

  private refuse(m: Message, a: Extract<Admission, { ok: false }>, code: ErrorCode = ER.SPECIFIC_ACCESS_DENIED): void {
    this.reply(m, a.reason === 'audit' ? ER.UNKNOWN_ERROR : code, a.message);
  }

  /** Returns a promise only when the command must wait (for its audit record or decision). */
  private handle(m: Message): Promise<void> | null {
    if (this.infile) {
      this.toUpstream(m.raw);
      if (m.payload.length === 0) this.infile = false;
      return null;
    }
    // The session's settings are being learned from the server: what the client sends next is read after.
    const settling = this.session.mysql?.settling;
    if (settling) return settling.then(() => this.handle(m) ?? undefined);
    this.answerSeq = (m.lastSeq + 1) & 0xff;
    if (m.seq !== 0) throw new ProtocolError(`a command packet has sequence id ${m.seq}, not 0`, ER.NET_PACKETS_OUT_OF_ORDER);
    if (m.payload.length === 0) throw new ProtocolError('empty command packet');
    const p = m.payload;
    const need = (n: number, what: string) => {
      if (p.length < n) throw new ProtocolError(`truncated ${what}: ${p.length} bytes, at least ${n} needed`);
    };
    switch (p[0]) {
      case COM.QUERY: {
        const sql = p.toString(this.opts.encoding, 1);
        const kill = parseKill(sql);
        if (kill) return this.kill(m, sql, kill.scope, kill.id);
        // `USE <target>` (JDBC setCatalog, a GUI, typed): the name clients know is the upstream database.
        const { targetName, database } = this.opts;
        const mapped = targetName !== database && useDatabase(sql) === targetName;
        return this.session.admit({ sql, protocol: 'simple', confine: mapped ? this.confineMapped : this.confine }).then((a) => {
          if (!a.ok) return this.refuse(m, a);
          this.expect({ kind: 'result', format: 'text', sql, decision: a.decision, out: outcome(a.statementId), stmt: null });
          this.toUpstream(mapped ? command(COM.INIT_DB, database) : m.raw);
        });
      }
      case COM.INIT_DB: {
        const db = p.toString(this.opts.encoding, 1);
        const sql = `USE ${quoteIdent(db)}`;
        const { targetName, database } = this.opts;
        // The name clients know (the target's) maps to the upstream database; any other database is out of reach.
        if (db !== database && db !== targetName) {
          const why = `database ${quoteIdent(db)} is outside target '${targetName}': its connections stay in ${quoteIdent(targetName)} (upstream database ${quoteIdent(database)})`;
          return this.session.admit({ sql, protocol: 'simple' }, engineDecision('deny', why, ['read'], CONFINE_RULE)).then((a) => {
            if (!a.ok) this.refuse(m, a, ER.DBACCESS_DENIED);
          });
        }
        return this.session.admit({ sql, protocol: 'simple' }).then((a) => {
          if (!a.ok) return this.refuse(m, a);
          this.expect({ kind: 'result', format: 'text', sql, decision: a.decision, out: outcome(a.statementId), stmt: null });
          this.toUpstream(db === database ? m.raw : command(COM.INIT_DB, database));
        });
      }
      case COM.FIELD_LIST: {
        const r = new PacketReader(p.subarray(1));
        const table = r.nulBytes('table name', true).toString(this.opts.encoding);
        const wild = r.rest().toString(this.opts.encoding);
        const sql = `SHOW COLUMNS FROM ${quoteIdent(table)}${wild ? ` LIKE ${quoteString(wild)}` : ''}`;
        return this.session.admit({ sql, protocol: 'simple' }).then((a) => {
          if (!a.ok) return this.refuse(m, a);
          this.expect({ kind: 'fields', out: outcome(a.statementId) });
          this.toUpstream(m.raw);
        });
      }
      case COM.STMT_PREPARE: {
        const sql = p.toString(this.opts.encoding, 1);
        return this.session.admit({ sql, protocol: 'parse', confine: this.confine }).then((a) => {
          if (!a.ok) {
            this.lastPrepared = null;
            return this.refuse(m, a);
          }
          const stmt: Prepared = { sql, decision: a.decision, columns: null };
          this.lastPrepared = stmt;
          this.expect({ kind: 'prepare', stmt });
          this.toUpstream(m.raw);
        });
      }
      case COM.STMT_EXECUTE: {
        need(10, 'COM_STMT_EXECUTE');
        const id = p.readUInt32LE(1);
        const stmt = id === 0xffffffff ? this.lastPrepared : this.statements.get(id);
        if (!stmt) {
          this.reply(m, ER.UNKNOWN_STMT_HANDLER, `Unknown prepared statement handler (${id}) given to mysqld_stmt_execute`);
          return null;
        }
        return this.session.admit({ sql: stmt.sql, protocol: 'execute' }, stmt.decision).then((a) => {
          if (!a.ok) return this.refuse(m, a);
          this.expect({ kind: 'result', format: 'binary', sql: stmt.sql, decision: a.decision, out: outcome(a.statementId), stmt });
          this.toUpstream(m.raw);
        });
      }
      case COM.STMT_CLOSE:
        need(5, 'COM_STMT_CLOSE');
        this.statements.delete(p.readUInt32LE(1));
        this.toUpstream(m.raw);
        return null;
      case COM.STMT_SEND_LONG_DATA:
        need(7, 'COM_STMT_SEND_LONG_DATA');
        this.toUpstream(m.raw);
        return null;
      case COM.STMT_RESET:
        need(5, 'COM_STMT_RESET');
        return this.forward(m, { kind: 'one' });
      case COM.STMT_FETCH:
        need(9, 'COM_STMT_FETCH');
        return this.forward(m, { kind: 'fetch', stmt: this.statements.get(p.readUInt32LE(1)) ?? null });
      case COM.SET_OPTION:
        need(3, 'COM_SET_OPTION');
        return this.forward(m, { kind: 'one' });
      case COM.PING:
        return this.forward(m, { kind: 'one' });
      case COM.RESET_CONNECTION:
        this.statements.clear();
        this.lastPrepared = null;
        this.session.mysql?.reset();
        this.forward(m, { kind: 'one' });
        this.probe(); // the settings are the server's defaults again
        return null;
      case COM.QUIT:
        this.end('client quit');
        return null;
      case COM.PROCESS_KILL: {
        need(5, 'COM_PROCESS_KILL');
        const id = p.readUInt32LE(1);
        return this.kill(m, `KILL CONNECTION ${id}`, 'CONNECTION', id);
      }
      case COM.CHANGE_USER:
        this.reply(m, ER.SPECIFIC_ACCESS_DENIED, 'jit-broker: COM_CHANGE_USER is not supported: open a new connection with the token of the other identity');
        return null;
      default:
        this.reply(m, ER.UNKNOWN_COM, `jit-broker: ${commandName(p[0]!)} is not relayed by the broker`);
        return null;
    }
  }

  private forward(m: Message, p: Pending): null {
    this.expect(p);
    this.toUpstream(m.raw);
    return null;
  }

  /**
   * KILL of a broker connection id: handled by the broker, never forwarded (the id means nothing upstream).
   * Allowed for connections of the same build (index.ts decides); recorded either way.
   */
  private kill(m: Message, sql: string, scope: 'QUERY' | 'CONNECTION', id: number): Promise<void> {
    const plan = this.opts.kill(scope, id);
    const decision = plan.allowed
      ? engineDecision('allow', 'KILL of a connection of the same build', ['admin'], KILL_RULE)
      : engineDecision('deny', plan.message, ['admin'], KILL_RULE);
    return this.session.admit({ sql, protocol: 'simple' }, decision).then(async (a) => {
      if (!a.ok) return this.refuse(m, a, plan.allowed ? ER.SPECIFIC_ACCESS_DENIED : ER.NO_SUCH_THREAD);
      if (!plan.allowed) return;
      const started = performance.now();
      if (plan.self && scope === 'CONNECTION') {
        this.toClient(errPacket(m.lastSeq + 1, ER.CONNECTION_KILLED, 'Connection was killed'));
        this.end('killed by its own KILL CONNECTION');
        return;
      }
      let error: string | null = null;
      try {
        await plan.run();
      } catch (e) {
        error = (e as Error).message;
      }
      if (a.statementId !== null) this.session.complete(a.statementId, { durationMs: performance.now() - started, tag: error ? null : 'OK', rows: 0, error });
      if (error) this.reply(m, ER.UNKNOWN_ERROR, `jit-broker: KILL could not be relayed: ${error}`);
      else this.expect({ kind: 'reply', bytes: packet(m.lastSeq + 1, okPayload({ status: this.status })) });
    });
  }

  private finish(o: Outcome): void {
    if (o.record === null) return;
    const rows = o.resultSets > 0 ? o.rows : o.affected;
    const sample = o.sample?.done() ?? null;
    this.session.complete(
      o.record,
      { durationMs: performance.now() - o.started, tag: o.parts.length ? o.parts.join('; ') : null, rows, error: o.error },
      sample,
    );
    if (this.session.mysql?.wantsSettings) this.probe();
  }

  /**
   * Ask the server for the session's sql_mode and character set (at connect, after COM_RESET_CONNECTION, and after
   * a statement set one to a value the broker could not compute); the client's next commands wait for the answer.
   */
  private probe(): void {
    const state = this.session.mysql;
    if (!state || this.ended) return;
    state.asking();
    const done = (row: (string | null)[] | null) => state.settings(row && row.length === 2 ? { sqlMode: row[0]!, charset: row[1]! } : null);
    this.expect({ kind: 'probe', row: null, done });
    this.toUpstream(command(COM.QUERY, SETTINGS_QUERY));
  }
}
