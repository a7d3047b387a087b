// Gives memory back once the broker is idle. V8 grows its young generation to 32 MB while the broker starts
// (or serves a burst) and keeps it until a full collection finds the allocation rate low, which an idle
// process never triggers: a broker at rest would hold ~30 MB it does not use. So every few seconds this
// looks at the process's CPU time; after a busy stretch, quiet ones get a full collection until V8 has
// shrunk its young generation (it does so only once the allocation rate has been low for a while).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleReducerOptions {
  /** How often to look. Default 3 s. */
  intervalMs?: number;
  /** A stretch is quiet when the process used less CPU than this share of it. Default 0.05. */
  quietShare?: number;
  /** The process's CPU time in µs (user + system); injectable for tests. */
  cpuMicros?: () => number;
  /**
   * A full collection; true when memory was given back (the young generation is small again), false to try
   * again at the next quiet stretch. Injectable for tests. Default: V8's gc(), reached without --expose-gc.
   */
  collect?: (() => boolean) | null;
  /** Quiet stretches to try in a row before giving up until the next busy one. Default 10. */
  tries?: number;
}

/** The young generation's committed size: 32 MB once grown, 1–2 MB once V8 has shrunk it. */
const youngBytes = (): number => v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0;
const SMALL_YOUNG = 8 * 1024 * 1024;

/** V8's gc() without the --expose-gc command-line flag: the flag set now applies to contexts made after it. */
function v8Collect(): (() => boolean) | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    if (typeof gc !== 'function') return null;
    return () => {
      (gc as () => void)();
      return youngBytes() <= SMALL_YOUNG;
    };
  } catch {
    return null;
  }
}

const processCpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Starts watching; returns what stops it. One decision per interval: `tick()` is exported for tests. */
export function startIdleReducer(o: IdleReducerOptions = {}): { stop(): void; tick(): boolean } {
  const intervalMs = o.intervalMs ?? 3000;
  const quiet = (o.quietShare ?? 0.05) * intervalMs * 1000;
  const cpu = o.cpuMicros ?? processCpu;
  const collect = o.collect === undefined ? v8Collect() : o.collect;
  const tries = o.tries ?? 10;
  let last = cpu();
  // Starting up was busy: the quiet stretches after it collect.
  let pending = tries;
  const tick = (): boolean => {
    const now = cpu();
    const used = now - last;
    last = now;
    if (used >= quiet) {
      pending = tries;
      return false;
    }
    if (pending === 0 || !collect) return false;
    const gaveBack = collect();
    pending = gaveBack ? 0 : pending - 1;
    last = cpu(); // the collection's own CPU does not make the next stretch look busy
    return true;
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), tick };
}
