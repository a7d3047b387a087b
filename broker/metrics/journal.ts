// How far the audit journal's indexer is behind its writer, in bytes: read at scrape time from the writer's
// position, the indexer's last reported one, and the sizes of the segment files between them.
import { statSync } from 'node:fs';
import { MAGIC } from '../audit/journal/format.js';
import { listSegments, segmentPath } from '../audit/journal/segments.js';
import type { JournalPosition } from '../store/types.js';

/** What the metrics read of the journal (JournaledStore: writer.position, writer.stats, indexed). */
export interface JournalProbe {
  readonly dir: string;
  /** Just past the last record written. */
  written(): JournalPosition;
  /** Where the indexer last reported the store has reached; null before its first report. */
  indexed(): JournalPosition | null;
  readonly stats: { readonly bytes: number; readonly failures: number };
}

const sizeOf = (dir: string, segment: number): number => {
  try {
    return statSync(segmentPath(dir, segment)).size;
  } catch {
    return 0; // removed meanwhile: indexed
  }
};

/** Bytes written that the indexer has not reported in the store yet (0 when caught up). */
export function journalLagBytes(j: JournalProbe): number {
  const w = j.written();
  const i = j.indexed();
  if (i && i.segment === w.segment) return Math.max(0, w.offset - i.offset);
  if (i && i.segment > w.segment) return 0;
  // Across segments: the rest of the indexer's, the whole of those between, the writer's up to its position.
  let lag = 0;
  for (const s of listSegments(j.dir)) {
    if (s > w.segment || (i && s < i.segment)) continue;
    const from = i && s === i.segment ? i.offset : MAGIC.length;
    const to = s === w.segment ? w.offset : sizeOf(j.dir, s);
    lag += Math.max(0, to - from);
  }
  return lag;
}
