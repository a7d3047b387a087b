// The broker's handle on its indexer: a worker thread (worker.ts) for a store on disk, or the indexer run in
// this thread for an in-memory store (a worker cannot reach it). Either way the broker only wakes it and
// waits for it to reach a position (reads that must see what was just written).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Store } from '../../store/types.js';
import type { JournalPosition } from './format.js';
import { comparePositions, JournalIndexer } from './indexer.js';

export type ToIndexer = { type: 'wake' } | { type: 'stop' };
export type FromIndexer =
  | { type: 'indexed'; position: JournalPosition | null; events: number }
  | { type: 'failed'; message: string }
  | { type: 'log'; msg: string; fields?: Record<string, unknown> }
  | { type: 'ready' }
  | { type: 'stopped' };
export interface IndexerWorkerData {
  storeUrl: string;
  dir: string;
  journal: string;
  intervalMs: number;
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface IndexerHandle {
  /** Resolves true once the store has everything before `pos`, false when that took longer than `timeoutMs`. */
  reach(pos: JournalPosition, timeoutMs: number): Promise<boolean>;
  /** Where the indexer last reported the store has reached; null before its first report. */
  readonly position: JournalPosition | null;
  /** Indexes what is left, then stops. */
  close(): Promise<void>;
  /** Something was appended to the journal (a lazily started indexer starts now). */
  written?(): void;
}

interface Waiting {
  pos: JournalPosition;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

/** Waiters for a position, settled as the indexer reports progress. */
class Progress {
  position: JournalPosition | null = null;
  private waiting: Waiting[] = [];

  reached(pos: JournalPosition): boolean {
    return this.position !== null && comparePositions(this.position, pos) >= 0;
  }

  wait(pos: JournalPosition, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const w: Waiting = { pos, resolve, timer: setTimeout(() => this.settle(w, false), timeoutMs) };
      this.waiting.push(w);
    });
  }

  advance(pos: JournalPosition | null): void {
    if (pos && (!this.position || comparePositions(pos, this.position) > 0)) this.position = pos;
    for (const w of [...this.waiting]) if (this.reached(w.pos)) this.settle(w, true);
  }

  releaseAll(): void {
    for (const w of [...this.waiting]) this.settle(w, this.reached(w.pos));
  }

  private settle(w: Waiting, reached: boolean): void {
    clearTimeout(w.timer);
    this.waiting = this.waiting.filter((x) => x !== w);
    w.resolve(reached);
  }
}

/** The indexer's garbage is short-lived batches: a small young generation keeps its idle memory small (V8's default grows to 32 MB). */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };

/** tsx's ESM API, resolved from this file (the worker's own cwd-relative lookup would miss it). */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    // a loader without import.meta.resolve: tsx's ESM entry, found through its package.json
    return pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  }
}

/**
 * The worker: under tsx (the sources) loaded through tsx's loader, resolved from here (not the cwd); built,
 * as plain JavaScript. Should the thread fail, indexing goes on in this thread (`fallback`), logged.
 */
export function startIndexerThread(data: IndexerWorkerData, log: Log, fallback: () => Promise<IndexerHandle>): IndexerHandle {
  const entry = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const tsx = entry.pathname.endsWith('.ts') ? tsxApi() : null;
  const worker = tsx
    ? new Worker(`import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(import.meta.url)}))`, {
        eval: true,
        workerData: data,
        resourceLimits: WORKER_LIMITS,
      })
    : new Worker(entry, { workerData: data, resourceLimits: WORKER_LIMITS });
  const progress = new Progress();
  let stopping = false;
  let inline: Promise<IndexerHandle> | null = null;
  let took: IndexerHandle | null = null;
  /** The thread has opened the store (before that, stopping it means waiting for it to load). */
  let ready = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (m: FromIndexer) => {
    if (m.type === 'ready') ready = true;
    else if (m.type === 'indexed') progress.advance(m.position);
    else if (m.type === 'log') log(m.msg, m.fields);
    else if (m.type === 'failed') log('audit journal: indexing failed; retrying', { error: m.message });
  });
  worker.on('error', (e) => log('audit journal: the indexer thread failed; indexing in the broker thread instead', { error: String(e) }));
  void exited.then(() => {
    if (stopping) return progress.releaseAll();
    inline = fallback();
    // Waiters of the thread wait on, and are released by, the indexer that took over.
    void inline.then(
      (h) => (took = h).reach({ segment: 0, offset: 0 }, 0).then(() => progress.releaseAll()),
      (e: unknown) => log('audit journal: indexing stopped', { error: String(e) }),
    );
  });
  return {
    get position() {
      return took ? took.position : progress.position;
    },
    async reach(pos, timeoutMs) {
      if (inline) return (await inline).reach(pos, timeoutMs);
      if (progress.reached(pos)) return true;
      worker.postMessage({ type: 'wake' } satisfies ToIndexer);
      return progress.wait(pos, timeoutMs);
    },
    async close() {
      stopping = true;
      if (inline) return (await inline).close();
      if (!ready) {
        // Still loading (a broker stopped right after it started): do not wait for it; index what is left here.
        await worker.terminate();
        const here = await fallback();
        return here.close();
      }
      worker.postMessage({ type: 'stop' } satisfies ToIndexer);
      await exited;
    },
  };
}

/**
 * The indexer thread, started at the first record appended: a broker nobody has used yet holds no second V8
 * isolate (about 10–15 MB). Recovery at start runs before, in this thread, so until then the store has it all.
 */
export function startIndexerThreadLazily(start: () => IndexerHandle): IndexerHandle {
  let handle: IndexerHandle | null = null;
  const started = (): IndexerHandle => {
    handle ??= start();
    return handle;
  };
  return {
    get position() {
      return handle ? handle.position : null;
    },
    // Not started: nothing was appended since recovery indexed the rest, so the store has all of it.
    reach: (pos, timeoutMs) => (handle ? handle.reach(pos, timeoutMs) : Promise.resolve(true)),
    written() {
      if (!handle) started();
    },
    async close() {
      // Nothing was written since the start (recovery indexed the rest): nothing to index, no thread to start.
      if (handle) await handle.close();
    },
  };
}

/** The indexer in this thread: for an in-memory store, which no other thread can open. */
export async function startInlineIndexer(dir: string, journal: string, store: Store, intervalMs: number, log: Log): Promise<IndexerHandle> {
  const indexer = await JournalIndexer.open({ dir, journal, store, log });
  const progress = new Progress();
  let running: Promise<void> | null = null;
  const run = (): Promise<void> => {
    if (running) return running.then(run);
    running = indexer
      .catchUp()
      .then(
        () => progress.advance(indexer.position),
        (e: unknown) => log('audit journal: indexing failed; retrying', { error: String(e) }),
      )
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  await run();
  return {
    get position() {
      return progress.position;
    },
    async reach(pos, timeoutMs) {
      if (progress.reached(pos)) return true;
      const waited = progress.wait(pos, timeoutMs);
      await run();
      return waited;
    },
    async close() {
      clearInterval(timer);
      await run();
      progress.releaseAll();
    },
  };
}
