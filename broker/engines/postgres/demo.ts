// The built-in demo target exists so that `npm ci && npm start` works on a machine without PostgreSQL:
// an embedded PostgreSQL (PGlite, WASM) served over TCP on loopback, seeded with fake customers and orders.
//
// PGlite is ONE single-user backend. @electric-sql/pglite-socket's PGLiteSocketServer multiplexes many
// TCP connections onto it, but its stock queue interleaves connections message by message, which is not
// safe for a proxy upstream (measured with pglite-socket 0.2.17):
//   - a Parse/Bind/Execute/Sync batch from one connection can run between another connection's messages,
//     so a Bind binds the other session's unnamed statement and results reach the wrong connection;
//   - `COPY ... FROM STDIN` makes the WASM backend exit(1), taking every session down with it for good;
//   - a client that disconnects in the middle of an extended-protocol batch leaves the backend ignoring
//     every later message until some Sync arrives;
//   - all connections share one session, so drivers' named prepared statements (S_1, P_0...) collide;
//   - a CancelRequest is swallowed but its connection left open, so psql's Ctrl-C hangs psql.
// So the server below keeps PGLiteSocketServer (TCP, SSLRequest/CancelRequest, framing) but swaps in
// SessionScheduler, which hands the backend to one connection for a whole unit of work (up to a
// ReadyForQuery outside a transaction block), renames protocol-level prepared statements per connection,
// emulates COPY FROM STDIN, closes CancelRequest connections, and cleans up after connections that leave.
//
// Limits that remain (inherent to one embedded backend; see the README):
//   - work is serialised: other connections wait while one runs a batch or holds a transaction open, so a
//     client that blocks on connection B while its connection A sits in a transaction deadlocks;
//   - other session state (SET, SQL-level PREPARE, temp tables, advisory locks) is shared by connections
//     open at the same time, and reset (DISCARD ALL) once the last connection has gone;
//   - a cancel does not interrupt anything and statement_timeout does not fire;
//   - queries run synchronously on this process's event loop: a slow query stalls the whole process;
//   - the startup message is ignored (user, database, password, client_encoding, application_name, options):
//     everyone is `postgres` on `postgres`, in UTF8, with no authentication.
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { CANCEL_REQUEST_CODE, PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Server, Socket } from 'node:net';

export interface DemoDatabaseOptions {
  /** Directory persisting the database across restarts; `null` keeps it in memory. */
  dataDir: string | null;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Called once if the embedded backend dies (every connection is then refused until close()). */
  onFatal?: (err: Error) => void;
}

export interface DemoDatabase {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`, usable by node-postgres, psql and the broker's proxy. */
  url: string;
  close(): Promise<void>;
}

export async function startDemoDatabase(opts: DemoDatabaseOptions): Promise<DemoDatabase> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.dataDir !== null) mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir !== null ? { dataDir: opts.dataDir } : {});
  let server: PGLiteSocketServer | null = null;
  let scheduler: SessionScheduler | null = null;
  try {
    await seedDemoSchema(db);
    scheduler = new SessionScheduler(db, opts.onFatal);
    server = new PGLiteSocketServer({ db, host, port: opts.port ?? 0, maxConnections: MAX_CONNECTIONS });
    installScheduler(server, scheduler);
    await server.start();
    closeCancelConnections(server);
  } catch (err) {
    scheduler?.shutdown();
    await server?.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  const port = portOf(server);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `postgres://postgres@${urlHost}:${port}/postgres`;

  let closing: Promise<void> | null = null;
  const running = { server, scheduler };
  return {
    url,
    close() {
      closing ??= (async () => {
        running.scheduler.shutdown();
        await running.server.stop();
        await running.scheduler.idle();
        if (db.closed) return;
        // A backend that has died cannot be shut down cleanly; there is nothing left to save then.
        await db.close().catch((err: unknown) => {
          if (!running.scheduler.failed) throw err;
        });
      })();
      return closing;
    },
  };
}

/** Connections beyond this are dropped by the server at accept time (node's `server.maxConnections`). */
const MAX_CONNECTIONS = 100;

function portOf(server: PGLiteSocketServer): number {
  // getServerConn() is "host:port" once listening (the port is resolved when 0 was asked for).
  const conn = server.getServerConn();
  const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`demo database: unexpected listen address ${conn}`);
  return port;
}

/** The stock server hands `this.queryQueue` to every connection handler it creates; replace it before start(). */
function installScheduler(server: PGLiteSocketServer, scheduler: SessionScheduler): void {
  const internals = server as unknown as { queryQueue?: { enqueue?: unknown } };
  if (typeof internals.queryQueue?.enqueue !== 'function') {
    throw new Error(
      'demo database: this version of @electric-sql/pglite-socket has no PGLiteSocketServer.queryQueue to replace; ' +
        'the demo was written against 0.2.17',
    );
  }
  (internals as { queryQueue: unknown }).queryQueue = scheduler;
}

/**
 * pglite-socket swallows a CancelRequest but leaves its connection open, and libpq (psql's Ctrl-C, PQcancel)
 * waits for the server to close it: the client would hang forever. Close those connections. The query itself
 * cannot be interrupted (it runs synchronously), so the cancel still has no effect.
 */
function closeCancelConnections(server: PGLiteSocketServer): void {
  const listener = (server as unknown as { server?: Server | null }).server;
  if (!listener) throw new Error('demo database: PGLiteSocketServer has no net.Server to watch for CancelRequest');
  listener.on('connection', (socket: Socket) => {
    // The handler attaches its 'data' listener in a setImmediate scheduled just before this one; attaching ours
    // earlier would start the stream flowing before it listens.
    setImmediate(() => {
      socket.once('data', (chunk: Buffer) => {
        if (chunk.length >= 8 && chunk.readInt32BE(0) === 16 && chunk.readInt32BE(4) === CANCEL_REQUEST_CODE) {
          setImmediate(() => socket.end());
        }
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Scheduling connections onto the single backend
// ---------------------------------------------------------------------------------------------------------

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
class SessionScheduler {
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

/** Fake people; emails at example.com, phone numbers in the fictional 555-01xx range, public test card numbers. */
export const DEMO_CUSTOMERS: ReadonlyArray<{ name: string; email: string; card_number: string; phone: string }> = [
  { name: 'Ava Thompson', email: 'ava.thompson@example.com', card_number: '4111111111111111', phone: '+1-202-555-0101' },
  { name: 'Liam Okafor', email: 'liam.okafor@example.com', card_number: '5555555555554444', phone: '+1-202-555-0102' },
  { name: 'Sofia Marquez', email: 'sofia.marquez@example.com', card_number: '4012888888881881', phone: '+1-202-555-0103' },
  { name: 'Noah Fischer', email: 'noah.fischer@example.com', card_number: '378282246310005', phone: '+1-202-555-0104' },
  { name: 'Mei Tanaka', email: 'mei.tanaka@example.com', card_number: '6011111111111117', phone: '+1-202-555-0105' },
  { name: 'Ethan Brooks', email: 'ethan.brooks@example.com', card_number: '5105105105105100', phone: '+1-202-555-0106' },
  { name: 'Amara Nwosu', email: 'amara.nwosu@example.com', card_number: '4242424242424242', phone: '+1-202-555-0107' },
  { name: 'Lucas Moreau', email: 'lucas.moreau@example.com', card_number: '371449635398431', phone: '+1-202-555-0108' },
  { name: 'Priya Raman', email: 'priya.raman@example.com', card_number: '6011000990139424', phone: '+1-202-555-0109' },
  { name: 'Jonas Lindqvist', email: 'jonas.lindqvist@example.com', card_number: '3566002020360505', phone: '+1-202-555-0110' },
  { name: 'Chloé Dubois', email: 'chloe.dubois@example.com', card_number: '4000056655665556', phone: '+1-202-555-0111' },
  { name: 'Mateo Rossi', email: 'mateo.rossi@example.com', card_number: '5200828282828210', phone: '+1-202-555-0112' },
  { name: 'Hannah Schmidt', email: 'hannah.schmidt@example.com', card_number: '3056930009020004', phone: '+1-202-555-0113' },
  { name: 'Omar Haddad', email: 'omar.haddad@example.com', card_number: '36227206271667', phone: '+1-202-555-0114' },
  { name: 'Grace Kim', email: 'grace.kim@example.com', card_number: '2223003122003222', phone: '+1-202-555-0115' },
  { name: 'Diego Alvarez', email: 'diego.alvarez@example.com', card_number: '6011981111111113', phone: '+1-202-555-0116' },
  { name: 'Zara Patel', email: 'zara.patel@example.com', card_number: '6200000000000005', phone: '+1-202-555-0117' },
  { name: 'Felix Wagner', email: 'felix.wagner@example.com', card_number: '4000002500000003', phone: '+1-202-555-0118' },
  { name: 'Isla MacLeod', email: 'isla.macleod@example.com', card_number: '4000002760000016', phone: '+1-202-555-0119' },
  { name: 'Kwame Mensah', email: 'kwame.mensah@example.com', card_number: '5454545454545454', phone: '+1-202-555-0120' },
];

/** Creates and fills `customers` and `orders` the first time only (a database that has `customers` is left alone). */
async function seedDemoSchema(db: PGlite): Promise<void> {
  const existing = await db.query<{ t: string | null }>(`select to_regclass('public.customers')::text as t`);
  if (existing.rows[0]?.t) return;
  await db.transaction(async (tx) => {
    await tx.exec(`
      create table if not exists customers (
        id          serial primary key,
        name        text not null,
        email       text not null unique,
        card_number text not null,
        phone       text not null,
        created_at  timestamptz not null default now()
      );
      create table if not exists orders (
        id          serial primary key,
        customer_id integer not null references customers(id),
        amount      numeric(10, 2) not null,
        created_at  timestamptz not null default now()
      );
      comment on table customers is 'jit-broker demo data: fake people, example.com emails, public test card numbers';
      comment on table orders is 'jit-broker demo data';
    `);
    const base = Date.UTC(2024, 0, 8, 9, 30);
    const day = 86_400_000;
    for (const [i, c] of DEMO_CUSTOMERS.entries()) {
      await tx.query(
        `insert into customers (id, name, email, card_number, phone, created_at)
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
        [i + 1, c.name, c.email, c.card_number, c.phone, new Date(base + i * 9 * day).toISOString()],
      );
    }
    // 40 orders, deterministic: customer 1..20 twice, amounts between 5.00 and 500.00.
    for (let n = 0; n < 40; n++) {
      const customerId = ((n * 7) % DEMO_CUSTOMERS.length) + 1;
      const cents = 500 + ((n * 104_729) % 49_500);
      await tx.query(
        `insert into orders (id, customer_id, amount, created_at) values ($1, $2, $3, $4) on conflict do nothing`,
        [n + 1, customerId, (cents / 100).toFixed(2), new Date(base + 180 * day + n * 3 * day + (n % 5) * 3_600_000).toISOString()],
      );
    }
    await tx.exec(`
      select setval(pg_get_serial_sequence('customers', 'id'), (select max(id) from customers));
      select setval(pg_get_serial_sequence('orders', 'id'), (select max(id) from orders));
    `);
  });
}
