// The journal's indexer: reads the segments the writer appended to, from the position the store last
// recorded, and applies their events to the store in large transactions (Store.ingest), each with the
// position it read up to, so a restart resumes exactly there. It removes a segment once it is all in the
// store. The same class runs in a worker thread (worker.ts) for a file store, or in the broker's own
// thread for an in-memory one; at startup the broker runs it first to recover what a crash left behind.
import { ftruncateSync, openSync, closeSync } from 'node:fs';
import type { Store } from '../../store/types.js';
import { decodeRecords, HEADER, MAGIC, type JournalPosition } from './format.js';
import { listSegments, readSegment, removeSegment, segmentPath } from './segments.js';

/** Bytes read from a segment per step (more when one record is larger). */
const READ_CHUNK = 8 * 1024 * 1024;

export interface IndexerOptions {
  dir: string;
  /** The journal's id (see journalId()): its position in the store is kept under it. */
  journal: string;
  store: Pick<Store, 'ingest' | 'journalPosition'>;
  /** Most events applied in one store transaction. Default 20000. */
  batch?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export function comparePositions(a: JournalPosition, b: JournalPosition): number {
  return a.segment - b.segment || a.offset - b.offset;
}

export class JournalIndexer {
  private pos: JournalPosition | null;
  /** Events applied since open, and events the store skipped (see Store.ingest). */
  indexedEvents = 0;
  skippedEvents = 0;

  private constructor(
    private readonly opts: IndexerOptions,
    pos: JournalPosition | null,
  ) {
    this.pos = pos;
  }

  static async open(opts: IndexerOptions): Promise<JournalIndexer> {
    return new JournalIndexer(opts, await opts.store.journalPosition(opts.journal));
  }

  /** How far the store has the journal: everything before this position is in it. */
  get position(): JournalPosition | null {
    return this.pos;
  }

  /**
   * Applies everything in the journal now. `recover` (at startup, with no writer running): a record torn
   * at the end of the newest segment — a crash in the middle of a write — is cut off the file.
   */
  async catchUp(recover = false): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.step(recover);
      total += r.events;
      if (!r.more) return total;
    }
  }

  /** One transaction's worth: `more` when there may be more to read right away. */
  private async step(recover: boolean): Promise<{ events: number; more: boolean }> {
    const { dir, log } = this.opts;
    const segs = listSegments(dir);
    const pos = this.pos;
    const cur = segs.find((n) => n >= (pos?.segment ?? 0));
    if (cur === undefined) return { events: 0, more: false };
    // Segments below the position are in the store: a removal that failed earlier is done now.
    for (const n of segs) if (n < cur || (pos && n < pos.segment)) removeSegment(dir, n);
    const from = pos && pos.segment === cur ? pos.offset : MAGIC.length;
    const next = segs.find((n) => n > cur);
    let max = READ_CHUNK;
    for (;;) {
      const r = readSegment(dir, cur, from, max);
      if (r === null) return { events: 0, more: next !== undefined };
      if (r.badMagic) {
        log?.('audit journal: a segment does not start as one; skipping it', { segment: cur, bytes: r.size });
        if (next === undefined) return { events: 0, more: false };
        return this.moveTo(cur, next);
      }
      const d = decodeRecords(r.data, this.opts.batch ?? 20_000);
      const end = r.start + d.end;
      if (d.events.length > 0) {
        const skipped = await this.opts.store.ingest(this.opts.journal, d.events, { segment: cur, offset: end });
        this.pos = { segment: cur, offset: end };
        this.indexedEvents += d.events.length;
        if (skipped) {
          this.skippedEvents += skipped;
          log?.('audit journal: events the store could not apply were skipped', { segment: cur, skipped });
        }
        return { events: d.events.length, more: true };
      }
      // A record larger than what was read: read it whole.
      if (d.stop === 'partial' && r.data.length === max && r.data.length >= HEADER) {
        max = HEADER + r.data.readUInt32LE(0);
        continue;
      }
      const tail = r.size - end;
      if (next !== undefined) {
        // The writer has moved on: this segment is complete. Bytes after its last whole record are a write
        // that failed and could not be cut (see JournalWriter.failed): nothing of them was acknowledged.
        if (tail > 0) log?.('audit journal: cut a damaged tail off a finished segment', { segment: cur, bytes: tail });
        return this.moveTo(cur, next);
      }
      if (recover && tail > 0) {
        // The newest segment ends in a record torn by a crash: its statement was never forwarded (its append
        // never settled), so cutting it loses nothing that ran.
        const fd = openSync(segmentPath(dir, cur), 'r+');
        try {
          ftruncateSync(fd, end);
        } finally {
          closeSync(fd);
        }
        log?.('audit journal: cut a torn record off the end of the journal', { segment: cur, offset: end, bytes: tail });
      }
      // The newest segment, read to its end (or to a record still being written): nothing more for now.
      if (!this.pos || comparePositions(this.pos, { segment: cur, offset: end }) < 0) this.pos = { segment: cur, offset: end };
      return { events: 0, more: false };
    }
  }

  /** Records that `cur` is all in the store, then removes it. */
  private async moveTo(cur: number, next: number): Promise<{ events: number; more: boolean }> {
    const pos = { segment: next, offset: MAGIC.length };
    await this.opts.store.ingest(this.opts.journal, [], pos);
    this.pos = pos;
    removeSegment(this.opts.dir, cur);
    return { events: 0, more: true };
  }
}
