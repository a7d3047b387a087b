// The TCP listener both engines accept clients on.
import net from 'node:net';

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
