// Per-connection framing: messages arrive split across reads and several to a read.
// Written by hand because pg-protocol's Parser decodes every backend message (DataRow into strings),
// and has no frontend parser at all; the relay needs boundaries and raw bytes, nothing more.
import { StreamBuffer } from '../stream-buffer.js';
import { ProtocolError } from './messages.js';

export interface Frame {
  /** Message type byte as a character ('Q', 'P', …); '' for startup-phase messages, which have none. */
  type: string;
  /** The message body, after the length word. */
  body: Buffer;
  /** The whole message as it came, to forward untouched. */
  raw: Buffer;
}

/**
 * Accumulates chunks and yields whole messages. A message that came whole in one read is a subarray of that
 * read; one that came across reads is copied once, when it is all there (stream-buffer.ts). Frames stay valid
 * however long they are kept: nothing the framer handed out is written again.
 */
export class Framer {
  private readonly buf = new StreamBuffer();

  constructor(
    private readonly maxMessage: number,
    /** Startup-phase messages have a length word but no type byte. */
    public startup = false,
  ) {}

  push(chunk: Buffer): void {
    this.buf.append(chunk);
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.buf.length;
  }

  /** The bytes received and not yet returned as a message, taken out of the framer. */
  rest(): Buffer {
    return this.buf.takeAll();
  }

  next(): Frame | null {
    const head = this.startup ? 4 : 5;
    const at = this.buf.contiguous(head);
    if (at < 0) return null;
    const b = this.buf.front;
    const type = this.startup ? '' : String.fromCharCode(b[at]!);
    const len = b.readInt32BE(at + head - 4);
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    if (len > this.maxMessage) throw new ProtocolError(`message of ${len} bytes is larger than the ${this.maxMessage}-byte limit`);
    const total = len + head - 4;
    if (this.buf.length < total) return null;
    const raw = this.buf.take(total);
    return { type, body: raw.subarray(head), raw };
  }
}
