// What a PostgreSQL session holds that decides how its statements read: its prepared statements. `EXECUTE q` runs
// what was prepared as q — by SQL (`PREPARE q AS …`) or by the extended protocol (a Parse named q: the same
// namespace) — so the session remembers, per name, what it may hold, and policy/pg-prepared.ts substitutes it.
// What the session holds may be more than the server does, never less:
//   - what a statement prepares is added as soon as it is admitted to run (if it then fails, an EXECUTE of the
//     name fails upstream too); a name prepared again holds either statement until the old one is known gone;
//   - what a DEALLOCATE / DISCARD ALL forgets is forgotten once the statement has run without error (if it
//     failed, the old statement is still there);
//   - a protocol-level Close of a named statement is not seen: what it held is kept.
// A PREPARE or DEALLOCATE the broker cannot follow (inside a DO block or a function) is refused as unknown.
import { asOne, substitutePrepared, type PreparedChange, type PreparedNames, type Substituted } from './policy/pg-prepared.js';
import type { Classification, ClassifiedStatement, Decision, StatementRequest } from './types.js';

interface Held {
  st: ClassifiedStatement;
  /** When it was prepared (a later forget removes it once that forget ran). */
  seq: number;
}

export class PostgresSessionState implements PreparedNames {
  private readonly names = new Map<string, Held[]>();
  private seq = 0;
  /** What each decision's statements do to the prepared statements. */
  private readonly substituted = new WeakMap<Decision, Substituted>();
  /** Forgets of admitted statements, by record id, applied once they ran without error. */
  private readonly forgets = new Map<number, { name: string | null; seq: number }[]>();

  get(name: string): readonly ClassifiedStatement[] | undefined {
    return this.names.get(name)?.map((h) => h.st);
  }

  /** `c` with each EXECUTE judged by what its name holds in this session. */
  substitute(c: Classification): Substituted {
    return substitutePrepared(c, this);
  }

  /** The decision taken on a substituted classification. */
  decided(d: Decision, s: Substituted | undefined): void {
    if (s) this.substituted.set(d, s);
  }

  /** Whether a decision taken earlier (a Parse's) judged an EXECUTE by what the session held then: judge it again. */
  stale(d: Decision): boolean {
    return this.substituted.get(d)?.executes === true;
  }

  /**
   * The names whose prepared statement running this decision's statements may define or forget (`null`: every name):
   * `PREPARE n`, `DEALLOCATE n`, `DEALLOCATE ALL`, `DISCARD ALL`. The relay forgets what it knew of a Parse under those
   * names, so a later Bind of one is judged as the `EXECUTE` of what the session holds (see engines/postgres/relay.ts).
   */
  touches(d: Decision): (string | null)[] {
    const s = this.substituted.get(d);
    return s?.changes.length ? s.changes.map((c) => ('define' in c ? c.define : c.forget)) : [];
  }

  /** A statement of this decision is admitted (`statementId`: its record, for completed()). */
  admitted(d: Decision, req: StatementRequest, statementId: number | null): void {
    const s = this.substituted.get(d);
    if (!s) return;
    if (req.protocol === 'parse') {
      // A named Parse prepares its text under that name, for a SQL EXECUTE too; what it itself runs, at each Execute.
      if (req.name) this.define(req.name, asOne(s.classification));
      return;
    }
    this.apply(s.changes, statementId);
  }

  private apply(changes: readonly PreparedChange[], statementId: number | null): void {
    for (const c of changes) {
      if ('define' in c) this.define(c.define, c.st);
      // Without a record there is no outcome to wait for: what it forgets is kept (more than the server holds).
      else if (statementId !== null) {
        const list = this.forgets.get(statementId) ?? [];
        list.push({ name: c.forget, seq: ++this.seq });
        this.forgets.set(statementId, list);
      }
    }
  }

  private define(name: string, st: ClassifiedStatement): void {
    const held = this.names.get(name) ?? [];
    held.push({ st, seq: ++this.seq });
    this.names.set(name, held);
  }

  /** The statement recorded as `statementId` finished, without an error (`ok`) or with one. */
  completed(statementId: number, ok: boolean): void {
    const forgets = this.forgets.get(statementId);
    if (!forgets) return;
    this.forgets.delete(statementId);
    if (!ok) return; // it may have stopped before the forget: the old statements may still be there
    for (const f of forgets) {
      for (const name of f.name === null ? [...this.names.keys()] : [f.name]) {
        const left = (this.names.get(name) ?? []).filter((h) => h.seq > f.seq);
        if (left.length) this.names.set(name, left);
        else this.names.delete(name);
      }
    }
  }
}
