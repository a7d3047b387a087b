// The journal's directory: numbered segment files (`000000000001.jnl`, ...), written one after another.
// The writer only appends to the newest; the indexer reads the oldest not yet indexed and removes a
// segment once everything in it is in the store.
import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAGIC } from './format.js';

const NAME = /^(\d{12})\.jnl$/;

export function segmentPath(dir: string, n: number): string {
  return join(dir, `${String(n).padStart(12, '0')}.jnl`);
}

/** The segment numbers in `dir`, ascending (empty when the directory does not exist yet). */
export function listSegments(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: number[] = [];
  for (const name of names) {
    const m = NAME.exec(name);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** Removes a segment; one already gone is fine. */
export function removeSegment(dir: string, n: number): void {
  try {
    unlinkSync(segmentPath(dir, n));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Reads a segment from byte `from` (at least past its MAGIC) up to `max` bytes. `null` when the file is
 * gone. `badMagic`: the file does not start with MAGIC (not a journal segment, or torn before its header).
 */
export function readSegment(dir: string, n: number, from: number, max: number): { data: Buffer; size: number; start: number; badMagic: boolean } | null {
  let fd: number;
  try {
    fd = openSync(segmentPath(dir, n), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(MAGIC.length);
    const got = readSync(fd, head, 0, head.length, 0);
    const badMagic = got < MAGIC.length ? size > 0 && !MAGIC.subarray(0, got).equals(head.subarray(0, got)) : !head.equals(MAGIC);
    const start = Math.max(from, MAGIC.length);
    const length = Math.max(0, Math.min(max, size - start));
    const data = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const r = readSync(fd, data, read, length - read, start + read);
      if (r === 0) break;
      read += r;
    }
    return { data: read === length ? data : data.subarray(0, read), size, start, badMagic };
  } finally {
    closeSync(fd);
  }
}

/**
 * The journal's id, made once and kept in its folder (`journal.id`): the store keeps each journal's indexed
 * position under it, so the brokers of a fleet, each with its own journal, share one store.
 */
export function journalId(dir: string): string {
  const file = join(dir, 'journal.id');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(dir, { recursive: true });
  const id = `j_${randomUUID()}`;
  try {
    writeFileSync(file, `${id}\n`, { flag: 'wx' });
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw e;
  }
}
