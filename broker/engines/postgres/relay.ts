// The relay between an authenticated client and its upstream: every SQL-bearing message goes through
// the session (decide + record) before it is forwarded; responses are tracked to record outcomes.
//
// A refused statement is replaced upstream by a "poison" statement that fails to parse. The real server
// then errors at exactly the right point of the pipeline, discards until Sync, aborts an open transaction
// block and reports its true transaction status — so client and server always agree. The relay rewrites
// that one ErrorResponse into the broker's refusal: the refusal rides on the pending entry of the message it
// replaced, so it is the error that answers that very message, however many answers (ReadyForQuery of
// earlier queries and Syncs, other refusals) are still in flight before it. What is in flight, and what the
// server skips after an error, is kept by InFlight (inflight.ts).
//
// Masking (masking.ts) works on the upstream side: each RowDescription is resolved to column origins
// (waiting for the catalog when it must), and the DataRows of a result set with something to mask are
// rewritten (datarow.ts); all other rows are forwarded as they came. Extended protocol: Execute sends
// no RowDescription, so each statement's and portal's description (from Describe, with the formats
// Bind asked for) is kept, and a Describe is added before an Execute whose result was never described.
import { PgResultTap } from '../../audit/pg-sample.js';
import type net from 'node:net';
import { serialize } from 'pg-protocol';
import type { BrokerSession } from '../../session.js';
import { rewriteCopyData, rewriteDataRow } from './datarow.js';
import { Framer, type Frame } from './framing.js';
import type { PgMasking } from './masking.js';
import { BodyReader, errorResponse, readErrorFields } from './messages.js';
import { InFlight, type Pending, type Refusal, type Statement } from './inflight.js';
import { ResultMasking, NOTHING, type ActiveResult, type Prepared } from './results.js';
import { bindResultFormats, NO_COLUMNS, parseRowDescription, type RowDescription } from './row-description.js';
import { UpstreamScanner, type ScanTarget } from './scanner.js';
import { InOrder } from '../in-order.js';

const POISON = 'JITBROKER_REFUSED_';
/** A Sync's entry (it carries nothing). */
const SYNC: Pending = { kind: 'sync' };

export interface RelayOptions {
  maxMessageBytes: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Masking for this session; null when no masking rule applies to it (rows then pass untouched). */
  masking?: PgMasking | null;
}

/** Upstream messages the relay looks into (DataRows and CopyData only when wants() says so). */
const INSPECT = new Set(['E', 'C', 'Z', 'T', 'n', '1', '2', '3', 'I', 's', 'H', 'c']);

export class Relay implements ScanTarget {
  private readonly framer: Framer;
  /** Answers the server owes, and the client's statements and portals as the server has them. */
  private readonly flight = new InFlight((s) => this.finish({ ...s, error: 'skipped after an earlier error' }));
  private readonly results: ResultMasking;
  /** Result samples (what the client saw, after masking): onResultRow() gets rows only while true. */
  private tapRows = false;
  private readonly sample: PgResultTap;
  /** Numbers the poison statements of this connection. */
  private refused = 0;
  private ended = false;
  /** Client messages, strictly in order (holds behind a statement awaiting its decision). */
  private readonly order: InOrder<Frame>;
  /** Transaction status from the last ReadyForQuery: I (idle), T (in a block), E (failed block). */
  txStatus = 'I';
  private up: UpstreamScanner;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    private readonly session: BrokerSession,
    opts: RelayOptions,
    private readonly onEnd: (reason: string, error?: Error) => void,
  ) {
    this.framer = new Framer(opts.maxMessageBytes);
    this.order = new InOrder<Frame>({
      client,
      upstream,
      next: () => this.framer.next(),
      ended: () => this.ended,
      buffered: () => this.framer.buffered,
      handle: (f) => this.handle(f),
      fail: (e) => this.fail(e),
      // What answers earlier messages reaches the client while a later one waits (a Bind may wait for those answers).
      flushClientWhileHolding: true,
    });
    this.results = new ResultMasking(opts.masking ?? null);
    this.sample = new PgResultTap(session.sampling);
    this.tapRows = this.sample.enabled;
    this.up = new UpstreamScanner(this);
  }

  /**
   * SEAM for the result-sample recorder: each DataRow exactly as sent to the client — after masking — as the
   * whole message ('D', length, body), with the RowDescription of its result set (formats in effect: a
   * Bind's result formats applied to a described statement). Rows belong to the statement at the head of
   * the in-flight queue. Called only while `tapRows` is true.
   */
  private onResultRow(desc: RowDescription, row: Buffer): void {
    this.sample.row(row, desc);
  }

  /** Whether the upstream is still working on something the client sent. */
  get inFlight(): boolean {
    return this.flight.length > 0;
  }

  start(initial?: Buffer): void {
    this.client.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch (e) {
        return this.fail(e as Error);
      }
      this.order.received();
    });
    this.upstream.on('data', (chunk: Buffer) => {
      // One write for what one read turns into (runs and rewritten rows), not one per piece.
      this.client.cork();
      try {
        this.up.scan(chunk);
      } catch (e) {
        this.fail(e as Error); // a malformed message, or rows that cannot be masked: never pass them on
      }
      this.client.uncork();
    });
    // Backpressure both ways: a slow reader pauses the other side instead of buffering without bound.
    this.client.on('drain', () => this.resumeUpstream());
    this.upstream.on('drain', () => this.client.resume());
    this.upstream.resume();
    this.client.resume();
    if (initial?.length) {
      this.framer.push(initial);
      void this.order.pump();
    }
  }

  /** Write to the client, pausing the upstream while the client's buffer is full. */
  toClient(buf: Buffer): void {
    if (this.ended) return;
    if (!this.client.write(buf)) this.upstream.pause();
  }

  pauseUpstream(): void {
    this.upstream.pause();
  }

  /** Reading upstream goes on unless the scanner waits (a catalog lookup) or the client is still full. */
  resumeUpstream(): void {
    if (!this.up.suspended && !this.client.writableNeedDrain) this.upstream.resume();
  }

  /** Nothing reaches the upstream once the relay ended (a held statement answered after its client left). */
  private toUpstream(buf: Buffer): void {
    if (this.ended) return;
    if (!this.upstream.write(buf)) this.client.pause();
  }

  fail(e: Error): void {
    if (this.ended) return;
    this.client.write(errorResponse({ severity: 'FATAL', code: '08P01', message: `jit-broker: protocol violation: ${e.message}` }));
    this.end('protocol error', e);
  }

  end(reason: string, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(reason, error);
  }

  /** The connection is closing: relay nothing more either way (without calling onEnd back). */
  stop(): void {
    this.ended = true;
  }

  /** Expect the answer to a message, and send it upstream. */
  private send(p: Pending, buf: Buffer): void {
    this.flight.expect(p);
    this.toUpstream(buf);
  }

  /** Returns a promise only when the message must wait (for its audit record or decision, or an earlier Sync group). */
  private handle(f: Frame): Promise<void> | null {
    switch (f.type) {
      case 'Q': {
        const sql = new BodyReader(f.body).cstring();
        const exempt = this.results.exempt(sql);
        return this.session.admit({ sql, protocol: 'simple', confine: this.results.confine(sql, exempt) }).then((a) => {
          if (a.ok) {
            this.results.admitted(a.decision);
            this.send({ kind: 'query', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null, exempt, result: null }, f.raw);
          } else {
            const refusal = this.refusal(a.message, a.reason);
            this.send({ kind: 'query', record: null, started: 0, rows: 0, tags: [], error: null, exempt: true, result: null, refusal }, serialize.query(refusal.tag));
          }
        });
      }
      case 'P': {
        const r = new BodyReader(f.body);
        const name = r.cstring();
        const sql = r.cstring();
        const exempt = this.results.exempt(sql);
        return this.session.admit({ sql, protocol: 'parse', name, confine: this.results.confine(sql, exempt) }).then((a) => {
          if (a.ok) {
            const stmt: Prepared = { sql, decision: a.decision, exempt, described: false, result: null, group: 0 };
            this.send({ kind: 'parse', name, stmt, group: 0 }, f.raw);
          } else {
            const refusal = this.refusal(a.message, a.reason);
            // The poison fails: a statement the server had under that name stays; the unnamed one it drops first.
            this.send({ kind: 'parse', name, stmt: name === '' ? null : undefined, group: 0, refusal }, serialize.parse({ name, text: refusal.tag }));
          }
        });
      }
      case 'B': {
        const r = new BodyReader(f.body);
        const portal = r.cstring();
        const name = r.cstring();
        const wait = this.flight.waitFor(name);
        if (wait) return wait.then(() => this.bind(f, portal, name));
        this.bind(f, portal, name);
        return null;
      }
      case 'E': {
        const name = new BodyReader(f.body).cstring();
        const portal = this.flight.portals.get(name);
        if (!portal) {
          // No admitted statement behind this portal: the server refuses it, or is skipping to Sync.
          this.send({ kind: 'execute', record: null, started: performance.now(), rows: 0, tags: [], error: null, exempt: true, portal: null, result: null }, f.raw);
          return null;
        }
        const prepared = portal.prepared;
        return this.session.admit({ sql: prepared.sql, protocol: 'execute' }, prepared.decision).then((a) => {
          if (a.ok) {
            this.results.admitted(a.decision);
            // Rows cannot be read without their description: ask for it where the client did not.
            if (this.results.needsDescribe(portal, this.tapRows)) {
              this.send({ kind: 'describe', of: portal, swallow: true, marked: false }, serialize.describe({ type: 'P', name }));
            }
            this.send({ kind: 'execute', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null, exempt: prepared.exempt, portal, result: null }, f.raw);
          } else {
            // Not recorded ⇒ not run: make the server fail here, as a refused Parse would (dropping the unnamed statement).
            const refusal = this.refusal(a.message, a.reason);
            this.send({ kind: 'parse', name: '', stmt: null, group: 0, refusal }, serialize.parse({ name: '', text: refusal.tag }));
          }
        });
      }
      case 'D': {
        const r = new BodyReader(f.body);
        const of = (r.byte() === 'S' ? this.flight.statements : this.flight.portals).get(r.cstring()) ?? null;
        this.send({ kind: 'describe', of, swallow: false, marked: false }, f.raw);
        return null;
      }
      case 'C': {
        const r = new BodyReader(f.body);
        const which = r.byte() === 'S' ? 'S' : 'P';
        this.send({ kind: 'close', which, name: r.cstring(), group: 0 }, f.raw);
        return null;
      }
      case 'S':
        this.send(SYNC, f.raw);
        return null;
      case 'H': // Flush
      case 'd': // CopyData
      case 'c': // CopyDone
      case 'f': // CopyFail
        this.toUpstream(f.raw);
        return null;
      case 'X':
        this.end('client terminated');
        return null;
      default:
        throw new Error(`unexpected message type '${f.type}' (0x${f.type.charCodeAt(0).toString(16)})`);
    }
  }

  /** Bind a portal to a statement (the server will refuse a Bind of a statement it does not have). */
  private bind(f: Frame, portal: string, name: string): void {
    const stmt = this.flight.statements.get(name);
    this.send({ kind: 'bind', name: portal, portal: stmt ? { prepared: stmt, formats: bindResultFormats(f.body), described: false, result: null } : null }, f.raw);
  }

  /** A refusal, with the statement text sent upstream in its place: it fails to parse, naming its tag. */
  private refusal(message: string, reason: 'policy' | 'audit'): Refusal {
    return { tag: `${POISON}${++this.refused}`, message, code: reason === 'audit' ? '58030' : '42501' };
  }

  // ---- upstream side, called by the scanner ----

  /** The result set the next rows belong to (an Execute's is made from its portal at its first row). */
  private active(): ActiveResult | null {
    const head = this.flight.head();
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return null;
    if (head.kind === 'execute' && !head.result && head.portal) head.result = this.results.forExecute(head.portal, head.exempt);
    return head.result;
  }

  wants(type: string): boolean {
    if (type === 'D') {
      const head = this.flight.head();
      if (head && (head.kind === 'query' || head.kind === 'execute')) head.rows++;
      const r = this.active();
      // Once the sample is full, unmasked rows go back to being forwarded without a look.
      return r !== null && (r.plan !== null || (this.tapRows && this.sample.wants));
    }
    if (type === 'd') return this.active()?.copy != null;
    return INSPECT.has(type);
  }

  inspect(type: string, msg: Buffer): Buffer | null | Promise<Buffer | null> {
    const body = type === 'D' ? msg : msg.subarray(5);
    switch (type) {
      case 'D': {
        const r = this.active()!;
        const out = r.plan ? rewriteDataRow(r.plan, msg) : null;
        if (this.tapRows) this.onResultRow(r.desc, out ?? msg);
        return out;
      }
      case 'd':
        return rewriteCopyData(this.active()!.copy!, msg);
      case 'T':
        return this.onRowDescription(parseRowDescription(body));
      case 'H':
        return this.onCopyOut(body);
      default:
        return this.onMessage(type, body);
    }
  }

  /** A result's columns: kept for its statement or portal, or the start of a query's result set. */
  private onRowDescription(desc: RowDescription): Buffer | null | Promise<Buffer | null> {
    const head = this.flight.head();
    if (head?.kind === 'query') return this.results.describe(desc, head.exempt, (d) => ((head.result = this.results.start(d, head.exempt)), null));
    if (head?.kind !== 'describe') return null;
    this.flight.shift();
    const of = head.of;
    return this.results.describe(desc, !of || ('prepared' in of ? of.prepared : of).exempt, (d) => {
      if (of) of.result = d;
      // The relay's own Describe also refreshes the statement's (stale) description for its next portals.
      if (of && head.swallow && 'prepared' in of) of.prepared.result = d;
      return head.swallow ? NOTHING : null;
    });
  }

  /** COPY … TO STDOUT: rows through the detectors. Unmaskable output (refused at admission) fails closed. */
  private onCopyOut(body: Buffer): Buffer | null {
    const head = this.flight.head();
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return null;
    const r = this.results.copyOut(head.exempt, body[0] === 1);
    if (r === 'refuse') {
      this.fail(new Error('COPY output that cannot be masked'));
      return NOTHING;
    }
    head.result = r;
    return null;
  }

  /** Returns the bytes to send the client instead (a rewritten ErrorResponse, a swallowed NoData). */
  onMessage(type: string, body: Buffer): Buffer | null {
    const head = this.flight.head();
    switch (type) {
      case '1':
      case '2':
      case '3':
        this.flight.done();
        return null;
      case 'n':
        if (head?.kind !== 'describe') return null;
        this.flight.shift();
        if (head.of) head.of.result = { desc: NO_COLUMNS, resolved: [] };
        return head.swallow ? NOTHING : null;
      case 'c':
        if (head?.kind === 'query' || head?.kind === 'execute') head.result = null;
        return null;
      case 'C':
      case 'I':
      case 's':
        if (head && (head.kind === 'query' || head.kind === 'execute')) {
          if (type === 'C') head.tags.push(body.toString('utf8', 0, Math.max(0, body.length - 1)));
          head.result = null;
          if (head.kind === 'execute') {
            this.flight.shift();
            this.finish(head);
          }
        }
        return null;
      case 'E':
        if (head?.kind === 'query') head.result = null;
        return this.onError(body);
      case 'Z':
        this.txStatus = String.fromCharCode(body[0] ?? 73);
        this.results.ready(this.txStatus);
        this.session.ready(this.txStatus);
        const answered = this.flight.ready();
        if (answered?.kind === 'query') this.finish(answered);
        return null;
      default:
        return null;
    }
  }

  private onError(body: Buffer): Buffer | null {
    const text = readErrorFields(body).get('M') ?? 'error';
    const head = this.flight.head();
    // The answer to a poison statement: the error at its place in the stream, naming its tag (anything else
    // there, a server shutting down say, goes to the client as it is).
    const refusal = head && 'refusal' in head ? head.refusal : undefined;
    const denial = refusal && text.includes(refusal.tag) ? refusal : undefined;
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.error = denial ? denial.message : text;
    if (head?.kind === 'execute') this.finish(head);
    // Extended protocol: the server now skips everything up to Sync (a simple query's ReadyForQuery follows).
    this.flight.failed();
    if (!denial) return null;
    return errorResponse({
      severity: 'ERROR',
      code: denial.code,
      message: denial.message,
      hint: denial.code === '42501' ? 'ask for the access you need, or change the broker policy (jit policy check)' : undefined,
    });
  }

  private finish(p: Pick<Statement, 'record' | 'started' | 'rows' | 'tags' | 'error'>): void {
    const sample = this.sample.take(); // first: rows seen belong to this statement, recorded or not
    if (p.record === null) return;
    const tag = p.tags.length ? p.tags.join('; ') : null;
    let rows: number | null = p.rows;
    const last = p.tags[p.tags.length - 1];
    const affected = last ? /^(?:INSERT \d+|UPDATE|DELETE|MERGE|COPY|MOVE|FETCH|SELECT) (\d+)$/.exec(last) : null;
    if (affected && !last!.startsWith('SELECT') && !last!.startsWith('FETCH')) rows = p.tags.reduce((n, t) => n + Number(/ (\d+)$/.exec(t)?.[1] ?? 0), 0);
    this.session.complete(p.record, { durationMs: performance.now() - p.started, tag, rows, error: p.error }, sample);
  }
}
