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
// Not an engine: it is an upstream the broker can start, imports nothing from broker/engines, and no engine imports it.
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { CANCEL_REQUEST_CODE, PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Server, Socket } from 'node:net';
import { SessionScheduler } from './scheduler.js';
import { seedDemoSchema } from './seed.js';

export { DEMO_CUSTOMERS } from './seed.js';

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
      'demo database: this version of @electric-sql/pglite-socket has no PGLiteSocketServer.queryQueue to replace; ' + 'the demo was written against 0.2.17',
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
