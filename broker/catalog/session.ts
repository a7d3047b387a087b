// One session's view of its target's catalog: classifications refined against the current snapshot, the
// snapshot invalidated once a statement that may change the catalog has run and is committed, and — until
// then — what that statement redefined treated as unknown (the broker's catalog connection cannot see a
// session's uncommitted DDL; see broker/policy/pg-defines.ts).
import { changesCatalog, doubtful, pgDoubtAfter } from '../policy/pg-defines.js';
import type { Classification, Decision, Kind, Target } from '../types.js';
import { needsCatalog, type CatalogProvider, type CatalogSnapshot } from './index.js';

export class SessionCatalog {
  /** Names redefined in the open transaction ('all': anything may have been), null: none. */
  private doubt: Set<string> | 'all' | null = null;
  /** Which snapshot each decision was taken with: a prepared statement executed later is decided again if it changed. */
  private readonly decidedWith = new WeakMap<Decision, CatalogSnapshot | null>();

  constructor(
    private readonly provider: CatalogProvider,
    private readonly target: Target,
  ) {}

  /** `c` as the target's catalog says (waits for a load when none is current), and the snapshot it used. */
  async refine(c: Classification): Promise<{ classification: Classification; snap: CatalogSnapshot | null | undefined }> {
    if (c.error || !needsCatalog(c)) return { classification: c, snap: undefined };
    let snap = this.provider.current(this.target) ?? (await this.provider.get(this.target));
    let r = this.provider.refine(this.target, c, snap);
    // A name the snapshot does not know may have been created since it was read (elsewhere): read it again once.
    if (r.unresolved && snap) {
      const fresher = await this.provider.refresh(this.target);
      if (fresher && fresher !== snap) r = this.provider.refine(this.target, c, (snap = fresher));
    }
    const classification = this.doubt ? doubtful(r.classification, this.doubt) : r.classification;
    return { classification, snap };
  }

  /** Remember the snapshot a decision was taken with (undefined: it needed none). */
  decided(d: Decision, snap: CatalogSnapshot | null | undefined): void {
    if (snap !== undefined) this.decidedWith.set(d, snap);
  }

  /** Whether a decision taken earlier (a prepared statement's) was taken with a snapshot that is no longer current. */
  outdated(d: Decision): boolean {
    if (!this.decidedWith.has(d)) return false;
    return this.provider.current(this.target) !== this.decidedWith.get(d) || this.doubt !== null;
  }

  /** An allowed statement of these kinds is about to run. */
  admitted(sql: string, kinds: readonly Kind[]): void {
    if (this.target.engine !== 'postgres') {
      if (changesCatalog(kinds)) this.doubt = 'all'; // MySQL commits DDL at once: in doubt until completed()
      return;
    }
    const names = pgDoubtAfter(sql, kinds);
    if (names === null) return;
    if (names === 'all') this.doubt = 'all';
    else if (this.doubt !== 'all') {
      const doubt: Set<string> = this.doubt ?? new Set(); // even with no name: read the catalog again once committed
      for (const n of names) doubt.add(n);
      this.doubt = doubt;
    }
  }

  /** A statement finished (MySQL: DDL is committed when it finishes). */
  completed(): void {
    if (this.target.engine === 'postgres' || this.doubt === null) return;
    this.doubt = null;
    this.provider.invalidate(this.target.name);
  }

  /** PostgreSQL ReadyForQuery: outside a transaction block, what ran is committed (or rolled back): read afresh. */
  ready(status: string): void {
    if (status !== 'I' || this.doubt === null) return;
    this.doubt = null;
    this.provider.invalidate(this.target.name);
  }
}
