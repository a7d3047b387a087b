// A bounded sample of one statement's result, as its client received it (after masking). Engines feed
// it the rows they send; it keeps the first `limits.rows` rows within `limits.bytes` bytes of values and
// then only counts: once a bound is reached no row is decoded or even looked into again.
//
// Rows are kept whole, except the first: when it alone is over the byte bound its values are cut (on a
// UTF-8 character boundary, ending in `…`) so that a sample always shows something. Only the first
// result set of a statement is kept (a simple Query may carry several); rows of later ones are left out.
import type { ResultSample, SampleColumn, SampleLimits } from './types.js';

const CUT = '…';

export class ResultSampler {
  private columns: SampleColumn[] | null = null;
  private rows: (string | null)[][] = [];
  private bytes = 0;
  private truncated = false;
  /** No more rows are kept: a bound was reached, or a later result set began. */
  private done = false;
  /** Rows left out since the last finish(). */
  private left = 0;

  constructor(readonly limits: SampleLimits) {
    if (!(limits.rows > 0 && limits.bytes > 0)) throw new RangeError('sample limits must be above 0 (a disabled sample has no sampler)');
  }

  /** Whether the next row would be looked at; false once a bound is reached (callers may skip their own work too). */
  get accepting(): boolean {
    return !this.done;
  }

  /** Rows left out so far (past a bound, or of a later result set). */
  get leftOut(): number {
    return this.left;
  }

  /** A result set starts with these columns. After rows were kept, a new result set is only counted. */
  begin(columns: readonly SampleColumn[]): void {
    if (this.rows.length > 0) {
      this.done = true;
      return;
    }
    this.columns = columns.map((c) => ({ name: c.name, type: c.type }));
  }

  /** A row the client received, as text (null: SQL NULL). */
  row(values: readonly (string | null)[]): void {
    if (this.done) return this.skip();
    let cost = 0;
    for (const v of values) if (v !== null) cost += Buffer.byteLength(v, 'utf8');
    if (!this.admits(cost)) return this.skip();
    const budget = this.limits.bytes - this.bytes;
    if (cost <= budget) return this.keep([...values], cost);
    // The first row, over the byte bound on its own: cut its values to fit.
    let left = budget;
    const out = values.map((v) => {
      if (v === null) return null;
      const b = Buffer.from(v, 'utf8');
      if (b.length <= left) {
        left -= b.length;
        return v;
      }
      const end = utf8Boundary(b, 0, left);
      left -= end;
      return `${b.toString('utf8', 0, end)}${CUT}`;
    });
    this.keep(out, budget - left, true);
  }

  /**
   * A PostgreSQL DataRow body (what follows its 5-byte header) in the formats the client asked for
   * (Bind's result-format codes: none = all text, one = for every column, else one per column).
   * Text values are decoded as UTF-8, binary ones become `\x` + hex. A malformed row is ignored.
   */
  rowFromPgDataRow(body: Buffer, formats: readonly number[]): void {
    if (this.done) return this.skip();
    if (body.length < 2) return;
    const n = body.readInt16BE(0);
    if (n < 0) return;
    // First pass: lengths only, to decide whether the row fits before decoding anything.
    let cost = 0;
    let pos = 2;
    for (let i = 0; i < n; i++) {
      if (pos + 4 > body.length) return;
      const len = body.readInt32BE(pos);
      pos += 4;
      if (len < 0) continue;
      if (pos + len > body.length) return;
      cost += binary(formats, i) ? 2 + 2 * len : len;
      pos += len;
    }
    if (!this.admits(cost)) return this.skip();
    let left = this.limits.bytes - this.bytes;
    const cut = cost > left;
    const values = new Array<string | null>(n);
    pos = 2;
    for (let i = 0; i < n; i++) {
      const len = body.readInt32BE(pos);
      pos += 4;
      if (len < 0) {
        values[i] = null;
        continue;
      }
      const start = pos;
      pos += len;
      if (binary(formats, i)) {
        const keep = Math.min(len, Math.floor(Math.max(0, left - 2) / 2));
        values[i] = keep === len ? `\\x${body.toString('hex', start, pos)}` : left >= 2 ? `\\x${body.toString('hex', start, start + keep)}${CUT}` : CUT;
        left -= left >= 2 ? 2 + 2 * keep : 0;
      } else if (len <= left) {
        values[i] = body.toString('utf8', start, pos);
        left -= len;
      } else {
        const end = utf8Boundary(body, start, left);
        values[i] = `${body.toString('utf8', start, end)}${CUT}`;
        left -= end - start;
      }
    }
    this.keep(values, this.limits.bytes - this.bytes - left, cut);
  }

  /** The sample (null when no row was received), and a fresh start for the next statement. */
  finish(): ResultSample | null {
    const sample: ResultSample | null = this.rows.length
      ? { columns: this.columns ?? this.rows[0]!.map((_, i) => ({ name: `column${i + 1}`, type: '' })), rows: this.rows, truncated: this.truncated, bytes: this.bytes }
      : null;
    this.columns = null;
    this.rows = [];
    this.bytes = 0;
    this.truncated = false;
    this.done = false;
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
    if (cut || this.rows.length >= this.limits.rows || this.bytes >= this.limits.bytes) this.done = true;
  }

  private skip(): void {
    this.done = true;
    this.truncated = true;
    this.left++;
  }
}

function binary(formats: readonly number[], i: number): boolean {
  return (formats.length === 1 ? formats[0] : formats[i]) === 1;
}

/** The end (≤ start + max) of the longest prefix of buf[start…] that does not split a UTF-8 character. */
export function utf8Boundary(buf: Buffer, start: number, max: number): number {
  let end = start + Math.max(0, max);
  if (end >= buf.length) return buf.length;
  // buf[end] is the first byte left out: while it continues a character, that character is left out too.
  while (end > start && (buf[end]! & 0xc0) === 0x80) end--;
  return end;
}
