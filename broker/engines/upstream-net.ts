// What both engines need to reach a real database: a TCP connection with a timeout, and its error.
import net from 'node:net';

/** The broker could not reach or log in to a target's database. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

/** Connect with a timeout; Nagle off and keep-alive on, as a database connection wants. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(`timed out after ${timeoutMs} ms connecting to ${host}:${port}`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      s.setKeepAlive(true, 30_000);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new UpstreamError(`cannot connect to ${host}:${port}: ${e.message}`));
    });
  });
}
