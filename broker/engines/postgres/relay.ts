// The relay between an authenticated client and its upstream: every SQL-bearing message goes through
// the session (decide + record) before it is forwarded; responses are tracked to record outcomes.
//
// A refused statement is replaced upstream by a "poison" statement that fails to parse. The real server
// then errors at exactly the right point of the pipeline, discards until Sync, aborts an open transaction
// block and reports its true transaction status — so client and server always agree. The relay rewrites
// that one ErrorResponse into the broker's refusal.
import type net from 'node:net';
import { serialize } from 'pg-protocol';
import type { BrokerSession } from '../../session.js';
import type { Decision } from '../../types.js';
import { Framer, type Frame } from './framing.js';
import { BodyReader, errorResponse, readErrorFields } from './messages.js';

const POISON = 'JITBROKER_REFUSED_';
/**
 * While a statement waits for a slow answer (held for review), the client is still read, so that a
 * client hanging up is noticed (its session then cancels the request), up to this many bytes buffered.
 */
const HOLD_BACKLOG = 1024 * 1024;

interface Denial {
  message: string;
  code: string;
}

type Pending =
  | { kind: 'query' | 'execute'; record: number | null; started: number; rows: number; tags: string[]; error: string | null }
  | { kind: 'parse' | 'bind' | 'describe' | 'close' | 'sync' };

interface Prepared {
  sql: string;
  decision: Decision;
}

export interface RelayOptions {
  maxMessageBytes: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class Relay {
  private readonly framer: Framer;
  private readonly pending: Pending[] = [];
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Prepared>();
  private readonly denials = new Map<string, Denial>();
  private denialSeq = 0;
  private busy = false;
  private ended = false;
  /** A statement is waiting for a slow answer: see HOLD_BACKLOG. */
  private holding = false;
  /** Transaction status from the last ReadyForQuery: I (idle), T (in a block), E (failed block). */
  txStatus = 'I';
  private up: UpstreamScanner;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    private readonly session: BrokerSession,
    private readonly opts: RelayOptions,
    private readonly onEnd: (reason: string, error?: Error) => void,
  ) {
    this.framer = new Framer(opts.maxMessageBytes);
    this.up = new UpstreamScanner(this);
  }

  /** Whether the upstream is still working on something the client sent. */
  get inFlight(): boolean {
    return this.pending.length > 0;
  }

  start(initial?: Buffer): void {
    this.client.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch (e) {
        return this.fail(e as Error);
      }
      if (this.holding && this.framer.buffered > HOLD_BACKLOG) this.client.pause();
      void this.pump();
    });
    this.upstream.on('data', (chunk: Buffer) => this.up.scan(chunk));
    // Backpressure both ways: a slow reader pauses the other side instead of buffering without bound.
    this.client.on('drain', () => this.upstream.resume());
    this.upstream.on('drain', () => this.client.resume());
    this.upstream.resume();
    this.client.resume();
    if (initial?.length) {
      this.framer.push(initial);
      void this.pump();
    }
  }

  /** Write to the client, pausing the upstream while the client's buffer is full. */
  toClient(buf: Buffer): void {
    if (this.ended) return;
    if (!this.client.write(buf)) this.upstream.pause();
  }

  /** Nothing reaches the upstream once the relay ended (a held statement answered after its client left). */
  private toUpstream(buf: Buffer): void {
    if (this.ended) return;
    if (!this.upstream.write(buf)) this.client.pause();
  }

  private fail(e: Error): void {
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

  /** Handle client messages strictly in order; a statement awaiting its decision holds the ones after it. */
  private async pump(): Promise<void> {
    if (this.busy || this.ended) return;
    this.busy = true;
    this.client.cork();
    this.upstream.cork();
    try {
      for (let f = this.framer.next(); f && !this.ended; f = this.framer.next()) {
        const wait = this.handle(f);
        if (wait) {
          // Usually the audit write commits within this turn of the event loop: keep batching. Only a
          // slow answer (a statement held for review) flushes what came before; reading goes on (to
          // notice a hang-up) only until HOLD_BACKLOG bytes wait behind the held statement.
          let slow = false;
          const timer = setImmediate(() => {
            slow = true;
            this.holding = true;
            this.upstream.uncork();
            if (this.framer.buffered > HOLD_BACKLOG) this.client.pause();
          });
          await wait;
          clearImmediate(timer);
          if (slow) {
            this.holding = false;
            if (!this.upstream.writableNeedDrain) this.client.resume();
            this.upstream.cork();
          }
        }
      }
    } catch (e) {
      this.fail(e as Error);
    } finally {
      this.busy = false;
      this.upstream.uncork();
      this.client.uncork();
    }
  }

  /** Returns a promise only when the message must wait (for its audit record or decision). */
  private handle(f: Frame): Promise<void> | null {
    switch (f.type) {
      case 'Q': {
        const sql = new BodyReader(f.body).cstring();
        return this.session.admit({ sql, protocol: 'simple' }).then((a) => {
          if (a.ok) {
            this.pending.push({ kind: 'query', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null });
            this.toUpstream(f.raw);
          } else {
            this.pending.push({ kind: 'query', record: null, started: 0, rows: 0, tags: [], error: null });
            this.toUpstream(serialize.query(this.poison(a.message, a.reason)));
          }
        });
      }
      case 'P': {
        const r = new BodyReader(f.body);
        const name = r.cstring();
        const sql = r.cstring();
        return this.session.admit({ sql, protocol: 'parse' }).then((a) => {
          this.pending.push({ kind: 'parse' });
          if (a.ok) {
            this.statements.set(name, { sql, decision: a.decision });
            this.toUpstream(f.raw);
          } else {
            this.statements.delete(name);
            this.toUpstream(serialize.parse({ name, text: this.poison(a.message, a.reason) }));
          }
        });
      }
      case 'B': {
        const r = new BodyReader(f.body);
        const portal = r.cstring();
        const stmt = this.statements.get(r.cstring());
        if (stmt) this.portals.set(portal, stmt);
        else this.portals.delete(portal); // the server will refuse the Bind itself
        this.pending.push({ kind: 'bind' });
        this.toUpstream(f.raw);
        return null;
      }
      case 'E': {
        const prepared = this.portals.get(new BodyReader(f.body).cstring());
        if (!prepared) {
          // No admitted statement behind this portal: the server refuses it, or is skipping to Sync.
          this.pending.push({ kind: 'execute', record: null, started: performance.now(), rows: 0, tags: [], error: null });
          this.toUpstream(f.raw);
          return null;
        }
        return this.session.admit({ sql: prepared.sql, protocol: 'execute' }, prepared.decision).then((a) => {
          if (a.ok) {
            this.pending.push({ kind: 'execute', record: a.statementId, started: performance.now(), rows: 0, tags: [], error: null });
            this.toUpstream(f.raw);
          } else {
            // Not recorded ⇒ not run: make the server fail here, as a refused Parse would.
            this.pending.push({ kind: 'parse' });
            this.toUpstream(serialize.parse({ name: '', text: this.poison(a.message, a.reason) }));
          }
        });
      }
      case 'D':
        this.pending.push({ kind: 'describe' });
        this.toUpstream(f.raw);
        return null;
      case 'C': {
        const r = new BodyReader(f.body);
        const which = r.byte();
        const name = r.cstring();
        (which === 'S' ? this.statements : this.portals).delete(name);
        this.pending.push({ kind: 'close' });
        this.toUpstream(f.raw);
        return null;
      }
      case 'S':
        this.pending.push({ kind: 'sync' });
        this.toUpstream(f.raw);
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

  /** A statement text that fails to parse upstream, tagged so its error can be recognised and rewritten. */
  private poison(message: string, reason: 'policy' | 'audit'): string {
    const tag = `${POISON}${++this.denialSeq}`;
    this.denials.set(tag, { message, code: reason === 'audit' ? '58030' : '42501' });
    return tag;
  }

  // ---- upstream side, called by the scanner with whole small messages or counts ----

  onRow(): void {
    const head = this.pending[0];
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.rows++;
  }

  /** Returns the bytes to send the client instead, for a rewritten ErrorResponse. */
  onMessage(type: string, body: Buffer): Buffer | null {
    const head = this.pending[0];
    switch (type) {
      case '1':
      case '2':
      case '3':
        this.pending.shift();
        return null;
      case 'T':
      case 'n':
        if (head?.kind === 'describe') this.pending.shift();
        return null;
      case 'C':
      case 'I':
      case 's':
        if (head && (head.kind === 'query' || head.kind === 'execute')) {
          if (type === 'C') head.tags.push(body.toString('utf8', 0, Math.max(0, body.length - 1)));
          if (head.kind === 'execute') this.finish(this.pending.shift() as typeof head);
        }
        return null;
      case 'E':
        return this.onError(body);
      case 'Z':
        this.txStatus = String.fromCharCode(body[0] ?? 73);
        if (head && (head.kind === 'query' || head.kind === 'sync')) {
          this.pending.shift();
          if (head.kind === 'query') this.finish(head);
        }
        this.denials.clear();
        return null;
      default:
        return null;
    }
  }

  private onError(body: Buffer): Buffer | null {
    const fields = readErrorFields(body);
    const text = fields.get('M') ?? 'error';
    const tag = text.includes(POISON) ? /JITBROKER_REFUSED_\d+/.exec(text)?.[0] : undefined;
    const denial = tag ? this.denials.get(tag) : undefined;
    const head = this.pending[0];
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.error = denial ? denial.message : text;
    if (head && head.kind !== 'query') {
      // Extended protocol: the server now skips everything up to Sync.
      if (head.kind === 'execute') this.finish(head);
      while (this.pending.length && this.pending[0]!.kind !== 'sync') {
        const p = this.pending.shift()!;
        if (p !== head && (p.kind === 'execute') && p.record !== null) this.finish({ ...p, error: 'skipped after an earlier error' });
      }
    }
    if (!denial) return null;
    return errorResponse({
      severity: 'ERROR',
      code: denial.code,
      message: denial.message,
      hint: denial.code === '42501' ? 'ask for the access you need, or change the broker policy (jit policy check)' : undefined,
    });
  }

  private finish(p: { record: number | null; started: number; rows: number; tags: string[]; error: string | null }): void {
    if (p.record === null) return;
    const tag = p.tags.length ? p.tags.join('; ') : null;
    let rows: number | null = p.rows;
    const last = p.tags[p.tags.length - 1];
    const affected = last ? /^(?:INSERT \d+|UPDATE|DELETE|MERGE|COPY|MOVE|FETCH|SELECT) (\d+)$/.exec(last) : null;
    if (affected && !last!.startsWith('SELECT') && !last!.startsWith('FETCH')) rows = p.tags.reduce((n, t) => n + Number(/ (\d+)$/.exec(t)?.[1] ?? 0), 0);
    this.session.complete(p.record, { durationMs: performance.now() - p.started, tag, rows, error: p.error });
  }
}

/**
 * Finds message boundaries in the upstream's byte stream without copying rows: untouched bytes are
 * forwarded as they came; only small control messages are looked into, and ErrorResponses held whole.
 */
const INSPECT = new Set(['E', 'C', 'Z', 'T', 'n', '1', '2', '3', 'I', 's']);

class UpstreamScanner {
  private readonly header = Buffer.alloc(5);
  private headerLen = 0;
  private inBody = false;
  private type = '';
  private remaining = 0;
  private body: Buffer[] | null = null;

  constructor(private readonly relay: Relay) {}

  scan(chunk: Buffer): void {
    const out: Buffer[] = [];
    let runStart = 0; // start of the run of bytes forwarded untouched; -1 while an error is held
    const flushRun = (end: number) => {
      if (runStart >= 0 && end > runStart) out.push(chunk.subarray(runStart, end));
    };
    let i = 0;
    while (i < chunk.length) {
      if (!this.inBody) {
        const headerStart = i;
        const take = Math.min(5 - this.headerLen, chunk.length - i);
        chunk.copy(this.header, this.headerLen, i, i + take);
        this.headerLen += take;
        i += take;
        if (this.headerLen < 5) {
          // A header split across reads: hold its first bytes until its type is known.
          flushRun(headerStart);
          runStart = chunk.length;
          break;
        }
        const split = take < 5;
        this.type = String.fromCharCode(this.header[0]!);
        this.remaining = this.header.readInt32BE(1) - 4;
        this.inBody = true;
        this.body = INSPECT.has(this.type) ? [] : null;
        if (this.type === 'D') this.relay.onRow();
        if (this.type === 'E') {
          flushRun(headerStart);
          runStart = -1;
        } else if (split) {
          flushRun(headerStart);
          out.push(Buffer.from(this.header));
          runStart = i;
        }
      }
      const take = Math.min(this.remaining, chunk.length - i);
      if (this.body && take > 0) this.body.push(chunk.subarray(i, i + take));
      i += take;
      this.remaining -= take;
      if (this.remaining === 0) {
        this.inBody = false;
        this.headerLen = 0;
        if (this.body) {
          const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body);
          this.body = null;
          const replaced = this.relay.onMessage(this.type, body);
          if (this.type === 'E') {
            out.push(replaced ?? Buffer.concat([this.header, body]));
            runStart = i;
          }
        }
      }
    }
    flushRun(chunk.length);
    for (const b of out) this.relay.toClient(b);
  }
}
