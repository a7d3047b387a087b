// Follows the server's responses, command by command, to know where each ends (to record its outcome,
// to answer refused commands in order, to know whether anything is running) and where result rows are.
// Both legs run without CLIENT_DEPRECATE_EOF, so column definitions and rows end with EOF packets.
import type { Decision } from '../../types.js';
import { eofStatus, isEof, packet, packetCount, PacketReader, ProtocolError, readErr, readOk, STATUS } from './protocol.js';
import { parseColumnDefinition, type ResultSetHook, type RowRewriter } from './results.js';
import type { MysqlResultTap } from './sample.js';

export interface Prepared {
  sql: string;
  decision: Decision;
  /** Column definitions of its result (payloads), kept only when a result-set hook needs them for FETCH. */
  columns: Buffer[] | null;
}

export interface Outcome {
  record: number | null;
  started: number;
  /** Rows returned by result sets. */
  rows: number;
  /** Rows affected (OK packets). */
  affected: number;
  resultSets: number;
  /** One entry per result (`3 rows`, `OK, 1 affected`). */
  parts: string[];
  error: string | null;
  /** The sample of its rows as the client received them (a recorded statement's, while samples are kept). */
  sample: MysqlResultTap | null;
}

export const outcome = (record: number | null): Outcome => ({
  record,
  started: performance.now(),
  rows: 0,
  affected: 0,
  resultSets: 0,
  parts: [],
  error: null,
  sample: null,
});

export type Pending =
  /** COM_QUERY (text rows) or COM_STMT_EXECUTE (binary rows): OK, ERR, LOCAL INFILE request, or result sets. */
  | { kind: 'result'; format: 'text' | 'binary'; sql: string; decision: Decision | null; out: Outcome | null; stmt: Prepared | null }
  /** COM_STMT_FETCH: binary rows, then EOF. */
  | { kind: 'fetch'; stmt: Prepared | null }
  /** COM_STMT_PREPARE: ERR, or PREPARE_OK with parameter and column definitions. */
  | { kind: 'prepare'; stmt: Prepared }
  /** COM_FIELD_LIST: column definitions, then EOF. */
  | { kind: 'fields'; out: Outcome | null }
  /** One packet (COM_PING, COM_INIT_DB, COM_STMT_RESET, COM_SET_OPTION, COM_RESET_CONNECTION). */
  | { kind: 'one' }
  /** The broker's own answer, sent when every response before it is complete. */
  | { kind: 'reply'; bytes: Buffer }
  /** The broker's own query (text protocol, one row expected): its response is read here, never forwarded. */
  | { kind: 'probe'; row: (string | null)[] | null; done: (row: (string | null)[] | null) => void };

export interface ResponseHooks {
  finish(out: Outcome): void;
  /** A statement was prepared under this server id. */
  prepared(stmt: Prepared, id: number): void;
  /** The server asks the client for a LOCAL INFILE's contents: the client's next packets are file data. */
  infile(): void;
  /** Server status flags (autocommit, in transaction) from the latest OK or EOF. */
  status(flags: number): void;
  resultSet?: ResultSetHook | undefined;
  /** A sample for one recorded statement's rows (null: none are kept). */
  sample?: (() => MysqlResultTap | null) | undefined;
}

type Phase = 'first' | 'columns' | 'columnsEof' | 'rows' | 'params' | 'paramsEof' | 'fields';

/** What a packet of the broker's own query is replaced with: nothing. */
const SWALLOWED = Buffer.alloc(0);

/** Rows at least this long are streamed through without being looked into (when no rewriter wants them). */
export const STREAM_MIN = 16 * 1024;

export class Responses {
  private readonly queue: Pending[] = [];
  private phase: Phase = 'first';
  private left = 0;
  private columnsLeftAfterParams = 0;
  private columns: Buffer[] | null = null;
  private rowsInSet = 0;
  private rewriter: RowRewriter | null = null;
  /** The sample the rows of the current result set go to (after the rewriter). */
  private sample: MysqlResultTap | null = null;
  /** Packets added (or removed) by rewritten rows so far in this response: later sequence ids move by it. */
  private shift = 0;
  private after: Buffer[] | null = null;

  constructor(private readonly hooks: ResponseHooks) {}

  /** Whether the server still owes a response to something the client sent. */
  get inFlight(): boolean {
    return this.queue.some((p) => p.kind !== 'reply');
  }

  /** Queue what the server will answer next; `reply` entries are the broker's own answers. Returns bytes to send now, if any. */
  push(p: Pending): Buffer | null {
    if (p.kind === 'reply' && this.queue.length === 0) return p.bytes;
    this.queue.push(p);
    return null;
  }

  /** Bytes to send the client after the packet just handled (broker answers that were waiting for it). */
  takeAfter(): Buffer[] | null {
    const a = this.after;
    this.after = null;
    return a;
  }

  /** May a packet of this length be forwarded without looking into it? Only a long row nobody rewrites. */
  streamable(length: number): boolean {
    return (
      length >= STREAM_MIN &&
      this.phase === 'rows' &&
      !this.rewriter &&
      !this.sample?.wants &&
      this.shift === 0 &&
      this.queue.length > 0 &&
      this.queue[0]!.kind !== 'probe'
    );
  }

  /** A streamed packet started a new row. */
  streamedRow(): void {
    this.rowsInSet++;
  }

  /** One whole logical packet from the server; returns the bytes to send instead, or null to forward it as is. */
  packet(payload: Buffer, seq: number): Buffer | null {
    const head = this.queue[0];
    // Nothing asked: a server's goodbye (idle timeout, shutdown) — the client may as well read it.
    if (!head || head.kind === 'reply') return null;
    const shifted = () => (this.shift ? packet(seq + this.shift, payload) : null);
    const b0 = payload[0];
    switch (head.kind) {
      case 'one':
        if (b0 === 0x00 && payload.length >= 7) this.hooks.status(readOk(payload).status);
        this.done();
        return null;
      case 'fields':
        if (b0 === 0xff) {
          if (head.out) head.out.error = readErr(payload).message;
          this.done();
        } else if (isEof(payload)) {
          this.done();
        }
        return null;
      case 'prepare':
        return this.prepare(head, payload);
      case 'fetch':
        if (this.phase === 'first') this.startRows(head.stmt?.sql ?? '', head.stmt?.decision ?? null, 'binary', head.stmt?.columns ?? null, null);
        return this.rows(payload, seq, null, shifted);
      case 'result':
        return this.result(head, payload, seq, shifted);
      case 'probe':
        this.probe(head, payload);
        return SWALLOWED;
    }
  }

  /** The broker's own query: column count, definitions, EOF, rows (the first kept), EOF — or ERR. */
  private probe(head: Extract<Pending, { kind: 'probe' }>, payload: Buffer): void {
    const end = (row: (string | null)[] | null) => {
      this.done();
      head.done(row);
    };
    switch (this.phase) {
      case 'first':
        if (payload[0] === 0xff || payload[0] === 0x00) return end(null);
        this.left = new PacketReader(payload).lenenc('column count') ?? 0;
        this.phase = this.left > 0 ? 'columns' : 'columnsEof';
        return;
      case 'columns':
        if (--this.left === 0) this.phase = 'columnsEof';
        return;
      case 'columnsEof':
        this.phase = 'rows';
        return;
      case 'rows': {
        if (payload[0] === 0xff) return end(null);
        if (isEof(payload)) return end(head.row);
        if (head.row) return;
        const r = new PacketReader(payload);
        const row: (string | null)[] = [];
        while (r.remaining > 0) {
          const n = r.lenenc('value');
          row.push(n === null ? null : r.bytes(n, 'value').toString('utf8'));
        }
        head.row = row;
        return;
      }
      default:
        throw new ProtocolError(`unexpected server packet in phase ${this.phase}`);
    }
  }

  private result(head: Extract<Pending, { kind: 'result' }>, payload: Buffer, seq: number, shifted: () => Buffer | null): Buffer | null {
    const b0 = payload[0];
    switch (this.phase) {
      case 'first':
        if (b0 === 0x00) {
          const ok = readOk(payload);
          this.hooks.status(ok.status);
          if (head.out) {
            head.out.affected += ok.affectedRows;
            head.out.parts.push(`OK, ${ok.affectedRows} affected`);
          }
          const r = shifted(); // before done(), which ends the renumbering
          if (!(ok.status & STATUS.MORE_RESULTS_EXISTS)) this.done();
          return r;
        }
        if (b0 === 0xff) {
          if (head.out) head.out.error = readErr(payload).message;
          const r = shifted();
          this.done();
          return r;
        }
        if (b0 === 0xfb) {
          if (head.format !== 'text') throw new ProtocolError('the server asked for a LOCAL INFILE outside a query');
          this.hooks.infile();
          return null;
        }
        this.left = new PacketReader(payload).lenenc('column count') ?? 0;
        if (head.out && head.out.record !== null) head.out.sample ??= this.hooks.sample?.() ?? null;
        this.columns = this.hooks.resultSet || head.out?.sample ? [] : null;
        this.phase = this.left > 0 ? 'columns' : 'columnsEof';
        return shifted();
      case 'columns':
        this.columns?.push(Buffer.from(payload));
        if (--this.left === 0) this.phase = 'columnsEof';
        return shifted();
      case 'columnsEof': {
        const status = eofStatus(payload);
        if (head.stmt && this.columns) head.stmt.columns = this.columns;
        const r = shifted();
        if (status & STATUS.CURSOR_EXISTS) {
          // A cursor: rows come with COM_STMT_FETCH.
          if (head.out) head.out.parts.push('cursor opened');
          this.done();
        } else {
          this.startRows(head.sql, head.decision, head.format, this.columns, head.out);
        }
        return r;
      }
      case 'rows':
        return this.rows(payload, seq, head.out, shifted);
      default:
        throw new ProtocolError(`unexpected server packet in phase ${this.phase}`);
    }
  }

  private startRows(sql: string, decision: Decision | null, format: 'text' | 'binary', columns: Buffer[] | null, out: Outcome | null): void {
    this.phase = 'rows';
    this.rowsInSet = 0;
    const hook = this.hooks.resultSet;
    const parsed = columns?.map(parseColumnDefinition) ?? null;
    this.rewriter = hook && parsed ? hook({ sql, decision, format, columns: parsed }) : null;
    this.sample = parsed && out?.sample ? out.sample : null;
    if (parsed) this.sample?.begin(parsed, format);
  }

  private rows(payload: Buffer, seq: number, out: Outcome | null, shifted: () => Buffer | null): Buffer | null {
    if (isEof(payload)) {
      this.hooks.status(eofStatus(payload));
      const more = eofStatus(payload) & STATUS.MORE_RESULTS_EXISTS && this.queue[0]?.kind === 'result';
      if (out) {
        out.rows += this.rowsInSet;
        out.resultSets++;
        out.parts.push(`${this.rowsInSet} ${this.rowsInSet === 1 ? 'row' : 'rows'}`);
      }
      this.rewriter = null;
      this.sample = null;
      const r = shifted();
      if (more) this.phase = 'first';
      else this.done();
      return r;
    }
    if (payload[0] === 0xff) {
      if (out) {
        out.rows += this.rowsInSet;
        out.error = readErr(payload).message;
      }
      const r = shifted();
      this.done();
      return r;
    }
    this.rowsInSet++;
    if (!this.rewriter) {
      if (this.sample?.wants) this.sample.row(payload);
      return shifted();
    }
    const row = this.rewriter(payload);
    if (this.sample?.wants) this.sample.row(row);
    const framed = packet(seq + this.shift, row);
    this.shift += packetCount(row.length) - packetCount(payload.length);
    return framed;
  }

  private prepare(head: Extract<Pending, { kind: 'prepare' }>, payload: Buffer): null {
    switch (this.phase) {
      case 'first': {
        if (payload[0] === 0xff) {
          this.done();
          return null;
        }
        const r = new PacketReader(payload);
        r.u8();
        const id = r.u32('statement id');
        const columns = r.u16('column count');
        const params = r.u16('parameter count');
        this.hooks.prepared(head.stmt, id);
        this.columnsLeftAfterParams = columns;
        this.left = params;
        this.phase = params > 0 ? 'params' : 'paramsEof';
        if (params === 0) this.afterParams(head);
        return null;
      }
      case 'params':
        if (--this.left === 0) this.phase = 'paramsEof';
        return null;
      case 'paramsEof':
        this.afterParams(head);
        return null;
      case 'columns':
        head.stmt.columns?.push(Buffer.from(payload));
        if (--this.left === 0) this.phase = 'columnsEof';
        return null;
      case 'columnsEof':
        this.done();
        return null;
      default:
        throw new ProtocolError(`unexpected server packet in phase ${this.phase}`);
    }
  }

  /** After the parameter definitions (and their EOF, if any): the column definitions, or the end. */
  private afterParams(head: Extract<Pending, { kind: 'prepare' }>): void {
    this.left = this.columnsLeftAfterParams;
    head.stmt.columns = this.hooks.resultSet ? [] : null;
    if (this.left > 0) this.phase = 'columns';
    else this.done();
  }

  /** The head's response is complete: record it, and release the broker's answers queued behind it. */
  private done(): void {
    const head = this.queue.shift();
    this.phase = 'first';
    this.shift = 0;
    this.rewriter = null;
    this.sample = null;
    this.columns = null;
    if (head && (head.kind === 'result' || head.kind === 'fields') && head.out) this.hooks.finish(head.out);
    while (this.queue[0]?.kind === 'reply') {
      const r = this.queue.shift() as Extract<Pending, { kind: 'reply' }>;
      (this.after ??= []).push(r.bytes);
    }
  }

  /** The connection is going away: what was still owed is abandoned (recorded as such). */
  abandon(reason: string): void {
    for (const p of this.queue.splice(0)) {
      if ((p.kind === 'result' || p.kind === 'fields') && p.out) {
        p.out.error ??= reason;
        this.hooks.finish(p.out);
      }
    }
  }
}
