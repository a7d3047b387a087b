// Audit vocabulary: what the broker keeps of a statement's result (a bounded sample of what its client
// saw, already masked), shared by the engines that feed it, the session, the store and replay.
import type { ResultSample, SampleColumn } from '../types.js';

/** What a sample is, defined with the shared vocabulary (broker/types.ts), which the store speaks too. */
export type { ResultSample, SampleColumn } from '../types.js';

/** The bounds of a sample (`audit.sample_rows`, `audit.sample_bytes`); both above 0, else sampling is off. */
export interface SampleLimits {
  rows: number;
  bytes: number;
}

/**
 * One value of a row as the client received it: text, SQL NULL, the bytes of UTF-8 text, or bytes shown as
 * `\x` + hex (binary values). Bytes are decoded only as far as the sample keeps them.
 */
export type SampleValue = string | null | Buffer | { readonly hex: Buffer };

/**
 * Where an engine puts what one statement's result showed its client (after masking): the session gives one per
 * statement (`recorder()`), bounded by `audit.sample_rows/sample_bytes`; what `done()` returns is the sample the
 * engine passes to `session.complete`. The wire decoding is the engine's; the bounds are the recorder's.
 */
export interface ResultRecorder {
  /**
   * Whether the next row would be kept if it fits. False once a bound is reached: the engine then passes
   * `null` for a row (it is only counted) instead of decoding it.
   */
  readonly accepting: boolean;
  /**
   * Whether rows are still of use at all: false once the sample is complete and a row past it was counted
   * (so it is known to be truncated). The engine may then stop looking at the statement's rows.
   */
  readonly wants: boolean;
  /** A result set starts with these columns. After rows were kept, a later result set is only counted. */
  columns(columns: readonly SampleColumn[]): void;
  /** A row as the client received it; null: a row only to be counted (see `accepting`). */
  row(values: readonly SampleValue[] | null): void;
  /** The statement has finished: its sample (null when no row was received); the recorder starts afresh. */
  done(): ResultSample | null;
}
