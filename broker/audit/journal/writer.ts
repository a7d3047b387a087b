// The journal's writer: every event appended during one turn of the event loop leaves in ONE write() to the
// newest segment, and each append's promise settles only once that write returned (`os`: the bytes are in
// the kernel, so they survive `kill -9` of the broker) or, with `fsync`, once fdatasync() made them durable
// (they survive a power loss). A statement is forwarded only after its record's promise resolved.
import { closeSync, fdatasync, ftruncateSync, mkdirSync, openSync, write, writeSync } from 'node:fs';
import { encodeRecords, MAGIC, type JournalEvent, type JournalPosition } from './format.js';
import { segmentPath } from './segments.js';

export type Durability = 'os' | 'fsync';

/** Longest an outcome waits for a statement record to share its write. */
const LAZY_MS = 20;

export interface WriterOptions {
  dir: string;
  /** The segment to create first: above every segment already in `dir` and every one the store indexed. */
  segment: number;
  durability: Durability;
  /** A segment this large is closed and the next one begun. */
  segmentBytes: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** What the writer did since it opened (the bench prints records and bytes per statement from it). */
export interface WriterStats {
  records: number;
  bytes: number;
  writes: number;
  failures: number;
}

export class JournalWriter {
  private fd: number | null = null;
  private segment: number;
  /** Bytes of the current segment known written whole. */
  private size = 0;
  private payloads: string[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private closed = false;
  private last: JournalPosition;
  readonly stats: WriterStats = { records: 0, bytes: 0, writes: 0, failures: 0 };
  /** The timer that writes outcomes when no statement record comes to take them along. */
  private lazy: NodeJS.Timeout | null = null;
  private readonly flushCallback = () => {
    this.scheduled = false;
    if (this.lazy) clearTimeout(this.lazy);
    this.lazy = null;
    void this.flush();
  };

  constructor(private readonly opts: WriterOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.segment = opts.segment;
    this.last = { segment: opts.segment, offset: MAGIC.length };
    this.openSegment(); // a journal that cannot be written refuses to start, not at the first statement
  }

  /** Just past the last record written: every record whose append settled lies before it. */
  get position(): JournalPosition {
    return this.last;
  }

  /**
   * Appends one event. The JSON is made now (a value that cannot be serialised fails alone); the
   * promise resolves once the write holding it returned, and rejects when that write failed. An `urgent`
   * event (a statement's record: it waits for this) is written at the end of this turn; another (an
   * outcome: nothing waits for it) rides along with the next urgent write, or within LAZY_MS.
   */
  append(event: JournalEvent, urgent = true): Promise<void> {
    if (this.closed) return Promise.reject(new Error('audit journal: closed'));
    let payload: string;
    try {
      payload = JSON.stringify(event);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      this.payloads.push(payload);
      this.waiters.push({ resolve, reject });
      if (urgent) {
        if (!this.scheduled) {
          this.scheduled = true;
          // After this turn's I/O callbacks have appended theirs: one write for all of them.
          setImmediate(this.flushCallback);
        }
      } else if (!this.scheduled && !this.lazy) this.lazy = setTimeout(this.flushCallback, LAZY_MS);
    });
  }

  /** Writes what is queued now (`os`), or once the write in progress is done (`fsync`). */
  flush(): Promise<void> {
    if (this.opts.durability === 'fsync') return this.flushDurable();
    this.writeQueued();
    return Promise.resolve();
  }

  private take(): { buf: Buffer; waiters: Waiter[]; records: number } | null {
    if (this.payloads.length === 0) return null;
    const payloads = this.payloads;
    const waiters = this.waiters;
    this.payloads = [];
    this.waiters = [];
    try {
      return { buf: encodeRecords(payloads), waiters, records: payloads.length };
    } catch (e) {
      for (const w of waiters) w.reject(e);
      return null;
    }
  }

  private writeQueued(): void {
    const batch = this.take();
    if (!batch) return;
    try {
      this.ensureOpen();
      let done = 0;
      while (done < batch.buf.length) done += writeSync(this.fd!, batch.buf, done, batch.buf.length - done, this.size + done);
      this.written(batch.buf.length, batch.records);
    } catch (e) {
      this.failed();
      for (const w of batch.waiters) w.reject(e);
      return;
    }
    for (const w of batch.waiters) w.resolve();
  }

  private flushDurable(): Promise<void> {
    if (this.writing) return this.writing.then(() => this.flushDurable());
    const batch = this.take();
    if (!batch) return Promise.resolve();
    this.writing = new Promise<void>((settle) => {
      const fail = (e: unknown) => {
        this.failed();
        for (const w of batch.waiters) w.reject(e);
        settle();
      };
      try {
        this.ensureOpen();
      } catch (e) {
        return fail(e);
      }
      const fd = this.fd!;
      const at = this.size;
      // Off the event loop: the thread pool writes and syncs while this turn's statements queue the next batch.
      write(fd, batch.buf, 0, batch.buf.length, at, (err, n) => {
        if (err || n !== batch.buf.length) return fail(err ?? new Error(`audit journal: short write (${n} of ${batch.buf.length} bytes)`));
        fdatasync(fd, (syncErr) => {
          if (syncErr) return fail(syncErr);
          this.written(batch.buf.length, batch.records);
          for (const w of batch.waiters) w.resolve();
          settle();
        });
      });
    }).finally(() => {
      this.writing = null;
      // What was appended while this batch was on disk goes next.
      if (this.payloads.length && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushCallback);
      }
    });
    return this.writing;
  }

  private written(bytes: number, records: number): void {
    this.size += bytes;
    this.stats.records += records;
    this.stats.bytes += bytes;
    this.stats.writes++;
    this.last = { segment: this.segment, offset: this.size };
    if (this.size >= this.opts.segmentBytes) {
      this.rotate();
      try {
        this.openSegment(); // now, so the indexer sees the segment it has finished is complete
      } catch {
        // the next write tries again (and fails its statements if it cannot)
      }
    }
  }

  /**
   * A write failed (disk full, EIO): its records may be partly on disk. Cut them off, so the next record
   * follows the last whole one; if even that fails, the next write starts a new segment.
   */
  private failed(): void {
    this.stats.failures++;
    if (this.fd === null) return;
    try {
      ftruncateSync(this.fd, this.size);
    } catch {
      this.rotate();
    }
  }

  private openSegment(): void {
    const fd = openSync(segmentPath(this.opts.dir, this.segment), 'wx');
    try {
      writeSync(fd, MAGIC, 0, MAGIC.length, 0);
      if (this.opts.durability === 'fsync') fdatasync(fd, () => {});
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
    this.size = MAGIC.length;
  }

  private ensureOpen(): void {
    if (this.fd === null) this.openSegment();
  }

  /** Closes the current segment; the next write opens the following one. */
  private rotate(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // nothing more will be written to it either way
      }
    }
    this.fd = null;
    this.segment++;
    this.size = 0;
  }

  /** Writes what is still queued, then closes the segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.lazy) clearTimeout(this.lazy);
    this.lazy = null;
    await this.flush();
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
