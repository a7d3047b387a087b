// The indexer's worker thread: opens its own connection to the store and tails the journal into it,
// off the broker's event loop. Talks to its IndexerThread (thread.ts) by messages only.
import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from '../../store/index.js';
import { JournalIndexer } from './indexer.js';
import type { ToIndexer, FromIndexer, IndexerWorkerData } from './thread.js';

const port = parentPort!;
const { storeUrl, dir, journal, intervalMs } = workerData as IndexerWorkerData;
const post = (m: FromIndexer) => port.postMessage(m);
const log = (msg: string, fields?: Record<string, unknown>) => post({ type: 'log', msg, fields });

const store = await openStore(storeUrl);
const indexer = await JournalIndexer.open({ dir, journal, store, log });
post({ type: 'ready' });
let stopping = false;
let timer: NodeJS.Timeout | null = null;
let running: Promise<void> | null = null;

/** Index what is there, then report how far the store has it. */
function run(): Promise<void> {
  if (running) return running.then(run); // a wake during a pass: one more pass after it
  running = (async () => {
    if (timer) clearTimeout(timer);
    try {
      await indexer.catchUp();
      post({ type: 'indexed', position: indexer.position, events: indexer.indexedEvents });
    } catch (e) {
      post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    }
    if (!stopping) timer = setTimeout(() => void run(), intervalMs);
  })().finally(() => {
    running = null;
  });
  return running;
}

port.on('message', (m: ToIndexer) => {
  if (m.type === 'wake') void run();
  else if (m.type === 'stop') {
    stopping = true;
    if (timer) clearTimeout(timer);
    void run().then(async () => {
      await store.close();
      post({ type: 'stopped' });
      port.close();
    });
  }
});
void run();
