// The result sampler — the session's ResultRecorder (bounds, NULLs, binary, UTF-8 cuts, no work past the
// bounds) — and the Postgres engine's tap (DataRow / RowDescription bytes as the relay sends them to the client).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResultSampler, utf8Boundary } from '../../broker/audit/sampler.js';
import { dataRowValues, describeColumns, PgResultTap } from '../../broker/engines/postgres/sample.js';

const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const message = (type: string, body: Buffer) => Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);

/** A DataRow body: text values as UTF-8, Buffers as they are, null as SQL NULL. */
function dataRow(values: (string | Buffer | null)[]): Buffer {
  const parts: Buffer[] = [int16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(int32(-1));
    else {
      const b = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
      parts.push(int32(b.length), b);
    }
  }
  return Buffer.concat(parts);
}

function rowDescription(cols: { name: string; oid: number; format?: number }[]): Buffer {
  const parts: Buffer[] = [int16(cols.length)];
  for (const c of cols) parts.push(Buffer.from(`${c.name}\0`), int32(16384), int16(1), int32(c.oid), int16(-1), int32(-1), int16(c.format ?? 0));
  return Buffer.concat(parts);
}

/** A DataRow body through the engine's decoding into a sampler, as the tap does (a malformed row is left out). */
function pgRow(s: ResultSampler, body: Buffer, formats: readonly number[]): void {
  const values = dataRowValues(body, formats);
  if (values) s.row(values);
}

/** A tap whose statements each get a fresh sampler with these bounds. */
const tapOf = (rows: number, bytes: number) => new PgResultTap(() => new ResultSampler({ rows, bytes }));

const COLS = [
  { name: 'id', type: 'int4' },
  { name: 'name', type: 'text' },
];

describe('ResultSampler', () => {
  it('keeps the rows within both bounds, with their columns and byte count', () => {
    const s = new ResultSampler({ rows: 10, bytes: 1000 });
    s.columns(COLS);
    s.row(['1', 'alice']);
    pgRow(s, dataRow(['2', null]), []);
    expect(s.done()).toEqual({
      columns: COLS,
      rows: [
        ['1', 'alice'],
        ['2', null],
      ],
      truncated: false,
      bytes: 7,
    });
  });

  it('stops at the row bound and counts the rows left out', () => {
    const s = new ResultSampler({ rows: 3, bytes: 1000 });
    s.columns(COLS);
    for (let i = 1; i <= 3; i++) pgRow(s, dataRow([String(i), 'x']), []);
    expect(s.accepting).toBe(false);
    pgRow(s, dataRow(['4', 'x']), []);
    s.row(['5', 'x']);
    expect(s.leftOut).toBe(2);
    const sample = s.done()!;
    expect(sample.rows.map((r) => r[0])).toEqual(['1', '2', '3']);
    expect(sample.truncated).toBe(true);
  });

  it('exactly at the bound with nothing after it: not truncated', () => {
    const s = new ResultSampler({ rows: 2, bytes: 1000 });
    s.row(['a']);
    s.row(['b']);
    expect(s.done()).toMatchObject({ rows: [['a'], ['b']], truncated: false, columns: [{ name: 'column1', type: '' }] });
  });

  it('stops at the byte bound: rows are kept whole, the one that does not fit and all after it are left out', () => {
    const s = new ResultSampler({ rows: 100, bytes: 25 });
    s.columns(COLS);
    for (let i = 0; i < 5; i++) pgRow(s, dataRow(['1', '123456789']), []); // 10 bytes each
    pgRow(s, dataRow(['1', null]), []); // would fit, but sampling has stopped
    const sample = s.done()!;
    expect(sample.rows).toHaveLength(2);
    expect(sample.bytes).toBe(20);
    expect(sample.truncated).toBe(true);
  });

  it('cuts the first row when it alone is over the byte bound, on a UTF-8 character boundary', () => {
    const s = new ResultSampler({ rows: 10, bytes: 8 });
    s.columns([...COLS, { name: 'note', type: 'text' }, { name: 'n', type: 'int4' }]);
    // "ab€€x": a=1 b=1 €=3 bytes; 8 - 1 ('7') = 7 left: "ab€" (5) fits, the second € would be split;
    // the 2 bytes left go to the next value.
    pgRow(s, dataRow(['7', 'ab€€x', 'more', null]), []);
    pgRow(s, dataRow(['8', 'b', 'c', null]), []);
    const sample = s.done()!;
    expect(sample.rows).toEqual([['7', 'ab€…', 'mo…', null]]);
    expect(sample.bytes).toBe(8);
    expect(sample.truncated).toBe(true);
    // The same through the string variant.
    const t = new ResultSampler({ rows: 10, bytes: 8 });
    t.row(['7', 'ab€€x', 'more', null]);
    expect(t.done()!.rows).toEqual([['7', 'ab€…', 'mo…', null]]);
    const none = new ResultSampler({ rows: 10, bytes: 2 });
    none.row(['ab', 'cd']);
    expect(none.done()!.rows).toEqual([['ab', '…']]);
  });

  it('decodes multi-byte UTF-8 values whole, and never splits a character at any cut point', () => {
    const value = 'aé€😀z'; // 1, 2, 3, 4, 1 bytes
    const bytes = Buffer.from(value);
    const kept: string[] = [];
    for (let limit = 1; limit <= bytes.length + 1; limit++) {
      const s = new ResultSampler({ rows: 1, bytes: limit });
      pgRow(s, dataRow([value]), []);
      const v = s.done()!.rows[0]![0]!;
      const text = v.endsWith('…') ? v.slice(0, -1) : v;
      expect(text).not.toContain('\ufffd');
      expect(value.startsWith(text)).toBe(true);
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(limit);
      kept.push(text);
    }
    expect(kept).toEqual(['a', 'a', 'aé', 'aé', 'aé', 'aé€', 'aé€', 'aé€', 'aé€', 'aé€😀', value, value]);
    expect(utf8Boundary(bytes, 0, 2)).toBe(1);
    expect(utf8Boundary(bytes, 1, 2)).toBe(3);
  });

  it('binary values become \\x hex (per column or for all columns), cut on whole bytes', () => {
    const s = new ResultSampler({ rows: 10, bytes: 1000 });
    pgRow(s, dataRow(['1', Buffer.from([0xde, 0xad, 0xbe, 0xef]), null]), [0, 1, 0]);
    pgRow(s, dataRow([Buffer.from([0, 0, 0, 2]), Buffer.from([0xff]), null]), [1]);
    expect(s.done()).toMatchObject({
      rows: [
        ['1', '\\xdeadbeef', null],
        ['\\x00000002', '\\xff', null],
      ],
      bytes: 1 + 10 + 10 + 4,
      truncated: false,
    });
    const cut = new ResultSampler({ rows: 10, bytes: 7 });
    pgRow(cut, dataRow([Buffer.from([1, 2, 3, 4]), Buffer.from([5])]), [1]);
    expect(cut.done()).toMatchObject({ rows: [['\\x0102…', '…']], bytes: 6, truncated: true });
  });

  it('past a bound, a row is only counted: its bytes are never looked into', () => {
    let s: ResultSampler | null = null;
    const tap = new PgResultTap(() => (s = new ResultSampler({ rows: 1, bytes: 1000 })));
    tap.row(dataRow(['1']), [{ name: 'n', typeOid: 25 }]);
    const untouchable = dataRow(['2']);
    for (const m of ['readInt16BE', 'readInt32BE', 'toString', 'subarray', 'readUInt8'] as const) {
      Object.defineProperty(untouchable, m, { value: () => expect.unreachable(`${m} called past the bound`) });
    }
    for (let i = 0; i < 1000; i++) tap.row(untouchable, [{ name: 'n', typeOid: 25 }]);
    expect(s!.leftOut).toBe(1000);
    expect(tap.take()!.rows).toEqual([['1']]);
  });

  it('ignores a malformed DataRow, and starts afresh after finish()', () => {
    const s = new ResultSampler({ rows: 10, bytes: 100 });
    pgRow(s, Buffer.from([0]), []);
    pgRow(s, Buffer.concat([int16(2), int32(5), Buffer.from('ab')]), []);
    pgRow(s, int16(-3), []);
    expect(s.done()).toBeNull();
    s.row(['x']);
    expect(s.done()!.rows).toEqual([['x']]);
    expect(s.done()).toBeNull();
  });

  it('keeps the first result set: the rows of a later one are left out', () => {
    const s = new ResultSampler({ rows: 10, bytes: 100 });
    s.columns([{ name: 'empty', type: 'int4' }]);
    s.columns(COLS); // no rows yet: the set that had none is replaced
    s.row(['1', 'a']);
    s.columns([{ name: 'other', type: 'text' }]);
    s.row(['b']);
    expect(s.done()).toMatchObject({ columns: COLS, rows: [['1', 'a']], truncated: true });
  });

  it('refuses bounds of 0 (sampling off has no sampler)', () => {
    expect(() => new ResultSampler({ rows: 0, bytes: 10 })).toThrow(RangeError);
  });

  it('property: within bounds, a prefix of what was sent, truncated exactly when something was left out', () => {
    const value = fc.option(fc.string({ unit: 'grapheme', maxLength: 12 }), { nil: null });
    fc.assert(
      fc.property(
        fc.array(fc.array(value, { minLength: 2, maxLength: 2 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 80 }),
        (rows, maxRows, maxBytes) => {
          const s = new ResultSampler({ rows: maxRows, bytes: maxBytes });
          for (const r of rows) pgRow(s, dataRow(r), []);
          const sample = s.done();
          if (!rows.length) {
            expect(sample).toBeNull();
            return;
          }
          expect(sample!.rows.length).toBeLessThanOrEqual(maxRows);
          expect(sample!.bytes).toBeLessThanOrEqual(maxBytes);
          const kept = sample!.rows;
          const whole = kept.every((r, i) => r.every((v, j) => v === rows[i]![j]));
          if (whole) {
            expect(kept).toEqual(rows.slice(0, kept.length));
            expect(sample!.truncated).toBe(kept.length < rows.length);
          } else {
            // Only a lone first row is ever cut, and every cut value is a character-boundary prefix.
            expect(kept).toHaveLength(1);
            expect(sample!.truncated).toBe(true);
            kept[0]!.forEach((v, j) => {
              const orig = rows[0]![j]!;
              if (v === orig) return;
              expect(v!.endsWith('…')).toBe(true);
              expect(orig.startsWith(v!.slice(0, -1))).toBe(true);
            });
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("PgResultTap (the Postgres engine's tap)", () => {
  const desc = rowDescription([
    { name: 'id', oid: 23 },
    { name: 'data', oid: 17 },
    { name: 'x', oid: 999999 },
  ]);

  it('takes DataRows and a RowDescription as bodies or whole messages; columns carry type names (or OIDs)', () => {
    const tap = tapOf(10, 1000);
    tap.row(message('D', dataRow(['1', '\\x00', 'a'])), message('T', desc));
    tap.row(dataRow(['2', null, 'b']), message('T', desc)); // re-framed per row: the same result set
    expect(tap.take()).toEqual({
      columns: [
        { name: 'id', type: 'int4' },
        { name: 'data', type: 'bytea' },
        { name: 'x', type: '999999' },
      ],
      rows: [
        ['1', '\\x00', 'a'],
        ['2', null, 'b'],
      ],
      truncated: false,
      bytes: 8,
    });
    expect(tap.take()).toBeNull();
  });

  it('binary results: the format codes of the RowDescription, or of the Bind when given', () => {
    const bin = rowDescription([{ name: 'n', oid: 23, format: 1 }]);
    const tap = tapOf(10, 1000);
    tap.row(dataRow([int32(7)]), bin);
    expect(tap.take()!.rows).toEqual([['\\x00000007']]);
    tap.row(dataRow([int32(7)]), rowDescription([{ name: 'n', oid: 23 }]), [1]);
    expect(tap.take()!.rows).toEqual([['\\x00000007']]);
  });

  it("accepts columns parsed by the caller (the relay's own parse, pg-protocol Field shape, or typeOid/format codes)", () => {
    const tap = tapOf(10, 1000);
    const parsed = [{ name: 'n', tableOid: 0, attnum: 0, typeOid: 20, typlen: 8, typmod: -1, format: 1 }] as const;
    tap.row(message('D', dataRow([Buffer.from([0, 0, 0, 0, 0, 0, 0, 9])])), parsed);
    expect(tap.take()).toMatchObject({ columns: [{ name: 'n', type: 'int8' }], rows: [['\\x0000000000000009']] });
    const fields = [{ name: 'email', dataTypeID: 25, format: 'text' as const }];
    tap.row(dataRow(['a***@x.com']), fields);
    tap.row(dataRow(['b***@x.com']), [{ name: 'email', typeOid: 25, format: 0 }]); // same columns
    expect(tap.take()).toMatchObject({ columns: [{ name: 'email', type: 'text' }], rows: [['a***@x.com'], ['b***@x.com']] });
  });

  it('a statement with several result sets keeps the first; take() separates statements', () => {
    const tap = tapOf(10, 1000);
    tap.row(dataRow(['1']), rowDescription([{ name: 'a', oid: 23 }]));
    tap.row(dataRow(['x']), rowDescription([{ name: 'b', oid: 25 }]));
    expect(tap.take()).toMatchObject({ columns: [{ name: 'a' }], rows: [['1']], truncated: true });
    tap.row(dataRow(['x']), rowDescription([{ name: 'b', oid: 25 }]));
    expect(tap.take()).toMatchObject({ columns: [{ name: 'b' }], rows: [['x']], truncated: false });
  });

  it('wants rows until the sample is complete and one row past it was seen (truncated is then known)', () => {
    const tap = tapOf(2, 1000);
    expect(tap.enabled && tap.wants).toBe(true);
    tap.row(dataRow(['1']), desc);
    tap.row(dataRow(['2']), desc);
    expect(tap.wants).toBe(true);
    tap.row(dataRow(['3']), desc);
    expect(tap.wants).toBe(false);
    expect(tap.take()).toMatchObject({ rows: [['1'], ['2']], truncated: true });
    expect(tap.wants).toBe(true);
  });

  it('sampling off: does nothing', () => {
    const tap = new PgResultTap(() => null);
    expect(tap.enabled || tap.wants).toBe(false);
    tap.row(dataRow(['1']), desc);
    expect(tap.take()).toBeNull();
  });

  it('describeColumns stops at a malformed RowDescription', () => {
    expect(describeColumns(desc.subarray(0, 30))).toEqual([{ name: 'id', type: 'int4', format: 0 }]);
    expect(describeColumns(Buffer.alloc(0))).toEqual([]);
  });
});
