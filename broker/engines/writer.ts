// What a relay sends on one socket, written once per turn of the event loop: both relays push each piece
// (runs of upstream bytes as they came, rewritten rows, the broker's own answers) into an Outbox, which
// writes them as ONE buffer when the turn's work is done — at the end of the 'data' handler that produced
// them (hold/release around it), or, for a piece pushed anywhere else (a promise settling), on the next tick.
//
// Why not socket.cork()/uncork(): they give one writev too, but every write() goes through the Writable's
// buffer (an entry per piece, then an array of them for _writev). Concatenating a turn's small pieces costs a
// copy of a few hundred bytes and hands the socket one Buffer; on a TLS socket that is one SSL_write and one
// TLS record (up to 16 KB). A turn's output above CONCAT_LIMIT is not copied: its pieces go in one writev.
//
// Backpressure as before: a write() that returns false (the socket's buffer is full) calls `full`, which
// pauses the other side; the relay resumes it on 'drain'. Order: pieces leave in the order pushed, and
// `flush()` writes at once what is pending (before an error and the end of the connection).
import type net from 'node:net';

/** Above this many bytes pending, the pieces are written as they are (one writev) instead of copied into one. */
const CONCAT_LIMIT = 64 * 1024;

export class Outbox {
  private parts: Buffer[] = [];
  private bytes = 0;
  private holds = 0;
  private scheduled = false;

  constructor(
    private readonly socket: net.Socket,
    /** The socket's buffer is full: pause whatever feeds it. */
    private readonly full: () => void,
  ) {}

  /** Bytes pushed and not yet written. */
  get pending(): number {
    return this.bytes;
  }

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.bytes += b.length;
    if (this.holds === 0 && !this.scheduled) {
      this.scheduled = true;
      process.nextTick(flushLater, this);
    }
  }

  /** Keep what is pushed until the matching release() (nested holds write at the outermost release). */
  hold(): void {
    this.holds++;
  }

  release(): void {
    if (this.holds > 0 && --this.holds === 0) this.flush();
  }

  /** Write what is pending now, in one write (held or not). */
  flush(): void {
    const n = this.parts.length;
    if (n === 0) return;
    const parts = this.parts;
    const bytes = this.bytes;
    this.bytes = 0;
    const s = this.socket;
    if (s.destroyed || !s.writable) {
      parts.length = 0;
      return;
    }
    let ok = true;
    if (n === 1) ok = s.write(parts[0]!);
    else if (bytes <= CONCAT_LIMIT) ok = s.write(Buffer.concat(parts, bytes));
    else {
      s.cork();
      for (const p of parts) ok = s.write(p);
      s.uncork();
    }
    parts.length = 0; // the socket keeps the Buffers it was given, not this array
    if (!ok) this.full();
  }

  /** The scheduled flush of pieces pushed outside a hold. */
  tick(): void {
    this.scheduled = false;
    if (this.holds === 0) this.flush();
  }
}

function flushLater(o: Outbox): void {
  o.tick();
}

/** A relay's two outboxes: to the client and to the upstream, each pausing the other side while full. */
export class Wire {
  readonly client: Outbox;
  readonly upstream: Outbox;

  constructor(
    readonly clientSocket: net.Socket,
    readonly upstreamSocket: net.Socket,
  ) {
    this.client = new Outbox(clientSocket, () => upstreamSocket.pause());
    this.upstream = new Outbox(upstreamSocket, () => clientSocket.pause());
  }

  /** Write everything pending both ways now (before the connection ends). */
  flush(): void {
    this.upstream.flush();
    this.client.flush();
  }
}
