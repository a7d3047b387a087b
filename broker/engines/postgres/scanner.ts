// Finds message boundaries in the upstream's byte stream without copying: bytes nobody needs to look at are
// forwarded in runs, as they came. A message the relay wants (small control messages; an ErrorResponse to
// rewrite; the DataRows of a result set with something to mask) is handed over whole; when it lies within
// one read it is not copied either, and when the relay leaves it unchanged it stays in the forwarded run.
// The relay may also ask to wait (a catalog lookup): scanning stops, upstream reads pause, and the rest
// of the read is kept until the answer comes.

export interface ScanTarget {
  /** Whether the message whose header was just read must be handed to inspect() whole. */
  wants(type: string): boolean;
  /**
   * A wanted message, whole (`msg`: type, length and body). Returns the bytes to send instead (null: as it
   * came; an empty buffer: nothing), or a promise of that: nothing more is scanned until it settles.
   */
  inspect(type: string, msg: Buffer): Buffer | null | Promise<Buffer | null>;
  toClient(buf: Buffer): void;
  pauseUpstream(): void;
  resumeUpstream(): void;
  fail(e: Error): void;
}

export class UpstreamScanner {
  private readonly header = Buffer.alloc(5);
  private headerLen = 0;
  private inBody = false;
  private type = '';
  private remaining = 0;
  /** The wanted message being read: its bytes from earlier reads (null: the current message is not wanted). */
  private held: Buffer[] | null = null;
  private waiting = false;
  private readonly queue: Buffer[] = [];

  constructor(private readonly target: ScanTarget) {}

  /** Waiting for the relay: upstream reads must stay paused. */
  get suspended(): boolean {
    return this.waiting;
  }

  scan(chunk: Buffer): void {
    if (this.waiting) {
      this.queue.push(chunk);
      this.target.pauseUpstream();
      return;
    }
    const out: Buffer[] = [];
    let runStart = 0; // start of the run of bytes forwarded untouched
    let msgStart = 0; // where the wanted message's bytes in this read begin
    const flushRun = (end: number) => {
      if (end > runStart) out.push(chunk.subarray(runStart, end));
    };
    let i = 0;
    while (i < chunk.length) {
      if (!this.inBody) {
        const headerStart = i;
        const take = Math.min(5 - this.headerLen, chunk.length - i);
        chunk.copy(this.header, this.headerLen, i, i + take);
        this.headerLen += take;
        i += take;
        if (this.headerLen < 5) {
          // A header split across reads: hold its first bytes until its type is known.
          flushRun(headerStart);
          runStart = chunk.length;
          break;
        }
        const split = take < 5;
        this.type = String.fromCharCode(this.header[0]!);
        this.remaining = this.header.readInt32BE(1) - 4;
        this.inBody = true;
        if (this.target.wants(this.type)) {
          this.held = split ? [Buffer.from(this.header)] : [];
          msgStart = split ? i : headerStart;
          if (split) runStart = i;
        } else {
          this.held = null;
          if (split) {
            flushRun(headerStart);
            out.push(Buffer.from(this.header));
            runStart = i;
          }
        }
      }
      const take = Math.min(this.remaining, chunk.length - i);
      i += take;
      this.remaining -= take;
      if (this.remaining > 0) break; // the message goes on in the next read
      this.inBody = false;
      this.headerLen = 0;
      const held = this.held;
      if (!held) continue;
      this.held = null;
      const contiguous = held.length === 0;
      const msg = contiguous ? chunk.subarray(msgStart, i) : Buffer.concat([...held, chunk.subarray(msgStart, i)]);
      const r = this.target.inspect(this.type, msg);
      if (r === null && contiguous) continue; // unchanged: it stays in the run
      if (contiguous) flushRun(msgStart);
      runStart = i;
      if (r instanceof Promise) return this.wait(out, r, msg, chunk.subarray(i));
      const send = r ?? msg;
      if (send.length) out.push(send);
    }
    if (this.held) {
      // A wanted message continues in the next read: keep its bytes out of the run.
      this.held.push(chunk.subarray(msgStart));
      flushRun(msgStart);
    } else {
      flushRun(chunk.length);
    }
    for (const b of out) this.target.toClient(b);
  }

  /** Send what came before, then hold everything after until `r` settles. */
  private wait(out: Buffer[], r: Promise<Buffer | null>, msg: Buffer, rest: Buffer): void {
    for (const b of out) this.target.toClient(b);
    this.waiting = true;
    this.target.pauseUpstream();
    if (rest.length) this.queue.push(rest);
    r.then((send) => {
      const b = send ?? msg;
      if (b.length) this.target.toClient(b);
      this.waiting = false;
      for (const c of this.queue.splice(0)) this.scan(c);
      if (!this.waiting) this.target.resumeUpstream();
    }).catch((e: unknown) => this.target.fail(e instanceof Error ? e : new Error(String(e))));
  }
}
