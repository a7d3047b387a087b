// Finds packet boundaries in the server's byte stream without copying: runs of untouched bytes are
// forwarded as they came; each small packet is shown to `Responses` in place (a subarray of the read);
// long rows nobody rewrites are streamed through; only packets spanning reads are copied to be looked into.
import { MAX_PACKET } from './protocol.js';
import type { Responses } from './responses.js';

export class UpstreamScanner {
  private readonly header = Buffer.alloc(4);
  private headerLen = 0;
  /** Inside a packet's payload, with this many bytes to go. */
  private inPacket = false;
  private remaining = 0;
  /** The current packet is 0xffffff long: the logical message goes on in the next packet. */
  private continues = false;
  private streaming = false;
  private msgSeq = 0;
  /** A logical message being collected across reads: its payload parts, and its bytes as they came. */
  private parts: Buffer[] = [];
  private raw: Buffer[] = [];

  constructor(
    private readonly responses: Responses,
    private readonly toClient: (b: Buffer) => void,
  ) {}

  scan(chunk: Buffer): void {
    const out: Buffer[] = [];
    let run = 0; // start of the bytes forwarded untouched
    const flush = (end: number) => {
      if (end > run) out.push(chunk.subarray(run, end));
      run = end;
    };
    const afterMessage = (at: number) => {
      const extra = this.responses.takeAfter();
      if (extra) {
        flush(at);
        out.push(...extra);
      }
    };
    let i = 0;
    while (i < chunk.length) {
      if (!this.inPacket) {
        const hs = i;
        const take = Math.min(4 - this.headerLen, chunk.length - i);
        chunk.copy(this.header, this.headerLen, i, i + take);
        this.headerLen += take;
        i += take;
        if (this.headerLen < 4) {
          // A header split across reads: hold its first bytes until the packet is known.
          flush(hs);
          run = chunk.length;
          break;
        }
        const split = take < 4;
        this.headerLen = 0;
        const len = this.header.readUIntLE(0, 3);
        const seq = this.header[3]!;
        const continuation = this.continues;
        this.continues = len === MAX_PACKET;
        this.inPacket = true;
        this.remaining = len;
        if (!continuation) {
          this.msgSeq = seq;
          this.streaming = this.responses.streamable(len);
          if (this.streaming) this.responses.streamedRow();
        }
        if (this.streaming) {
          if (split) {
            flush(hs);
            out.push(Buffer.from(this.header));
            run = i;
          }
        } else if (!split && !continuation && !this.continues && chunk.length - i >= len) {
          // The common case: a whole small packet in this read, looked into where it lies.
          i += len;
          this.inPacket = false;
          const replaced = this.responses.packet(chunk.subarray(i - len, i), seq);
          if (replaced) {
            flush(hs);
            out.push(replaced);
            run = i;
          }
          afterMessage(i);
          continue;
        } else {
          flush(hs);
          this.raw.push(split ? Buffer.from(this.header) : chunk.subarray(hs, i));
          run = i;
        }
      }
      const take = Math.min(this.remaining, chunk.length - i);
      if (!this.streaming && take > 0) {
        const part = chunk.subarray(i, i + take);
        this.parts.push(part);
        this.raw.push(part);
      }
      i += take;
      this.remaining -= take;
      if (!this.streaming) run = i;
      if (this.remaining > 0) break;
      this.inPacket = false;
      if (this.continues) continue;
      if (!this.streaming) {
        // Copied: the read it came in may be reused once this returns.
        const payload = Buffer.concat(this.parts);
        const replaced = this.responses.packet(payload, this.msgSeq);
        out.push(replaced ?? Buffer.concat(this.raw));
        this.parts = [];
        this.raw = [];
      }
      this.streaming = false;
      afterMessage(i);
    }
    flush(chunk.length);
    for (const b of out) this.toClient(b);
  }
}
