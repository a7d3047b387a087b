// The bytes of one stream as they arrive in chunks, for a framer to cut into messages: both engines' client
// framers (postgres/framing.ts, mysql/framing.ts) keep one. Protocol-agnostic: it knows spans of bytes, and
// the framer reads its own headers through `contiguous()` and `front`.
//
// Cost. A chunk is kept as it came, never copied when appended. A span lying within one chunk — the common
// case, a whole small message in one read — is handed out as a subarray of that chunk. Only a span that lies
// across chunks is copied, once it is all there, into a scratch buffer: a message of 64 MB arriving in 64 KB
// reads is copied once (not once per read), and one split by a read boundary costs a copy of itself alone.
// The scratch grows geometrically (a span made contiguous a part at a time, such as a MySQL message of many
// packets, is copied O(1) times per byte); it is compacted — its unread bytes moved to its start — only when
// nothing it holds was handed out by take(), and otherwise replaced by a new one.
//
// Lifetime of what it hands out:
//   - take(n), takeAll(): the buffer never writes those bytes again. A view stays valid for as long as the
//     caller keeps it — across later appends, while a statement awaits its decision, in a socket's write
//     queue (a corked or full socket keeps the Buffer it was given, not a copy) — and pins the memory it lies
//     in (its chunk, or a scratch buffer) while it is held.
//   - front (at the offset contiguous() returned) and peek(n): a window to read a header through, valid only
//     until the next append, contiguous, peek, take, skip or takeAll; the bytes under it may be moved after.
//
// Memory. The scratch is made only when a span lies across chunks, and let go as soon as the stream has no
// unread bytes: an idle stream (a session between statements) holds no buffer of its own, whatever size its
// last message was — the scratch of a 200 KB message is not kept for a client that then idles for hours. While
// bytes are still unread (a busy pipeline), the scratch is reused for later spans, unless it is larger than
// KEEP_SCRATCH: that one is let go once the stream has read past it.

const EMPTY = Buffer.alloc(0);
/** The least a scratch buffer is made (many small spans then share one allocation). */
const MIN_SCRATCH = 16 * 1024;
/** A scratch buffer above this size is not kept for later spans once read past. */
const KEEP_SCRATCH = 1024 * 1024;

export class StreamBuffer {
  /** The front segment: its bytes [pos, end) are the first unread ones. A chunk as it came, or the scratch. */
  private cur: Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  /** Chunks after the front, unread, from queue[qh] on. */
  private queue: Buffer[] = [];
  private qh = 0;
  private total = 0;
  /** Where spans across chunks are made contiguous; bytes are written to it only at or after `scratchEnd`. */
  private scratch: Buffer | null = null;
  private scratchEnd = 0;
  /** take() handed out bytes of the scratch: it is then never written below `scratchEnd` again. */
  private lent = false;

  /** Bytes appended and not yet taken or skipped. */
  get length(): number {
    return this.total;
  }

  /** The buffer contiguous() returned an offset into; see the lifetime rule above. */
  get front(): Buffer {
    return this.cur;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.total === 0) {
      this.leaveFront();
      this.cur = chunk;
      this.pos = 0;
      this.end = chunk.length;
    } else {
      this.queue.push(chunk);
    }
    this.total += chunk.length;
  }

  /**
   * Make the next `n` bytes contiguous in `front` and return their offset there, or -1 while fewer than `n`
   * are buffered (then nothing is copied: a large message is copied once, when it is all there).
   */
  contiguous(n: number): number {
    if (this.end - this.pos >= n) return this.pos;
    if (this.total < n) return -1;
    this.gather(n);
    return this.pos;
  }

  /** A window on the next `n` bytes (null while fewer are buffered), valid until the buffer next changes. */
  peek(n: number): Buffer | null {
    const at = this.contiguous(n);
    return at < 0 ? null : this.cur.subarray(at, at + n);
  }

  /** The next `n` bytes (n ≤ length), consumed: a view that stays valid as long as the caller keeps it. */
  take(n: number): Buffer {
    const at = this.contiguous(n);
    if (at < 0) throw new RangeError(`take(${n}) with ${this.total} bytes buffered`);
    const view = this.cur.subarray(at, at + n);
    if (this.cur === this.scratch) this.lent = true;
    this.pos += n;
    this.total -= n;
    if (this.pos === this.end) this.advance();
    return view;
  }

  /** Drop up to `n` bytes without looking at them (nothing is copied); returns how many were dropped. */
  skip(n: number): number {
    const dropped = Math.min(n, this.total);
    let left = dropped;
    while (left > 0) {
      const k = Math.min(left, this.end - this.pos);
      this.pos += k;
      this.total -= k;
      left -= k;
      if (this.pos === this.end) this.advance();
    }
    return dropped;
  }

  /** Everything buffered, consumed (a view when it lies in one segment, else a copy); valid as long as kept. */
  takeAll(): Buffer {
    if (this.total === 0) return EMPTY;
    let all: Buffer;
    if (this.qh === this.queue.length) {
      all = this.cur.subarray(this.pos, this.end);
      if (this.cur === this.scratch) this.lent = true;
    } else {
      all = Buffer.concat([this.cur.subarray(this.pos, this.end), ...this.queue.slice(this.qh)], this.total);
    }
    this.cur = EMPTY;
    this.pos = this.end = this.total = 0;
    this.queue = [];
    this.qh = 0;
    this.dropScratch();
    return all;
  }

  /** The front is read to its end: the next queued chunk becomes the front. */
  private advance(): void {
    this.leaveFront();
    if (this.qh < this.queue.length) {
      const next = this.queue[this.qh]!;
      this.queue[this.qh++] = EMPTY;
      this.cur = next;
      this.pos = 0;
      this.end = next.length;
      if (this.qh === this.queue.length) {
        this.queue.length = 0;
        this.qh = 0;
      } else if (this.qh >= 1024 && this.qh * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.qh);
        this.qh = 0;
      }
    } else {
      this.cur = EMPTY;
      this.pos = this.end = 0;
      this.dropScratch();
    }
  }

  /** Nothing is unread: the scratch goes (views handed out keep what they lie in); the next span makes another. */
  private dropScratch(): void {
    this.scratch = null;
    this.scratchEnd = 0;
    this.lent = false;
  }

  /** Whether the buffer holds a scratch buffer now (for tests: an idle stream holds none). */
  get holdsScratch(): boolean {
    return this.scratch !== null;
  }

  /** The front is about to be replaced: a large scratch buffer is not kept for later (views keep it while held). */
  private leaveFront(): void {
    if (this.cur === this.scratch && this.scratch.length > KEEP_SCRATCH) this.dropScratch();
  }

  /** Copy the first `n` bytes (all buffered, not all in the front) into the scratch, which becomes the front. */
  private gather(n: number): void {
    const have = this.end - this.pos;
    let s = this.scratch;
    if (s !== null && this.cur === s) {
      // A span being made contiguous a part at a time: go on past its end, compact, or move to a larger scratch.
      if (s.length - this.end < n - have) {
        if (!this.lent && s.length >= n) {
          s.copyWithin(0, this.pos, this.end);
        } else {
          const t = Buffer.allocUnsafe(Math.max(n, 2 * s.length));
          s.copy(t, 0, this.pos, this.end);
          this.cur = this.scratch = s = t;
          this.lent = false;
        }
        this.pos = 0;
        this.end = have;
      }
    } else {
      // The front is a chunk: its unread bytes go to the scratch, past anything the scratch has lent.
      if (s !== null && !this.lent) this.scratchEnd = 0;
      if (s === null || s.length - this.scratchEnd < n) {
        this.scratch = s = Buffer.allocUnsafe(Math.max(n, MIN_SCRATCH));
        this.scratchEnd = 0;
        this.lent = false;
      }
      this.cur.copy(s, this.scratchEnd, this.pos, this.end);
      this.cur = s;
      this.pos = this.scratchEnd;
      this.end = this.pos + have;
    }
    let need = n - have;
    while (need > 0) {
      const c = this.queue[this.qh]!;
      const k = Math.min(need, c.length);
      c.copy(s, this.end, 0, k);
      this.end += k;
      need -= k;
      if (k === c.length) this.queue[this.qh++] = EMPTY;
      else this.queue[this.qh] = c.subarray(k);
    }
    if (this.qh === this.queue.length) {
      this.queue.length = 0;
      this.qh = 0;
    }
    this.scratchEnd = this.end;
  }
}
