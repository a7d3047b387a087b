// jit_journal_lag_bytes: how much of what the journal's writer wrote the indexer has not reported in the
// store, across segment files, read from a real journal directory written by the real writer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listSegments } from '../../broker/audit/journal/segments.js';
import { JournalWriter } from '../../broker/audit/journal/writer.js';
import { journalLagBytes } from '../../broker/metrics/journal.js';
import type { JournalPosition } from '../../broker/store/types.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const end = (i: number) => ({ t: 'end', id: `s_${i}`, reason: 'x'.repeat(300), at: 0 }) as const;

describe('journal lag', () => {
  it('is every byte written before the indexer reports, what is left after a partial report, and 0 once caught up', async () => {
    dir = mkdtempSync(join(tmpdir(), 'jit-lag-'));
    // Small segments: the records span several files.
    const writer = new JournalWriter({ dir, segment: 1, durability: 'os', segmentBytes: 1000 });
    const positions: JournalPosition[] = [];
    for (let i = 0; i < 10; i++) {
      await writer.append(end(i));
      positions.push(writer.position);
    }
    expect(listSegments(dir).length).toBeGreaterThan(2);
    let indexed: JournalPosition | null = null;
    const probe = { dir, written: () => writer.position, indexed: () => indexed, stats: writer.stats };
    expect(journalLagBytes(probe)).toBe(writer.stats.bytes);
    // Ten records of one size: once the indexer reported the first three, seven are behind.
    expect(writer.stats.bytes % 10).toBe(0);
    indexed = positions[2]!;
    expect(journalLagBytes(probe)).toBe((writer.stats.bytes / 10) * 7);
    indexed = positions[0]!;
    expect(journalLagBytes(probe)).toBe((writer.stats.bytes / 10) * 9);
    // Caught up.
    indexed = writer.position;
    expect(journalLagBytes(probe)).toBe(0);
    await writer.close();
  });
});
