// The audit journal's bytes. A segment file starts with MAGIC; then records, each
//   u32 LE payload length | u32 LE CRC32C of the payload | payload (a JournalEvent as UTF-8 JSON).
// Length-prefixed, so a reader finds the next record without parsing; checksummed, so a record torn by a
// crash (a short write, a page that never reached the disk) is told from a whole one. Nothing else: a
// segment is only ever appended to, and read front to back.
import { crc32c } from '@node-rs/crc32';
import type { JournalEvent } from '../../store/types.js';

export type { JournalEvent, JournalPosition } from '../../store/types.js';

/** The first bytes of every segment: the format's name and version. */
export const MAGIC = Buffer.from('JITJNL01', 'latin1');
export const HEADER = 8;
/** A record longer than this is corrupt, not large (a statement text is bounded well below it). */
export const MAX_RECORD = 256 * 1024 * 1024;

/** Encodes events into one buffer of whole records: what a single write() appends. */
export function encodeRecords(payloads: readonly string[]): Buffer {
  let size = 0;
  const lengths = new Array<number>(payloads.length);
  for (let i = 0; i < payloads.length; i++) {
    lengths[i] = Buffer.byteLength(payloads[i]!, 'utf8');
    size += HEADER + lengths[i]!;
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < payloads.length; i++) {
    const n = lengths[i]!;
    buf.writeUInt32LE(n, at);
    buf.write(payloads[i]!, at + HEADER, n, 'utf8');
    buf.writeUInt32LE(crc32c(buf.subarray(at + HEADER, at + HEADER + n)), at + 4);
    at += HEADER + n;
  }
  return buf;
}

export interface Decoded {
  events: JournalEvent[];
  /** Offset just past the last whole, valid record (relative to the buffer). */
  end: number;
  /**
   * Why decoding stopped before the buffer's end: `partial` (the next record is not all there yet: a
   * write in progress, or a crash in the middle of one), `corrupt` (its checksum or length is wrong).
   */
  stop: 'partial' | 'corrupt' | null;
}

/** Decodes whole records from `buf` (which starts at a record boundary), at most `max` of them. */
export function decodeRecords(buf: Buffer, max = Number.POSITIVE_INFINITY): Decoded {
  const events: JournalEvent[] = [];
  let at = 0;
  while (events.length < max) {
    if (buf.length - at < HEADER) return { events, end: at, stop: at < buf.length ? 'partial' : null };
    const n = buf.readUInt32LE(at);
    if (n > MAX_RECORD) return { events, end: at, stop: 'corrupt' };
    if (buf.length - at - HEADER < n) return { events, end: at, stop: 'partial' };
    const payload = buf.subarray(at + HEADER, at + HEADER + n);
    if (crc32c(payload) !== buf.readUInt32LE(at + 4)) return { events, end: at, stop: 'corrupt' };
    let event: JournalEvent;
    try {
      event = JSON.parse(payload.toString('utf8')) as JournalEvent;
    } catch {
      return { events, end: at, stop: 'corrupt' }; // a checksum that matches bytes we did not write
    }
    events.push(event);
    at += HEADER + n;
  }
  return { events, end: at, stop: null };
}
