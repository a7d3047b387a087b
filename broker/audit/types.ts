// Audit vocabulary: what the broker keeps of a statement's result (a bounded sample of what its client
// saw, already masked), shared by the engines that feed it, the session, the store and replay.

/** What a sample is, defined with the shared vocabulary (broker/types.ts), which the store speaks too. */
export type { ResultSample, SampleColumn } from '../types.js';

/** The bounds of a sample (`audit.sample_rows`, `audit.sample_bytes`); both above 0, else sampling is off. */
export interface SampleLimits {
  rows: number;
  bytes: number;
}
