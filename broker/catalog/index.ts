// The catalogs of the targets, as policy sees them: one snapshot per target, read over the broker's own upstream
// account, kept until it is `catalog_ttl` seconds old or the broker sees a statement that may change it succeed
// there (invalidate()). Reads are shared: concurrent sessions wait for the same load. A snapshot nearing its
// age limit is reloaded in the background, so the statements of a busy target do not wait for it.
//
// A catalog that cannot be read is `null` — policy then refuses whatever it would need it for (fail closed) —
// and is tried again on the next statement that needs it (not more than once a second).
import type { Classification, Target } from '../types.js';
import { refineMysqlDetailed } from '../policy/mysql-catalog.js';
import { needsCatalog } from '../policy/pg-catalog.js';
import { NOTHING_PENDING, refinePostgresDetailed, type Pending } from '../policy/pg-refine.js';
import { loadMysqlCatalog } from './mysql.js';
import { loadPostgresCatalog } from './postgres.js';
import type { CatalogSnapshot } from './types.js';

export type { CatalogSnapshot } from './types.js';

export type CatalogLoader = (target: Target) => Promise<CatalogSnapshot>;

/** What a session asks of the catalogs (an interface, so tests can hand in their own). */
export interface CatalogProvider {
  /** The snapshot to decide with now, if there is one that needs no (re)load; `undefined` otherwise. */
  current(target: Target): CatalogSnapshot | null | undefined;
  /** The snapshot to decide with, loading it if need be; null when it cannot be read (see `problem`). */
  get(target: Target): Promise<CatalogSnapshot | null>;
  /** Reload now (a name a statement calls is unknown to a snapshot older than a second): shared, rate-limited. */
  refresh(target: Target): Promise<CatalogSnapshot | null>;
  /** The target's catalog may have changed (DDL went through the broker and is committed): read it again. */
  invalidate(target: string): void;
  /** Why the target's catalog could not be read, for refusal messages. */
  problem(target: string): string | null;
  /**
   * `c` refined against `snap` (see broker/policy/pg-refine.ts), given what the session redefined and has not
   * committed (PostgreSQL), and how many of its calls were not found.
   */
  refine(target: Target, c: Classification, snap: CatalogSnapshot | null, pending?: Pending): { classification: Classification; unresolved: number };
}

interface Entry {
  snap: CatalogSnapshot | null;
  /** When the current snapshot's load started (a DDL after that start is not in it). */
  startedAt: number;
  /** Set by invalidate(): the next statement that needs it waits for a new load. */
  stale: boolean;
  loading: Promise<CatalogSnapshot | null> | null;
  /** The generation the load in flight began in. */
  loadingGeneration: number;
  /** Bumped by invalidate(): a load that began before cannot make the entry fresh. */
  generation: number;
  /** Loads are numbered; an older one finishing late never replaces a newer one's answer. */
  seq: number;
  applied: number;
  error: string | null;
  failedAt: number;
}

export interface CatalogsOptions {
  /** Seconds a snapshot is trusted, per target (`targets.<name>.catalog_ttl`; default 60). */
  ttlSeconds?: (target: string) => number;
  /** Loaders by engine (tests replace them). */
  loaders?: Partial<Record<Target['engine'], CatalogLoader>>;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const RETRY_MS = 1000;
/** A reload asked for because a name was not found waits at least this long after the last load began. */
const REFRESH_MS = 1000;

export class Catalogs implements CatalogProvider {
  private readonly entries = new Map<string, Entry>();
  private readonly ttl: (target: string) => number;
  private readonly loaders: Record<Target['engine'], CatalogLoader>;

  constructor(private readonly opts: CatalogsOptions = {}) {
    this.ttl = opts.ttlSeconds ?? (() => 60);
    this.loaders = { postgres: (t) => loadPostgresCatalog(t), mysql: (t) => loadMysqlCatalog(t), ...opts.loaders };
  }

  private entry(target: string): Entry {
    let e = this.entries.get(target);
    if (!e)
      this.entries.set(
        target,
        (e = { snap: null, startedAt: 0, stale: true, loading: null, loadingGeneration: 0, generation: 0, seq: 0, applied: 0, error: null, failedAt: 0 }),
      );
    return e;
  }

  current(target: Target): CatalogSnapshot | null | undefined {
    const e = this.entries.get(target.name);
    if (!e || e.stale) return undefined;
    const age = Date.now() - e.startedAt;
    const ttl = this.ttl(target.name) * 1000;
    if (e.error !== null) return Date.now() - e.failedAt < RETRY_MS ? null : undefined;
    if (age >= ttl) return undefined;
    if (age >= ttl * 0.8 && !e.loading) void this.load(target, e); // ahead of time, in the background
    return e.snap;
  }

  get(target: Target): Promise<CatalogSnapshot | null> {
    const now = this.current(target);
    if (now !== undefined) return Promise.resolve(now);
    const e = this.entry(target.name);
    // A load that began before the last invalidate() may not see the change: wait for a new one.
    return e.loading && e.loadingGeneration === e.generation ? e.loading : this.load(target, e);
  }

  refresh(target: Target): Promise<CatalogSnapshot | null> {
    const e = this.entry(target.name);
    if (e.loading && e.loadingGeneration === e.generation) return e.loading;
    if (Date.now() - e.startedAt < REFRESH_MS) return Promise.resolve(e.error === null && !e.stale ? e.snap : null);
    return this.load(target, e);
  }

  invalidate(target: string): void {
    const e = this.entries.get(target);
    if (!e) return;
    e.stale = true;
    e.generation++;
  }

  problem(target: string): string | null {
    return this.entries.get(target)?.error ?? null;
  }

  refine(
    target: Target,
    c: Classification,
    snap: CatalogSnapshot | null,
    pending: Pending = NOTHING_PENDING,
  ): { classification: Classification; unresolved: number } {
    const why = snap ? undefined : `the catalog of target '${target.name}' could not be read (${this.problem(target.name) ?? 'not loaded'})`;
    return target.engine === 'postgres' ? refinePostgresDetailed(c, snap, why, pending) : refineMysqlDetailed(c, snap, why);
  }

  private load(target: Target, e: Entry): Promise<CatalogSnapshot | null> {
    const generation = e.generation;
    const startedAt = Date.now();
    const seq = ++e.seq;
    const loading = this.loaders[target.engine](target).then(
      (snap) => {
        if (seq < e.applied) return snap;
        e.applied = seq;
        e.snap = snap;
        e.startedAt = startedAt;
        e.error = null;
        // Invalidated while it loaded: it may predate the change; the next statement loads again.
        e.stale = generation !== e.generation;
        return snap;
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (seq < e.applied) return null;
        e.applied = seq;
        if (e.error === null)
          this.opts.log?.('the catalog of a target could not be read; statements that need it are refused', { target: target.name, error: message });
        e.snap = null;
        e.startedAt = startedAt;
        e.error = message || 'unknown error';
        e.failedAt = Date.now();
        e.stale = false;
        return null;
      },
    );
    e.loading = loading;
    e.loadingGeneration = generation;
    void loading.finally(() => {
      if (e.loading === loading) e.loading = null;
    });
    return loading;
  }
}

export { needsCatalog, type Pending };
