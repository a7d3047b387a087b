// The journal's record format: what a reader finds in bytes a crash may have cut anywhere.
import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecords, type JournalEvent } from '../../../broker/audit/journal/format.js';

const events: JournalEvent[] = [
  { t: 'end', id: 's_one', reason: 'client closed', at: 1 },
  {
    t: 'stmt',
    id: 7,
    sessionId: 's_one',
    seq: 1,
    sql: "SELECT 'é', '日本'",
    protocol: 'simple',
    kinds: ['read'],
    decision: 'allow',
    ruleId: 'r',
    message: null,
    startedAt: 2,
    approvalId: null,
  },
  {
    t: 'done',
    id: 7,
    durationMs: 0.5,
    tag: 'SELECT 1',
    rows: 1,
    error: null,
    sample: { columns: [{ name: 'a', type: 'text' }], rows: [['x']], truncated: false, bytes: 1 },
  },
];
const bytes = encodeRecords(events.map((e) => JSON.stringify(e)));

describe('journal records', () => {
  it('decode back to the events written, multi-byte text included', () => {
    expect(decodeRecords(bytes)).toEqual({ events, end: bytes.length, stop: null });
  });

  it('cut anywhere, give exactly the whole records before the cut and say the next one is partial', () => {
    const ends = [0];
    for (let i = 1; i <= events.length; i++) ends.push(encodeRecords(events.slice(0, i).map((e) => JSON.stringify(e))).length);
    for (let cut = 1; cut < bytes.length; cut++) {
      const d = decodeRecords(bytes.subarray(0, cut));
      const whole = ends.filter((e) => e <= cut).length - 1;
      expect(d.events).toEqual(events.slice(0, whole));
      expect(d.end).toBe(ends[whole]);
      expect(d.stop).toBe(cut === ends[whole] ? null : 'partial');
    }
  });

  it('stop at a record whose bytes changed after it was written (checksum)', () => {
    const second = encodeRecords([JSON.stringify(events[0])]).length;
    for (const at of [second + 4, second + 9, bytes.length - 2]) {
      const bad = Buffer.from(bytes);
      bad[at] = bad[at]! ^ 0x20;
      const d = decodeRecords(bad);
      expect(d.stop).toBe('corrupt');
      expect(d.events.length).toBeLessThan(events.length);
      expect(d.events).toEqual(events.slice(0, d.events.length));
    }
  });

  it('treat an absurd length as corruption, not as a record still to come', () => {
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(0xfffffff0, 0);
    expect(decodeRecords(bad)).toEqual({ events: [], end: 0, stop: 'corrupt' });
  });
});
