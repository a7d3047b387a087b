// A raw client connection that sends a first packet (or nothing) and then stays silent: what the broker
// sends it, and when it is closed. For the login deadline and connection caps of the listeners.
import net from 'node:net';

export interface Probe {
  socket: net.Socket;
  /** Everything the broker sent, once it has closed the connection. */
  closed: Promise<Buffer>;
}

/** Connect to 127.0.0.1:`port`, send `first` (if any), then nothing. */
export async function probe(port: number, first?: Buffer): Promise<Probe> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {});
  const closed = new Promise<Buffer>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (first) socket.write(first);
  return { socket, closed };
}
