// Per-connection framing of what a peer sends: packets arrive split across reads and several to a read;
// a payload of 0xffffff bytes continues in the next packet, and the parts make one logical message.
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

export class PacketFramer {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
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
    if (this.pos >= this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  /** Take the bytes not yet returned (for a TLS upgrade, or to hand to another reader). */
  drain(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return rest;
  }

  next(): Message | null {
    if (this.skipping) return this.skip();
    const buf = this.buf;
    let p = this.pos;
    let total = 0;
    let packets = 0;
    let seq = -1;
    let lastSeq = -1;
    // Walk the packets of one logical message without consuming anything until it is complete.
    for (;;) {
      if (buf.length - p < 4) return null;
      const len = buf.readUIntLE(p, 3);
      const s = buf[p + 3]!;
      if (seq < 0) seq = s;
      else if (s !== ((lastSeq + 1) & 0xff)) throw new ProtocolError(`packet sequence ${s} after ${lastSeq} inside one message`, ER.NET_PACKETS_OUT_OF_ORDER);
      lastSeq = s;
      total += len;
      if (total > this.maxMessage) {
        if (!this.skipOversized) throw new ProtocolError(`a message of more than ${this.maxMessage} bytes is larger than the broker accepts`, ER.NET_PACKET_TOO_LARGE);
        // Drop what came of it so far (its whole earlier packets, this packet's header), and read past the rest.
        this.skipping = { size: total, lastSeq: s, left: len, last: len < MAX_PACKET };
        this.pos = p + 4;
        return this.skip();
      }
      if (buf.length - p - 4 < len) return null;
      p += 4 + len;
      packets++;
      if (len < MAX_PACKET) break;
    }
    const raw = buf.subarray(this.pos, p);
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
    this.pos = p;
    return { seq, lastSeq, payload, raw };
  }

  /** Go on dropping an oversized message; at its end, throw MessageTooLarge. */
  private skip(): null {
    const k = this.skipping!;
    for (;;) {
      const n = Math.min(k.left, this.buf.length - this.pos);
      this.pos += n;
      k.left -= n;
      if (k.left > 0) return null;
      if (k.last) {
        this.skipping = null;
        throw new MessageTooLarge(k.size, k.lastSeq, this.maxMessage);
      }
      if (this.buf.length - this.pos < 4) return null;
      const len = this.buf.readUIntLE(this.pos, 3);
      const s = this.buf[this.pos + 3]!;
      if (s !== ((k.lastSeq + 1) & 0xff)) throw new ProtocolError(`packet sequence ${s} after ${k.lastSeq} inside one message`, ER.NET_PACKETS_OUT_OF_ORDER);
      k.lastSeq = s;
      k.size += len;
      k.left = len;
      k.last = len < MAX_PACKET;
      this.pos += 4;
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
