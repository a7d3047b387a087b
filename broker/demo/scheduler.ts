// The demo database's scheduler: hands the one embedded backend to one connection at a time for a
// whole unit of work, emulates COPY FROM STDIN, and cleans up after connections that leave (see database.ts).
import type { PGlite } from '@electric-sql/pglite';

type MessageJob = {
  kind: 'message';
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (err: Error) => void;
};
type DetachJob = { kind: 'detach'; handlerId: number; resolve: () => void };
type Job = MessageJob | DetachJob;

// Message type bytes, a table of constants (not repeated logic); the engine reads types as characters and keeps no such table to share.
const T_QUERY = 0x51; // 'Q'
const T_PARSE = 0x50; // 'P'
const T_BIND = 0x42; // 'B'
const T_DESCRIBE = 0x44; // 'D'
const T_CLOSE = 0x43; // 'C'
const T_SYNC = 0x53; // 'S'
const T_FUNCTION_CALL = 0x46; // 'F'
const T_FLUSH = 0x48; // 'H'
const T_TERMINATE = 0x58; // 'X'
const T_COPY_DATA = 0x64; // 'd'
const T_COPY_DONE = 0x63; // 'c'
const T_COPY_FAIL = 0x66; // 'f'
const T_COPY_IN_RESPONSE = 0x47; // 'G' (backend)

/** COPY FROM STDIN data is buffered in memory until CopyDone; refuse more than this. */
const MAX_COPY_BYTES = 256 * 1024 * 1024;

/**
 * Duck-typed replacement for pglite-socket's internal QueryQueueManager (the handler calls `enqueue` once per
 * protocol message, `clearQueueForHandler` + `clearTransactionIfNeeded` when its socket goes away).
 *
 * A connection that gets the backend keeps it until it reaches a protocol boundary (ReadyForQuery: after a
 * startup packet, simple Query, Sync or FunctionCall) with no transaction block open; messages of other
 * connections wait in FIFO order until then.
 */
export class SessionScheduler {
  private jobs: Job[] = [];
  private owner: number | null = null;
  /** The owner has sent extended-protocol messages since its last Sync. */
  private ownerMidBatch = false;
  private copyIn: { handlerId: number; chunks: Uint8Array[]; bytes: number } | null = null;
  /** Named prepared statements each connection has created, by their renamed names. */
  private readonly statements = new Map<number, Set<string>>();
  /** Connections that have talked to the backend and not yet gone away. */
  private readonly live = new Set<number>();
  /** drain() is on the job list. Cleared synchronously when it stops, so an enqueue right after restarts it. */
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private failure: Error | null = null;
  private stopped = false;

  constructor(
    private readonly db: PGlite,
    private readonly onFatal?: (err: Error) => void,
  ) {}

  get failed(): boolean {
    return this.failure !== null;
  }

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.failure || this.stopped) {
        reject(this.failure ?? new Error('demo database is shutting down'));
        return;
      }
      this.jobs.push({ kind: 'message', handlerId, message, onData, resolve, reject });
      this.pump();
    });
  }

  getQueueLength(): number {
    return this.jobs.length;
  }

  clearQueueForHandler(handlerId: number): void {
    this.jobs = this.jobs.filter((job) => {
      if (job.kind === 'message' && job.handlerId === handlerId) {
        job.reject(new Error('Handler disconnected'));
        return false;
      }
      return true;
    });
  }

  /** Called when a connection goes away. Never rejects: the caller does not handle rejections. */
  clearTransactionIfNeeded(handlerId: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.failure || this.stopped) {
        resolve();
        return;
      }
      this.jobs.push({ kind: 'detach', handlerId, resolve });
      this.pump();
    });
  }

  /** Refuse new work and drop what is queued; the job in flight (if any) finishes. */
  shutdown(): void {
    this.stopped = true;
    this.dropAll(new Error('demo database is shutting down'));
  }

  /** Resolves once no job is executing. */
  idle(): Promise<void> {
    if (!this.draining) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private dropAll(err: Error): void {
    const jobs = this.jobs;
    this.jobs = [];
    for (const job of jobs) {
      if (job.kind === 'message') job.reject(err);
      else job.resolve();
    }
  }

  private pump(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const owner = this.owner;
        const i = owner === null ? (this.jobs.length > 0 ? 0 : -1) : this.jobs.findIndex((j) => j.handlerId === owner);
        if (i < 0) break; // idle, or the owner (in a transaction or mid-batch) has not sent its next message yet
        const job = this.jobs.splice(i, 1)[0]!;
        if (job.kind === 'detach') {
          try {
            if (!this.failure && !this.stopped) await this.detach(job.handlerId);
          } catch {
            // exec() has already recorded a fatal failure, if that is what it was
          } finally {
            job.resolve();
          }
          continue;
        }
        try {
          job.resolve(await this.handle(job));
        } catch (err) {
          job.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      // Synchronously after the last check: the handler enqueues its next message in a later microtask.
      this.draining = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async handle(job: MessageJob): Promise<number> {
    if (this.failure || this.stopped) throw this.failure ?? new Error('demo database is shutting down');
    let written = 0;
    const onData = (data: Uint8Array): void => {
      written += data.length;
      job.onData(data);
    };
    this.live.add(job.handlerId);
    this.owner = job.handlerId;
    let message = job.message;
    const type = message[0];

    if (this.copyIn) {
      // Only the owner can be copying in (the owner keeps the backend until the COPY ends).
      if (type === T_COPY_DATA) {
        this.copyIn.chunks.push(message);
        this.copyIn.bytes += message.length;
        if (this.copyIn.bytes > MAX_COPY_BYTES) {
          await this.finishCopy(copyFailMessage(`COPY data exceeds the demo database's ${MAX_COPY_BYTES} byte limit`), onData);
        }
        return written;
      }
      if (type === T_FLUSH || type === T_SYNC) return written; // ignored during copy-in, as PostgreSQL does
      if (type === T_COPY_DONE || type === T_COPY_FAIL) {
        await this.finishCopy(message, onData);
        return written;
      }
      await this.finishCopy(copyFailMessage('unexpected message type during COPY from stdin'), onData);
      // ...then handle the message normally
    }

    if (type === T_COPY_DATA || type === T_COPY_DONE || type === T_COPY_FAIL) {
      // Leftovers of a COPY that already ended (e.g. refused for size): PostgreSQL ignores these too.
      return written;
    }
    if (type === T_TERMINATE) return written; // cleanup happens when the socket closes

    if (type === T_QUERY) {
      const sql = cString(message, 5).text;
      const copies = copyFromStdin(sql);
      if (copies.count === 1 && copies.first) {
        // The WASM backend cannot wait for CopyData: answer CopyInResponse ourselves, buffer the data, and run
        // Query + CopyData... + CopyDone in one go when the client is done.
        this.copyIn = { handlerId: job.handlerId, chunks: [message], bytes: message.length };
        this.ownerMidBatch = true;
        onData(copyInResponse(/\bbinary\b/i.test(sql)));
        return written;
      }
      if (copies.count > 0) message = queryMessage(refuseCopySql('send COPY ... FROM STDIN as the first statement of a simple query'));
    } else if (type === T_PARSE) {
      const name = cString(message, 5);
      const query = cString(message, name.end + 1);
      const refuse = copyFromStdin(query.text).count > 0;
      if (name.text !== '' || refuse) {
        message = concat([
          message.subarray(0, 5),
          cStringBytes(this.statementName(job.handlerId, name.text, 'add')),
          refuse ? cStringBytes(refuseCopySql('use the simple query protocol for COPY ... FROM STDIN')) : message.subarray(name.end + 1, query.end + 1),
          message.subarray(query.end + 1),
        ]);
        setLength(message);
      }
    } else if (type === T_BIND) {
      const portal = cString(message, 5);
      const statement = cString(message, portal.end + 1);
      if (statement.text !== '') {
        message = concat([
          message.subarray(0, portal.end + 1),
          cStringBytes(this.statementName(job.handlerId, statement.text)),
          message.subarray(statement.end + 1),
        ]);
        setLength(message);
      }
    } else if ((type === T_DESCRIBE || type === T_CLOSE) && message[5] === 0x53 /* 'S'tatement */) {
      const statement = cString(message, 6);
      if (statement.text !== '') {
        message = concat([
          message.subarray(0, 6),
          cStringBytes(this.statementName(job.handlerId, statement.text, type === T_CLOSE ? 'delete' : undefined)),
          message.subarray(statement.end + 1),
        ]);
        setLength(message);
      }
    }

    await this.exec(message, onData, type === 0);
    if (type === 0 || type === T_QUERY || type === T_SYNC || type === T_FUNCTION_CALL) this.atBoundary();
    else this.ownerMidBatch = true;
    return written;
  }

  private async finishCopy(last: Uint8Array, onData: (data: Uint8Array) => void): Promise<void> {
    const copy = this.copyIn!;
    this.copyIn = null;
    const out: Uint8Array[] = [];
    // Copy each chunk: PGlite hands out views of an output buffer that it reuses.
    await this.exec(concat([...copy.chunks, last]), (d) => out.push(d.slice()));
    const reply = withoutFirstMessage(concat(out), T_COPY_IN_RESPONSE);
    if (reply.length > 0) onData(reply);
    this.atBoundary();
  }

  /**
   * Named prepared statements (protocol-level: Parse/Bind/Describe/Close) are renamed per connection, so that
   * drivers that all call theirs `S_1`, `P_0`, `__asyncpg_stmt_1__`... do not collide in the shared session.
   * SQL-level PREPARE/EXECUTE names are not rewritten.
   */
  private statementName(handlerId: number, name: string, track?: 'add' | 'delete'): string {
    if (name === '') return name;
    const renamed = `c${handlerId}:${name}`;
    if (track) {
      let names = this.statements.get(handlerId);
      if (!names) this.statements.set(handlerId, (names = new Set()));
      if (track === 'add') names.add(renamed);
      else names.delete(renamed);
    }
    return renamed;
  }

  /** After a ReadyForQuery: release the backend unless a transaction block is open. */
  private atBoundary(): void {
    this.ownerMidBatch = false;
    if (!this.db.isInTransaction()) this.owner = null;
  }

  /** A connection has gone: undo what it left behind, and reset the session once nobody is connected. */
  private async detach(handlerId: number): Promise<void> {
    if (this.copyIn?.handlerId === handlerId) this.copyIn = null; // never reached the backend
    if (this.owner === handlerId) {
      const discard = (): void => undefined;
      if (this.ownerMidBatch) {
        // ROLLBACK aborts an open implicit or explicit transaction (ignored if the backend is skipping to the
        // next Sync after an error); the Sync then ends the extended-protocol batch either way.
        await this.exec(concat([queryMessage('ROLLBACK'), syncMessage()]), discard);
      }
      if (this.db.isInTransaction()) await this.exec(queryMessage('ROLLBACK'), discard);
      this.owner = null;
      this.ownerMidBatch = false;
    }
    this.live.delete(handlerId);
    const statements = [...(this.statements.get(handlerId) ?? [])];
    this.statements.delete(handlerId);
    if (this.live.size === 0 && this.owner === null && !this.db.isInTransaction()) {
      await this.exec(queryMessage('DISCARD ALL'), () => undefined);
    } else if (statements.length > 0 && this.owner === null) {
      await this.exec(concat([...statements.map(closeStatementMessage), syncMessage()]), () => undefined);
    }
  }

  private async exec(message: Uint8Array, onData: (data: Uint8Array) => void, isStartup = false): Promise<void> {
    try {
      await this.db.runExclusive(() => this.db.execProtocolRawStream(message, { onRawData: onData }));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const exited = (err as { name?: unknown } | null)?.name === 'ExitStatus';
      if (isStartup && !exited) throw e; // a startup packet it would not take: that connection fails, not the backend
      // Anything else (the WASM backend exited or trapped) leaves PGlite unusable: fail every connection now
      // rather than hanging them.
      const failure = new Error(`demo database stopped: ${e.message}`, { cause: err });
      this.failure = failure;
      this.owner = null;
      this.copyIn = null;
      this.dropAll(failure);
      this.onFatal?.(failure);
      throw failure;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Wire-protocol helpers
// ---------------------------------------------------------------------------------------------------------

/** A statement (at the start of the text or after a `;`, past whitespace and comments) `COPY ... FROM STDIN`. */
const COPY_FROM_STDIN = /(^|;)(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*copy\b[^;]*?\bfrom\s+stdin\b/gi;

/** How many statements of the text are COPY FROM STDIN, and whether the first statement is one. */
function copyFromStdin(sql: string): { count: number; first: boolean } {
  const found = [...sql.matchAll(COPY_FROM_STDIN)];
  return { count: found.length, first: found[0]?.index === 0 && found[0][1] === '' };
}

function refuseCopySql(hint: string): string {
  const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  return (
    `DO $jit_demo$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', ` +
    `MESSAGE = ${lit('the embedded demo database cannot run this COPY ... FROM STDIN')}, HINT = ${lit(hint)}; END $jit_demo$`
  );
}

function cString(buf: Uint8Array, start: number): { text: string; end: number } {
  let end = buf.indexOf(0, start);
  if (end < 0) end = buf.length;
  return { text: Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8'), end };
}

function cStringBytes(s: string): Uint8Array {
  return Buffer.from(`${s}\0`, 'utf8');
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function setLength(message: Uint8Array): void {
  new DataView(message.buffer, message.byteOffset, message.byteLength).setInt32(1, message.length - 1);
}

function typed(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type;
  out.set(body, 5);
  setLength(out);
  return out;
}

function queryMessage(sql: string): Uint8Array {
  return typed(T_QUERY, cStringBytes(sql));
}

function syncMessage(): Uint8Array {
  return typed(T_SYNC, new Uint8Array(0));
}

function closeStatementMessage(name: string): Uint8Array {
  return typed(T_CLOSE, concat([new Uint8Array([0x53]), cStringBytes(name)]));
}

function copyFailMessage(reason: string): Uint8Array {
  return typed(T_COPY_FAIL, cStringBytes(reason));
}

/** CopyInResponse with the overall format and no per-column formats (clients only look at the former). */
function copyInResponse(binary: boolean): Uint8Array {
  return typed(T_COPY_IN_RESPONSE, new Uint8Array([binary ? 1 : 0, 0, 0]));
}

/** Backend output minus the first message of the given type (the CopyInResponse the client already had). */
function withoutFirstMessage(out: Uint8Array, type: number): Uint8Array {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let off = 0; off + 5 <= out.length; ) {
    const next = off + 1 + view.getInt32(off + 1);
    if (out[off] === type) return concat([out.subarray(0, off), out.subarray(next)]);
    off = next;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Demo schema and data
// ---------------------------------------------------------------------------------------------------------
