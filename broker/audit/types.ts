// Audit vocabulary: what the broker keeps of a statement's result (a bounded sample of what its client
// saw, already masked), shared by the engines that feed it, the session, the store and replay.

/** One result column: its name and the server's type (a type name, or the type OID as text). */
export interface SampleColumn {
  name: string;
  type: string;
}

/** The first rows of a result as the client received them (after masking), as text. */
export interface ResultSample {
  columns: SampleColumn[];
  /** Values as text; null is SQL NULL. A value cut at the byte bound ends in `…`. */
  rows: (string | null)[][];
  /** Whether anything the client received was left out: a row past a bound, a cut value, a later result set. */
  truncated: boolean;
  /** Bytes of the values kept (UTF-8; binary values count as their `\x…` text). At most the byte bound. */
  bytes: number;
}

/** The bounds of a sample (`audit.sample_rows`, `audit.sample_bytes`); both above 0, else sampling is off. */
export interface SampleLimits {
  rows: number;
  bytes: number;
}
