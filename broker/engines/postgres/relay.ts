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
// Bind asked for) is kept, and a Describe is added before an Execute whose result was never described —
// or whose description may no longer be its portal's, another statement having run since (Portal.seen).
//
// Names the client did not make with Parse and Bind (security issue 10). SQL makes prepared statements
// (PREPARE, also of a name a Parse used once SQL deallocated it) and portals (DECLARE, a function opening a
// refcursor) that protocol messages can then use. Nothing runs unattributed:
//   - a Bind of a statement name the relay does not hold from a Parse is judged as what it amounts to, the SQL
//     `EXECUTE name` — by what the session saw prepared under that name (session-postgres.ts), against the
//     current policy, `unknown` if it saw nothing — held and recorded as that at each Execute, its rows masked
//     by the portal's own description (the relay Describes it); refused there, the server gets a poison Parse
//     under the broker's own name in place of the Bind (the client's unnamed statement stays);
//   - an Execute or Describe of a portal the relay did not bind is refused (42501): what it runs cannot be
//     attributed — a cursor's query was decided at its DECLARE (or the call that opened it), and FETCH, which is
//     recorded and masked, reads it. Portals Bind made are dropped at the end of their transaction, so a cursor
//     later declared under such a name is one the relay did not bind;
//   - a Describe of such a statement, and a Close of any name, go upstream as they are: they run nothing.
import type net from 'node:net';
import { serialize } from 'pg-protocol';
import type { SessionPort } from '../engine.js';
import { rewriteCopyData, rewriteDataRow } from './datarow.js';
import { Framer, type Frame } from './framing.js';
import type { PgMasking } from './masking.js';
import { BodyReader, errorResponse, readErrorFields } from './messages.js';
import { InFlight, type Pending, type Refusal, type Statement } from './inflight.js';
import { ResultMasking, NOTHING, type ActiveResult, type Portal, type Prepared } from './results.js';
import { bindResultFormats, NO_COLUMNS, parseRowDescription, type RowDescription } from './row-description.js';
import { UpstreamProbe, type ProbeAnswer, type ProbeStep } from './probe.js';
import { PgResultTap } from './sample.js';
import { UpstreamScanner, type ScanTarget } from './scanner.js';
import { InOrder } from '../in-order.js';
import { Wire } from '../writer.js';

const POISON = 'JITBROKER_REFUSED_';
/**
 * The statement name of the poison sent in place of a refused Bind, Execute or Describe: it fails to parse, and a
 * failed Parse of a named statement changes nothing on the server, whatever the client holds under any name.
 */
const POISON_NAME = 'jitbroker_refused';
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
  /** The broker's own queries running upstream (probe.ts): their answers are read there, not relayed. */
  private probe: UpstreamProbe | null = null;
  private up: UpstreamScanner;
  /** What goes to the client and upstream: one write per turn each way (writer.ts). */
  private readonly wire: Wire;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    private readonly session: SessionPort,
    opts: RelayOptions,
    private readonly onEnd: (reason: string, error?: Error) => void,
  ) {
    this.framer = new Framer(opts.maxMessageBytes);
    this.wire = new Wire(client, upstream);
    this.order = new InOrder<Frame>({
      client,
      upstream,
      wire: this.wire,
      next: () => this.framer.next(),
      ended: () => this.ended,
      buffered: () => this.framer.buffered,
      handle: (f) => this.handle(f),
      fail: (e) => this.fail(e),
    });
    this.results = new ResultMasking(opts.masking ?? null);
    this.sample = new PgResultTap(() => session.recorder());
    this.tapRows = this.sample.enabled;
    this.up = new UpstreamScanner(this);
  }

  /** Whether the upstream is still working on something the client sent. */
  get inFlight(): boolean {
    return this.flight.length > 0;
  }

  /**
   * Runs the broker's own steps on the upstream (probe.ts) when nothing of the client's is in flight (a statement
   * held for approval waits unforwarded); null when something is, or another probe runs, or the relay ended.
   */
  run(steps: readonly ProbeStep[]): Promise<ProbeAnswer[] | null> | null {
    if (this.ended || this.probe || this.flight.length > 0) return null;
    this.probe = new UpstreamProbe(steps);
    this.toUpstream(this.probe.bytes);
    return this.probe.done;
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
      this.wire.client.hold();
      try {
        this.up.scan(chunk);
      } catch (e) {
        this.fail(e as Error); // a malformed message, or rows that cannot be masked: never pass them on
      }
      this.wire.client.release();
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

  /** Write to the client (at the end of the turn), pausing the upstream while the client's buffer is full. */
  toClient(buf: Buffer): void {
    if (!this.ended) this.wire.client.push(buf);
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
    if (!this.ended) this.wire.upstream.push(buf);
  }

  fail(e: Error): void {
    if (this.ended) return;
    this.toClient(errorResponse({ severity: 'FATAL', code: '08P01', message: `jit-broker: protocol violation: ${e.message}` }));
    this.end('protocol error', e);
  }

  /** What is pending goes out first (an error after the bytes before it), then the connection ends. */
  end(reason: string, error?: Error): void {
    this.probe?.cancel();
    if (this.ended) return;
    this.wire.flush();
    this.ended = true;
    this.onEnd(reason, error);
  }

  /** The connection is closing: relay nothing more either way (without calling onEnd back). */
  stop(): void {
    this.probe?.cancel();
    if (!this.ended) this.wire.flush();
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
        return this.session.admit({ sql, protocol: 'simple', confine: this.results.confine(sql) }).then((a) => {
          if (a.ok) {
            this.results.admitted(a.decision);
            this.flight.forget(this.session.preparedNames(a.decision));
            const exempt = this.results.exempt(a.decision);
            this.send({ kind: 'query', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null, exempt, result: null }, f.raw);
          } else {
            const refusal = this.refusal(a.message, a.reason);
            this.send(
              { kind: 'query', record: null, started: 0, rows: 0, tags: [], error: null, exempt: true, result: null, refusal },
              serialize.query(refusal.tag),
            );
          }
        });
      }
      case 'P': {
        const r = new BodyReader(f.body);
        const name = r.cstring();
        const sql = r.cstring();
        return this.session.admit({ sql, protocol: 'parse', name, confine: this.results.confine(sql) }).then((a) => {
          if (a.ok) {
            const stmt: Prepared = { sql, decision: a.decision, exempt: this.results.exempt(a.decision), described: false, result: null, group: 0 };
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
        return wait ? wait.then(() => this.bind(f, portal, name) ?? undefined) : this.bind(f, portal, name);
      }
      case 'E': {
        const name = new BodyReader(f.body).cstring();
        const wait = this.flight.waitForPortal(name);
        return wait ? wait.then(() => this.execute(f, name) ?? undefined) : this.execute(f, name);
      }
      case 'D': {
        const r = new BodyReader(f.body);
        const which = r.byte();
        const name = r.cstring();
        if (which === 'S') {
          // A statement SQL prepared describes itself upstream as it is (of: null, nothing kept of it).
          this.send({ kind: 'describe', of: this.flight.statements.get(name) ?? null, swallow: false, marked: false }, f.raw);
          return null;
        }
        const wait = this.flight.waitForPortal(name);
        return wait ? wait.then(() => void this.describePortal(f, name)) : this.describePortal(f, name);
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

  /**
   * Bind a portal to a statement. Of one the relay holds from a Parse: as decided at that Parse. Of the unnamed one
   * it does not hold: the server refuses it too (only Parse makes it). Of another name: see bindUnparsed() — unless
   * the server will skip the Bind anyway (after a refusal in its Sync group: the Bind of a name whose Parse was refused).
   */
  private bind(f: Frame, portal: string, name: string): Promise<void> | null {
    const stmt = this.flight.statements.get(name);
    if (!stmt && name !== '' && !this.flight.doomed()) return this.bindUnparsed(f, portal, name);
    this.send({ kind: 'bind', name: portal, portal: stmt ? this.portal(stmt, f) : null }, f.raw);
    return null;
  }

  private portal(prepared: Prepared, f: Frame): Portal {
    return { prepared, formats: bindResultFormats(f.body), described: false, result: null, seen: 0, bound: 0 };
  }

  /**
   * A Bind of a statement the relay did not see parsed: made with SQL PREPARE (or a Parse's name SQL deallocated and
   * prepared again, or prepared where the broker could not follow). It is what `EXECUTE name` would run, and judged
   * so: decided now as a Parse of that text is (a review is held at each Execute), decided again at each Execute
   * against what the session holds under the name then, and recorded there as `EXECUTE "name"`; never described
   * here, so its rows are read by the relay's own Describe of the portal. Refused: a poison Parse under the broker's
   * name goes in place of the Bind, so the server fails right there and skips to Sync.
   */
  private bindUnparsed(f: Frame, portal: string, name: string): Promise<void> {
    const sql = `EXECUTE ${quoteIdent(name)}`;
    return this.session.admit({ sql, protocol: 'parse', confine: this.results.confine(sql) }).then((a) => {
      if (a.ok) {
        const prepared: Prepared = { sql, decision: a.decision, exempt: this.results.exempt(a.decision), described: false, result: null, group: 0 };
        this.send({ kind: 'bind', name: portal, portal: this.portal(prepared, f) }, f.raw);
      } else this.poison(this.refusal(a.message, a.reason));
    });
  }

  /** Execute a portal: its statement is admitted (decided, held, recorded) at each execution. */
  private execute(f: Frame, name: string): Promise<void> | null {
    const portal = this.flight.portals.get(name);
    if (!portal) {
      this.unbound('Execute', name);
      return null;
    }
    const prepared = portal.prepared;
    return this.session.admit({ sql: prepared.sql, protocol: 'execute' }, prepared.decision).then((a) => {
      if (a.ok) {
        this.results.admitted(a.decision);
        this.flight.forget(this.session.preparedNames(a.decision));
        // Rows cannot be read without their description: ask for it where the client did not, or where it may be stale.
        const fresh = this.flight.fresh(portal);
        if (this.results.needsDescribe(portal, this.tapRows, fresh)) {
          this.send({ kind: 'describe', of: portal, swallow: true, marked: false, refresh: fresh }, serialize.describe({ type: 'P', name }));
        }
        this.send(
          { kind: 'execute', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null, exempt: prepared.exempt, portal, result: null },
          f.raw,
        );
      } else {
        // Not recorded ⇒ not run: make the server fail here, as a refused Parse would.
        this.poison(this.refusal(a.message, a.reason));
      }
    });
  }

  /**
   * An Execute or Describe of a portal the relay did not bind (or bound, in a transaction that has ended): a cursor
   * DECLAREd or opened by a function, or none. What it runs cannot be attributed, so it is refused, and the client is
   * told to FETCH, which is decided, recorded and masked. Nothing runs, so nothing is recorded: such a message often
   * just follows a Bind the server fails (node-postgres sends Bind, Describe, Execute), and is skipped with it.
   */
  private unbound(message: 'Execute' | 'Describe', name: string): void {
    const why = `${message} of portal ${quoteIdent(name)}, which the broker did not bind (a cursor made by DECLARE or opened by a function, or a portal gone with its transaction): the broker cannot tell what it runs, so it refuses it; FETCH from a cursor instead, which the broker records and masks`;
    this.poison(this.refusal(`jit-broker: ${why}`, 'policy'));
  }

  /** A Describe of a portal (one the relay did not bind is refused, as its Execute is). */
  private describePortal(f: Frame, name: string): null {
    const of = this.flight.portals.get(name);
    if (of) this.send({ kind: 'describe', of, swallow: false, marked: false }, f.raw);
    else this.unbound('Describe', name);
    return null;
  }

  /** Send the server a poison Parse under the broker's own name in place of a refused message: it fails there. */
  private poison(refusal: Refusal): void {
    this.send({ kind: 'parse', name: POISON_NAME, stmt: undefined, group: 0, refusal }, serialize.parse({ name: POISON_NAME, text: refusal.tag }));
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
    if (this.probe) return this.probe.wants(type);
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
    if (this.probe) {
      if (this.probe.take(type, msg)) this.probe = null;
      return NOTHING;
    }
    const body = type === 'D' ? msg : msg.subarray(5);
    switch (type) {
      case 'D': {
        const r = this.active()!;
        const out = r.plan ? rewriteDataRow(r.plan, msg) : null;
        // The sample: the row as sent to the client (after masking), read with its result set's description (the
        // formats in effect), decoded by the tap (sample.ts) into the recorder of the statement at the head.
        if (this.tapRows) this.sample.row(out ?? msg, r.desc);
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
      // The relay's own Describe also refreshes the statement's (stale) description for its next portals — not when
      // it was sent because other statements ran since the portal's Bind: what answers may not be the statement's.
      if (of && head.refresh && 'prepared' in of) of.prepared.result = d;
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
      case 'Z': {
        this.txStatus = String.fromCharCode(body[0] ?? 73);
        this.results.ready(this.txStatus);
        this.session.ready(this.txStatus);
        const answered = this.flight.ready(this.txStatus);
        if (answered?.kind === 'query') this.finish(answered);
        return null;
      }
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

/** A name as a quoted SQL identifier. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
