// What both engines share at the edge: the TCP listener with its login deadline and connection caps, and who
// counts as loopback. What an engine is given and gives back is engine.ts.
import net from 'node:net';

/** How long a client may take to log in, and how many clients the listener holds (config `listen:`). */
export interface ListenLimits {
  /** From accept to the end of authentication (token verified); past it the client is told and closed. */
  loginTimeoutMs: number;
  /** Connections still logging in; past it a new connection is refused at once. */
  maxLogins: number;
  /** Connections of any kind; past it a new connection is refused at once. */
  maxClients: number;
}

export const DEFAULT_LIMITS: ListenLimits = { loginTimeoutMs: 10_000, maxLogins: 256, maxClients: 2000 };

/** A client address on the loopback network (IPv4, IPv6, or IPv4-mapped). */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** One accepted client's login, as the listener tracks it. */
export interface Login {
  /** Authentication has ended: the deadline stops and the login slot is freed. Closing the socket does this too. */
  done(): void;
}

/** How an engine meets the listener: it takes each accepted socket, and says how its protocol refuses one. */
export interface Edge {
  /**
   * A client the listener accepted. The engine calls `login.done()` once the client has authenticated, and
   * `loginExpired` is called if that has not happened by the deadline: the engine tells the client
   * (in its protocol, at whatever stage the login is) and closes the connection.
   */
  accept(socket: net.Socket, login: Login): { loginExpired(message: string): void };
  /** The bytes that tell a client it is turned away before the protocol has begun (a cap is reached). */
  refusal(message: string): Buffer;
}

export interface Listener {
  address: { host: string; port: number };
  /** Stop accepting; resolves once the listening socket is closed (after `drain` has ended the clients). */
  close(drain: () => Promise<unknown>): Promise<void>;
}

/** How long a refused or expired connection may linger (flushing its error) before it is destroyed. */
const LINGER_MS = 2000;
/** Refusals are logged at most this often, with how many there were. */
const LOG_EVERY_MS = 10_000;

export async function listenTcp(
  at: { host: string; port: number },
  deps: { limits?: Partial<ListenLimits> | undefined; log: (msg: string, fields?: Record<string, unknown>) => void },
  edge: Edge,
): Promise<Listener> {
  const limits: ListenLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  let clients = 0;
  let logins = 0;
  let refused = 0;
  let lastLog = 0;
  /** Refused connections flushing their error: destroyed at once when the listener closes. */
  const lingering = new Set<net.Socket>();

  const refuse = (socket: net.Socket, message: string, why: string) => {
    // Written and half-closed, then read and discarded until the client closes: closing with its startup
    // bytes unread would reset the connection and could lose the error before the client reads it.
    socket.on('error', () => {});
    socket.end(edge.refusal(message));
    socket.resume();
    lingering.add(socket);
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      lingering.delete(socket);
    });
    refused++;
    const now = Date.now();
    if (now - lastLog >= LOG_EVERY_MS) {
      deps.log('connections refused at accept', { reason: why, refused, clients, logins, ...limits });
      lastLog = now;
      refused = 0;
    }
  };

  const server = net.createServer((socket) => {
    if (clients >= limits.maxClients) {
      return refuse(socket, 'jit-broker: too many clients connected to the broker; try again later', 'listen.max_clients');
    }
    if (logins >= limits.maxLogins) {
      return refuse(socket, 'jit-broker: too many connections still logging in; try again shortly', 'listen.max_logins');
    }
    clients++;
    logins++;
    let loggingIn = true;
    let timer: NodeJS.Timeout | undefined;
    const login: Login = {
      done() {
        if (!loggingIn) return;
        loggingIn = false;
        logins--;
        clearTimeout(timer);
      },
    };
    socket.once('close', () => {
      login.done();
      clients--;
    });
    const client = edge.accept(socket, login);
    timer = setTimeout(() => {
      if (!loggingIn) return;
      client.loginExpired(`jit-broker: the login did not complete within ${limits.loginTimeoutMs / 1000}s`);
      // The engine has closed it; should the client not read its error, it goes anyway.
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    }, limits.loginTimeoutMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    async close(drain) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of lingering) s.destroy();
      await drain();
      await closed;
    },
  };
}
