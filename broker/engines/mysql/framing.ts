// Per-connection framing of what a peer sends: packets arrive split across reads and several to a read;
// a payload of 0xffffff bytes continues in the next packet, and the parts make one logical message.
import { StreamBuffer } from '../stream-buffer.js';
import { ER, MAX_PACKET, ProtocolError } from './protocol.js';

export interface Message {
  /** Sequence id of the first packet. */
  seq: number;
  /** Sequence id of the last packet: an answer to this message starts at lastSeq + 1. */
  lastSeq: number;
  /** The whole logical payload. */
  payload: Buffer;
  /** Every packet as it came, headers included, to forward untouched. */
  raw: Buffer;
}

/**
 * A message larger than the framer accepts, read to its end (and dropped): the answer to it starts at
 * lastSeq + 1, after the last of its packets — not after the one whose header showed it was too large.
 */
export class MessageTooLarge extends ProtocolError {
  constructor(
    readonly size: number,
    readonly lastSeq: number,
    readonly limit: number,
  ) {
    super(`a message of ${size} bytes is larger than the ${limit} the broker accepts`, ER.NET_PACKET_TOO_LARGE);
  }
}

/**
 * Cuts a peer's bytes into logical messages. A message that came whole in one read is a subarray of that read
 * (`raw`, and `payload` when it is one packet); one that came across reads is copied once it is all there
 * (stream-buffer.ts). Messages stay valid however long they are kept: nothing handed out is written again.
 */
export class PacketFramer {
  private readonly buf = new StreamBuffer();
  /** A message too large, being read past: its size so far, its last packet's sequence id, bytes left of that packet. */
  private skipping: { size: number; lastSeq: number; left: number; last: boolean } | null = null;

  /**
   * `skipOversized`: a message over `maxMessage` is read to its end without being kept, then MessageTooLarge
   * is thrown (the peer can then be answered in sequence, and reads its answer: one closed on while it is
   * still writing may never see it). Otherwise the error comes at once, at the header that shows it.
   */
  constructor(
    private readonly maxMessage: number,
    private readonly skipOversized = false,
  ) {}

  push(chunk: Buffer): void {
    this.buf.append(chunk);
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Take the bytes not yet returned (for a TLS upgrade, or to hand to another reader). */
  drain(): Buffer {
    return this.buf.takeAll();
  }

  next(): Message | null {
    if (this.skipping) return this.skip();
    const sb = this.buf;
    let p = 0; // offset of the next packet header from the start of the message
    let total = 0;
    let packets = 0;
    let seq = -1;
    let lastSeq = -1;
    // Walk the packets of one logical message without consuming anything until it is complete. A header is
    // read once the bytes up to it are whole (a message of many packets is made contiguous a packet at a time).
    for (;;) {
      const at = sb.contiguous(p + 4);
      if (at < 0) return null;
      const b = sb.front;
      const len = b.readUIntLE(at + p, 3);
      const s = b[at + p + 3]!;
      if (seq < 0) seq = s;
      else if (s !== ((lastSeq + 1) & 0xff)) throw new ProtocolError(`packet sequence ${s} after ${lastSeq} inside one message`, ER.NET_PACKETS_OUT_OF_ORDER);
      lastSeq = s;
      total += len;
      if (total > this.maxMessage) {
        if (!this.skipOversized)
          throw new ProtocolError(`a message of more than ${this.maxMessage} bytes is larger than the broker accepts`, ER.NET_PACKET_TOO_LARGE);
        // Drop what came of it so far (its whole earlier packets, this packet's header), and read past the rest.
        this.skipping = { size: total, lastSeq: s, left: len, last: len < MAX_PACKET };
        sb.skip(p + 4);
        return this.skip();
      }
      if (sb.length - p - 4 < len) return null;
      p += 4 + len;
      packets++;
      if (len < MAX_PACKET) break;
    }
    const raw = sb.take(p);
    let payload: Buffer;
    if (packets === 1) {
      payload = raw.subarray(4);
    } else {
      const parts: Buffer[] = [];
      for (let q = 0; q < raw.length; ) {
        const len = raw.readUIntLE(q, 3);
        parts.push(raw.subarray(q + 4, q + 4 + len));
        q += 4 + len;
      }
      payload = Buffer.concat(parts, total);
    }
    return { seq, lastSeq, payload, raw };
  }

  /** Go on dropping an oversized message (without keeping or copying it); at its end, throw MessageTooLarge. */
  private skip(): null {
    const k = this.skipping!;
    const sb = this.buf;
    for (;;) {
      k.left -= sb.skip(k.left);
      if (k.left > 0) return null;
      if (k.last) {
        this.skipping = null;
        throw new MessageTooLarge(k.size, k.lastSeq, this.maxMessage);
      }
      const at = sb.contiguous(4);
      if (at < 0) return null;
      const len = sb.front.readUIntLE(at, 3);
      const s = sb.front[at + 3]!;
      if (s !== ((k.lastSeq + 1) & 0xff)) throw new ProtocolError(`packet sequence ${s} after ${k.lastSeq} inside one message`, ER.NET_PACKETS_OUT_OF_ORDER);
      k.lastSeq = s;
      k.size += len;
      k.left = len;
      k.last = len < MAX_PACKET;
      sb.skip(4);
    }
  }
}

/**
 * Reads whole messages off a socket one at a time, for the handshakes (before a relay takes over).
 * Errors and a closed socket reject the pending and every later read; a message over `maxMessage` is
 * read to its end first (MessageTooLarge), so that the refusal can follow it in sequence.
 */
export class PacketIO {
  private framer: PacketFramer;
  private waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  socket!: import('node:net').Socket;
  private readonly onData = (d: Buffer) => {
    this.framer.push(d);
    this.deliver();
  };
  private readonly onEnd = () => this.fail(new Error(`${this.where} closed the connection during the handshake`));
  private readonly onError = (e: Error) => this.fail(new Error(`${this.where}: ${e.message}`));

  constructor(
    socket: import('node:net').Socket,
    private readonly where: string,
    maxMessage: number,
  ) {
    this.framer = new PacketFramer(maxMessage, true);
    this.attach(socket);
  }

  attach(socket: import('node:net').Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stop reading; the socket is paused, and bytes already read wait in `buffered()`. */
  detach(): import('node:net').Socket {
    this.socket.pause();
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('close', this.onEnd);
    this.socket.removeListener('error', this.onError);
    return this.socket;
  }

  /** Bytes read past the last message returned. */
  buffered(): Buffer {
    return this.framer.drain();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(e);
  }

  private deliver(): void {
    if (!this.waiting) return;
    let m: Message | null;
    try {
      m = this.framer.next();
    } catch (e) {
      return this.fail(e as Error);
    }
    if (!m) return;
    const w = this.waiting;
    this.waiting = null;
    w.resolve(m);
  }

  read(): Promise<Message> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.resume();
      this.deliver();
    });
  }
}
