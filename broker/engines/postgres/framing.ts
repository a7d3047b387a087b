// Per-connection framing: messages arrive split across reads and several to a read.
// Written by hand because pg-protocol's Parser decodes every backend message (DataRow into strings),
// and has no frontend parser at all; the relay needs boundaries and raw bytes, nothing more.
import { ProtocolError } from './messages.js';

export interface Frame {
  /** Message type byte as a character ('Q', 'P', …); '' for startup-phase messages, which have none. */
  type: string;
  /** The message body, after the length word. */
  body: Buffer;
  /** The whole message as it came, to forward untouched. */
  raw: Buffer;
}

/** Accumulates chunks and yields whole messages. */
export class Framer {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  constructor(
    private readonly maxMessage: number,
    /** Startup-phase messages have a length word but no type byte. */
    public startup = false,
  ) {}

  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  /** The bytes received and not yet returned as a message, taken out of the framer. */
  rest(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return rest;
  }

  next(): Frame | null {
    const head = this.startup ? 4 : 5;
    const avail = this.buf.length - this.pos;
    if (avail < head) return null;
    const type = this.startup ? '' : String.fromCharCode(this.buf[this.pos]!);
    const len = this.buf.readInt32BE(this.pos + head - 4);
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    if (len > this.maxMessage) throw new ProtocolError(`message of ${len} bytes is larger than the ${this.maxMessage}-byte limit`);
    const total = len + head - 4;
    if (avail < total) return null;
    const raw = this.buf.subarray(this.pos, this.pos + total);
    this.pos += total;
    return { type, body: raw.subarray(head), raw };
  }
}
