// The audit journal: every statement is recorded here before it runs, at the cost of one write() per turn
// of the event loop for all sessions; an indexer moves it into the store behind. See docs/operations.md
// ("The audit journal") for what each durability survives.
import type { Store } from '../../store/types.js';
import { JournalIndexer } from './indexer.js';
import { journalId, listSegments } from './segments.js';
import { JournaledStore } from './store.js';
import { startIndexerThread, startIndexerThreadLazily, startInlineIndexer } from './thread.js';
import { JournalWriter, type Durability } from './writer.js';

export { JournaledStore } from './store.js';
export type { Durability, WriterStats } from './writer.js';

export interface JournalOptions {
  dir: string;
  durability: Durability;
  segmentBytes: number;
  /** The store behind the journal, opened. */
  store: Store;
  /** Its URL, for the indexer thread's own connection; null: index in this thread (an in-memory store). */
  storeUrl: string | null;
  /** How often the indexer looks for new records. Default 200 ms. */
  intervalMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Recovers the journal (indexes what an earlier process left, cutting a torn last record), then starts its
 * writer on a new segment and its indexer; returns the store the broker writes through.
 */
export async function openJournal(o: JournalOptions): Promise<JournaledStore> {
  const log = o.log ?? (() => {});
  const journal = journalId(o.dir);
  const recovery = await JournalIndexer.open({ dir: o.dir, journal, store: o.store, log });
  const recovered = await recovery.catchUp(true);
  if (recovered) log('audit journal: indexed what an earlier broker process left', { events: recovered });
  const last = Math.max(0, ...listSegments(o.dir), recovery.position?.segment ?? 0);
  const writer = new JournalWriter({ dir: o.dir, segment: last + 1, durability: o.durability, segmentBytes: o.segmentBytes });
  const interval = o.intervalMs ?? 200;
  const inline = () => startInlineIndexer(o.dir, journal, o.store, interval, log);
  const storeUrl = o.storeUrl;
  const indexer = storeUrl
    ? startIndexerThreadLazily(() => startIndexerThread({ storeUrl, dir: o.dir, journal, intervalMs: interval }, log, inline))
    : await inline();
  const store = new JournaledStore(o.store, writer, indexer, { log });
  try {
    await store.init();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
