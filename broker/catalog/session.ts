// One session's view of its target's catalog: classifications refined against the current snapshot, the
// snapshot invalidated once a statement that may change the catalog has run and is committed, and — until
// then — what that statement redefined judged by its new definition (a view) or as unknown (anything else):
// the broker's catalog connection cannot see a session's uncommitted DDL (broker/policy/pg-refine.ts).
import { changesCatalog, doubtful } from '../policy/pg-defines.js';
import { afterStatement, NOTHING_PENDING, type Pending } from '../policy/pg-refine.js';
import type { Classification, Decision, Kind, Target } from '../types.js';
import { needsCatalog, type CatalogProvider, type CatalogSnapshot } from './index.js';

/** A classification refined, and the snapshot it was refined with (undefined: it needed none). */
export interface Refinement {
  classification: Classification;
  snap: CatalogSnapshot | null | undefined;
}

export class SessionCatalog {
  /** What the open transaction redefined (PostgreSQL), or 'all' for a MySQL statement still running. */
  private pending: Pending = NOTHING_PENDING;
  /** A statement that may change the catalog ran: read it again once committed. */
  private dirty = false;
  /** Which snapshot each decision was taken with: a prepared statement executed later is decided again if it changed. */
  private readonly decidedWith = new WeakMap<Decision, CatalogSnapshot | null>();

  constructor(
    private readonly provider: CatalogProvider,
    private readonly target: Target,
  ) {}

  /**
   * `c` as the target's catalog says, and the snapshot it used: at once when a current snapshot answers it (no
   * await: the engine's batching of a pipeline depends on decisions coming within the same turn), else a promise
   * (a load, or — for a name the snapshot does not know, perhaps created elsewhere since — one reload).
   */
  refine(c: Classification): Refinement | Promise<Refinement> {
    if (c.error || !needsCatalog(c)) return { classification: c, snap: undefined };
    const snap = this.provider.current(this.target);
    if (snap === undefined) return this.provider.get(this.target).then((s) => this.refineWith(c, s, true));
    return this.refineWith(c, snap, true);
  }

  private refineWith(c: Classification, snap: CatalogSnapshot | null, retry: boolean): Refinement | Promise<Refinement> {
    const pg = this.target.engine === 'postgres';
    const r = this.provider.refine(this.target, c, snap, pg ? this.pending : undefined);
    if (r.unresolved && snap && retry) {
      return this.provider
        .refresh(this.target)
        .then((fresher) => (fresher && fresher !== snap ? this.refineWith(c, fresher, false) : this.finish(r.classification, snap)));
    }
    return this.finish(r.classification, snap);
  }

  private finish(classification: Classification, snap: CatalogSnapshot | null): Refinement {
    const doubt = this.target.engine === 'postgres' ? null : this.pending.doubt;
    return { classification: doubt ? doubtful(classification, doubt) : classification, snap };
  }

  /** Remember the snapshot a decision was taken with (undefined: it needed none). */
  decided(d: Decision, snap: CatalogSnapshot | null | undefined): void {
    if (snap !== undefined) this.decidedWith.set(d, snap);
  }

  /** Whether a decision taken earlier (a prepared statement's) was taken with a snapshot that is no longer current. */
  outdated(d: Decision): boolean {
    if (!this.decidedWith.has(d)) return false;
    return this.provider.current(this.target) !== this.decidedWith.get(d) || this.dirty;
  }

  /** An allowed statement of these kinds is about to run. */
  admitted(sql: string, kinds: readonly Kind[]): void {
    if (!changesCatalog(kinds)) return;
    this.dirty = true;
    // MySQL commits DDL at once: everything is in doubt only until it has run (completed()).
    this.pending = this.target.engine === 'postgres' ? afterStatement(this.pending, sql, kinds) : { views: [], doubt: 'all' };
  }

  /** A statement finished (MySQL: DDL is committed when it finishes). */
  completed(): void {
    if (this.target.engine !== 'postgres' && this.dirty) this.settle();
  }

  /** PostgreSQL ReadyForQuery: outside a transaction block, what ran is committed (or rolled back): read afresh. */
  ready(status: string): void {
    if (status === 'I' && this.dirty) this.settle();
  }

  private settle(): void {
    this.dirty = false;
    this.pending = NOTHING_PENDING;
    this.provider.invalidate(this.target.name);
  }
}
