// What both engines share at the edge: the TCP listener, what they are given, and who counts as loopback.
import net from 'node:net';
import type tls from 'node:tls';
import type { LoginRefusal } from '../audit/logins.js';
import type { BrokerSession } from '../session.js';
import type { ClientInfo, Identity, Target } from '../types.js';

/** What main.ts gives every engine (each engine's deps extend it). */
export interface EngineDeps {
  /** Targets this engine serves, by the database name a client asks for. */
  targets: ReadonlyMap<string, Target>;
  /** Verify the token a client sent as its password; throws an error whose message says which check failed. */
  verify: (token: string) => Promise<Identity>;
  /** A login refused (bad token, unknown target, TLS required, ...), to record and log; `token`: the password sent, if any, to decode (never to keep). */
  loginRefused?: (refusal: LoginRefusal, token?: string) => void;
  openSession: (identity: Identity, target: Target, client: ClientInfo) => Promise<BrokerSession>;
  tls: tls.SecureContext | null;
  /** `loopback`: clients on 127.0.0.0/8 and ::1 may log in without TLS. */
  plaintext: 'never' | 'loopback';
  maxMessageBytes: number;
}

/** A client address on the loopback network (IPv4, IPv6, or IPv4-mapped). */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export interface Listener {
  address: { host: string; port: number };
  /** Stop accepting; resolves once the listening socket is closed (after `drain` has ended the clients). */
  close(drain: () => Promise<unknown>): Promise<void>;
}

export async function listenTcp(at: { host: string; port: number }, onSocket: (s: net.Socket) => void): Promise<Listener> {
  const server = net.createServer(onSocket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    async close(drain) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await drain();
      await closed;
    },
  };
}
