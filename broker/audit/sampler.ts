// A bounded sample of one statement's result, as its client received it (after masking): the session's
// ResultRecorder. Engines feed it the rows they send; it keeps the first `limits.rows` rows within
// `limits.bytes` bytes of values and then only counts: once a bound is reached no row is decoded again.
//
// Rows are kept whole, except the first: when it alone is over the byte bound its values are cut (on a
// UTF-8 character boundary, ending in `…`) so that a sample always shows something. Only the first
// result set of a statement is kept (a simple Query may carry several); rows of later ones are left out.
import type { ResultRecorder, ResultSample, SampleColumn, SampleLimits, SampleValue } from './types.js';

const CUT = '…';

export class ResultSampler implements ResultRecorder {
  private cols: SampleColumn[] | null = null;
  private rows: (string | null)[][] = [];
  private bytes = 0;
  private truncated = false;
  /** No more rows are kept: a bound was reached, or a later result set began. */
  private full = false;
  /** Rows left out since the last done(). */
  private left = 0;

  constructor(readonly limits: SampleLimits) {
    if (!(limits.rows > 0 && limits.bytes > 0)) throw new RangeError('sample limits must be above 0 (a disabled sample has no sampler)');
  }

  get accepting(): boolean {
    return !this.full;
  }

  get wants(): boolean {
    return !this.full || this.left === 0;
  }

  /** Rows left out so far (past a bound, or of a later result set). */
  get leftOut(): number {
    return this.left;
  }

  columns(columns: readonly SampleColumn[]): void {
    if (this.rows.length > 0) {
      this.full = true;
      return;
    }
    this.cols = columns.map((c) => ({ name: c.name, type: c.type }));
  }

  row(values: readonly SampleValue[] | null): void {
    if (this.full || values === null) return this.skip();
    let cost = 0;
    for (const v of values) cost += costOf(v);
    if (!this.admits(cost)) return this.skip();
    const budget = this.limits.bytes - this.bytes;
    if (cost <= budget) return this.keep(values.map(whole), cost);
    // The first row, over the byte bound on its own: cut its values to fit.
    let left = budget;
    const out = values.map((v) => {
      const [text, used] = cut(v, left);
      left -= used;
      return text;
    });
    this.keep(out, budget - left, true);
  }

  done(): ResultSample | null {
    const sample: ResultSample | null = this.rows.length
      ? {
          columns: this.cols ?? this.rows[0]!.map((_, i) => ({ name: `column${i + 1}`, type: '' })),
          rows: this.rows,
          truncated: this.truncated,
          bytes: this.bytes,
        }
      : null;
    this.cols = null;
    this.rows = [];
    this.bytes = 0;
    this.truncated = false;
    this.full = false;
    this.left = 0;
    return sample;
  }

  /** Whether a row costing `cost` bytes is kept: within both bounds, or the first row (then cut). */
  private admits(cost: number): boolean {
    if (this.rows.length >= this.limits.rows) return false;
    return this.rows.length === 0 || this.bytes + cost <= this.limits.bytes;
  }

  private keep(values: (string | null)[], cost: number, cut = false): void {
    this.rows.push(values);
    this.bytes += cost;
    if (cut) this.truncated = true;
    if (cut || this.rows.length >= this.limits.rows || this.bytes >= this.limits.bytes) this.full = true;
  }

  private skip(): void {
    this.full = true;
    this.truncated = true;
    this.left++;
  }
}

/** Bytes a value costs as kept: UTF-8 text, `\x` + two hex digits a byte. */
function costOf(v: SampleValue): number {
  if (v === null) return 0;
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (Buffer.isBuffer(v)) return v.length;
  return 2 + 2 * v.hex.length;
}

function whole(v: SampleValue): string | null {
  if (v === null || typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return `\\x${v.hex.toString('hex')}`;
}

/** A value cut to at most `max` bytes (ending in `…` when cut), and the bytes it then costs. */
function cut(v: SampleValue, max: number): [string | null, number] {
  if (v === null) return [null, 0];
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    if (b.length <= max) return [b.toString('utf8'), b.length];
    const end = utf8Boundary(b, 0, max);
    return [`${b.toString('utf8', 0, end)}${CUT}`, end];
  }
  const len = v.hex.length;
  const keep = Math.min(len, Math.floor(Math.max(0, max - 2) / 2));
  if (keep === len && 2 + 2 * len <= max) return [`\\x${v.hex.toString('hex')}`, 2 + 2 * len];
  return max >= 2 ? [`\\x${v.hex.toString('hex', 0, keep)}${CUT}`, 2 + 2 * keep] : [CUT, 0];
}

/** The end (≤ start + max) of the longest prefix of buf[start…] that does not split a UTF-8 character. */
export function utf8Boundary(buf: Buffer, start: number, max: number): number {
  let end = start + Math.max(0, max);
  if (end >= buf.length) return buf.length;
  // buf[end] is the first byte left out: while it continues a character, that character is left out too.
  while (end > start && (buf[end]! & 0xc0) === 0x80) end--;
  return end;
}
