// What the relay expects back from the server, in order, and the client's prepared statements and portals as
// the server has them when it reaches the next client message.
//
// Both follow the server's rule for errors in the extended protocol: after an ErrorResponse the server discards
// every message up to Sync. So the messages forwarded after a failing one get no answer and change nothing —
// whether they went out before the error came back (they are in the queue: dropped from it) or after (a
// statement admitted slowly, while the error arrived: not queued at all, until the next Sync). The maps are
// what the server confirmed (ParseComplete, BindComplete, CloseComplete) with the effects of the messages still
// in flight applied, each assumed to succeed; when one fails or is skipped, they are rebuilt from the confirmed
// state and what is still in flight. A Bind whose statement depends on an earlier Sync group still in flight
// waits for its answers (see waitFor), since a failure there would bind another statement than the relay thinks.
//
// What the maps hold is only what the client made with Parse and Bind. SQL makes statements and portals too
// (PREPARE, DECLARE, a function opening a refcursor) and removes them (DEALLOCATE, DISCARD ALL, CLOSE, the end of a
// transaction, which takes every portal Bind made): a statement name SQL may have changed is forgotten (forget),
// portals go with their transaction (ready), so a name the maps hold is one the relay can attribute, and any other
// is handled as unknown by the relay (see relay.ts: a Bind of it is the SQL EXECUTE of it, an Execute is refused).
import type { ActiveResult, Portal, Prepared } from './results.js';

/**
 * A statement the broker refused: the text sent upstream in its place (it fails to parse), and the error the
 * client gets instead of the server's. It belongs to the pending entry of the message it replaced, so its
 * error is recognised by its place in the response stream, whatever else is still in flight before it.
 */
export interface Refusal {
  /** The poison statement's text (JITBROKER_REFUSED_n): the server's error names it. */
  tag: string;
  code: string;
  message: string;
}

/** A statement running upstream, as the relay tracks it (outcome to record, result being read). */
export interface Statement {
  kind: 'query' | 'execute';
  record: number | null;
  started: number;
  rows: number;
  tags: string[];
  error: string | null;
  /** Results left unmasked (`exempt_masking`), or masking off for the session. */
  exempt: boolean;
  /** An Execute's portal (its description is known by the time its rows come). */
  portal?: Portal | null;
  result: ActiveResult | null;
  /** A refused simple query: what was sent in its place. */
  refusal?: Refusal;
}

/** What the relay expects from upstream, in order, with what each message does to statements and portals. */
export type Pending =
  | Statement
  /**
   * `marked`: this Describe is what made `of` count as described (undone if the server skips it). `refresh`: the
   * relay's own Describe of a portal with nothing run since its Bind: the answer describes its statement too (a
   * stale description of it renewed for its next portals).
   */
  | { kind: 'describe'; of: Prepared | Portal | null; swallow: boolean; marked: boolean; refresh?: boolean }
  /**
   * `stmt`: the statement it creates; null when it leaves none of that name (a refused unnamed Parse, whose
   * poison the server fails after dropping the unnamed statement); undefined when it changes nothing (a refused
   * named Parse: the server keeps what it had under that name). `group`: Syncs sent before it.
   */
  | { kind: 'parse'; name: string; stmt: Prepared | null | undefined; group: number; refusal?: Refusal }
  /** `portal`: null when its statement is unknown (the server refuses the Bind). */
  | { kind: 'bind'; name: string; portal: Portal | null }
  | { kind: 'close'; which: 'S' | 'P'; name: string; group: number }
  | { kind: 'sync' };

export class InFlight {
  /** Answers still owed, in order. */
  readonly queue: Pending[] = [];
  /** Statements and portals as the server will have them, if what is in flight succeeds. */
  readonly statements = new Map<string, Prepared>();
  readonly portals = new Map<string, Portal>();
  /** As the server confirmed them. */
  private readonly confirmedStatements = new Map<string, Prepared>();
  private readonly confirmedPortals = new Map<string, Portal>();
  /** Statement names removed by a message still in flight → its Sync group. */
  private readonly removed = new Map<string, number>();
  /** The server is discarding messages until Sync: what is sent meanwhile gets no answer. */
  private skipping = false;
  /** Syncs sent, and answered (their ReadyForQuery): group n is answered once answered > n. */
  private syncs = 0;
  private answered = 0;
  /** Statements sent upstream to run (simple Queries and Executes), for Portal.seen. */
  private runs = 0;
  /** Syncs and simple Queries sent (where a transaction may end), for Portal.bound. */
  private ends = 0;
  private readonly waiters: { done: () => boolean; resolve: () => void }[] = [];

  /** `skipped`: a statement the server will not run (it skips to Sync after an earlier error), to record as such. */
  constructor(private readonly skipped: (s: Statement) => void) {}

  get length(): number {
    return this.queue.length;
  }

  /** A message goes upstream: expect its answer and apply what it does — unless the server will skip it. */
  expect(p: Pending): void {
    if (this.skipping) {
      if (p.kind !== 'sync') {
        if (p.kind === 'query' || p.kind === 'execute') this.skipped(p);
        return;
      }
      this.skipping = false;
    }
    if (p.kind === 'sync' || p.kind === 'query') this.ends++;
    if (p.kind === 'parse' || p.kind === 'close') p.group = this.syncs;
    else if (p.kind === 'sync') this.syncs++;
    else if (p.kind === 'describe' && p.of) {
      if ('prepared' in p.of) p.of.seen = this.runs;
      if (!p.of.described) {
        p.of.described = true;
        p.marked = true;
      }
    } else if (p.kind === 'query' || p.kind === 'execute') {
      this.runs++;
      if (p.kind === 'execute' && p.portal) p.portal.seen = this.runs; // its own execution leaves it as it was
    } else if (p.kind === 'bind' && p.portal) {
      p.portal.seen = this.runs;
      p.portal.bound = this.ends;
    }
    this.apply(p);
    this.queue.push(p);
  }

  /** What a message does to the maps (also replayed by rebuild()). */
  private apply(p: Pending): void {
    switch (p.kind) {
      case 'parse':
        if (p.stmt === undefined) return;
        if (p.stmt) {
          p.stmt.group = p.group;
          this.statements.set(p.name, p.stmt);
          if (this.removed.size) this.removed.delete(p.name);
        } else {
          this.statements.delete(p.name);
          this.removed.set(p.name, p.group);
        }
        return;
      case 'bind':
        if (p.portal) this.portals.set(p.name, p.portal);
        else this.portals.delete(p.name);
        return;
      case 'close':
        if (p.which === 'P') {
          this.portals.delete(p.name);
        } else {
          this.statements.delete(p.name);
          this.removed.set(p.name, p.group);
        }
        return;
      default:
    }
  }

  /** The entry the next answer belongs to. */
  head(): Pending | undefined {
    return this.queue[0];
  }

  private dropPortal(name: string, p: Portal): void {
    this.confirmedPortals.delete(name);
    if (this.portals.get(name) === p) this.portals.delete(name);
  }

  /** The head was answered in full (a Describe's description, an Execute's completion). */
  shift(): void {
    this.queue.shift();
  }

  /** ParseComplete, BindComplete or CloseComplete: the head took effect on the server. */
  done(): void {
    const p = this.queue.shift();
    if (p?.kind === 'parse') {
      if (p.stmt) this.confirmedStatements.set(p.name, p.stmt);
    } else if (p?.kind === 'bind') {
      if (p.portal) this.confirmedPortals.set(p.name, p.portal);
      else this.confirmedPortals.delete(p.name);
    } else if (p?.kind === 'close') {
      (p.which === 'S' ? this.confirmedStatements : this.confirmedPortals).delete(p.name);
    }
  }

  /**
   * ReadyForQuery with transaction status `status`: the simple query or Sync at the head is answered (returned), or
   * null if the head is neither.
   */
  ready(status: string): Pending | null {
    const head = this.queue[0];
    if (!head || (head.kind !== 'query' && head.kind !== 'sync')) return null;
    this.queue.shift();
    if (head.kind === 'sync') {
      this.answered++;
      if (this.removed.size) for (const [name, group] of this.removed) if (group < this.answered) this.removed.delete(name);
    }
    // No transaction open: it ended, and with it every portal Bind made before (only a cursor WITH HOLD outlives its
    // transaction, and Bind never makes one). A simple Query runs in the unnamed portal: the client's is gone.
    // (What a Bind or Close still in flight did to a name is after this: such a name no longer maps to what went.)
    if (status === 'I') for (const [name, p] of this.confirmedPortals) this.dropPortal(name, p);
    else if (head.kind === 'query') {
      const unnamed = this.confirmedPortals.get('');
      if (unnamed) this.dropPortal('', unnamed);
    }
    this.settle();
    return head;
  }

  /**
   * An ErrorResponse answered the head. A simple query's error ends it alone (its ReadyForQuery follows); an
   * extended-protocol message's error makes the server skip everything up to Sync: those entries are dropped,
   * and what is sent before the next Sync is not expected at all. The caller has recorded the head itself.
   */
  failed(): void {
    const head = this.queue[0];
    // An error at Sync (a deferred constraint at commit) skips nothing: its ReadyForQuery follows.
    if (!head || head.kind === 'query' || head.kind === 'sync') return;
    this.queue.shift();
    // A failed Parse of the unnamed statement leaves none: the server drops the old one before parsing.
    if (head.kind === 'parse' && head.name === '') this.confirmedStatements.delete('');
    let changed = this.undo(head);
    while (this.queue.length && this.queue[0]!.kind !== 'sync') {
      const p = this.queue.shift()!;
      if (p.kind === 'query' || p.kind === 'execute') this.skipped(p);
      changed = this.undo(p) || changed;
    }
    if (!this.queue.length) this.skipping = true;
    if (changed) this.rebuild();
    this.settle();
  }

  /** An entry left without taking effect: returns whether the maps must be rebuilt. */
  private undo(p: Pending): boolean {
    if (p.kind === 'describe') {
      if (p.marked) p.of!.described = false;
      return false;
    }
    return p.kind === 'parse' || p.kind === 'bind' || p.kind === 'close';
  }

  /** The maps again: what the server confirmed, then what is still in flight. */
  private rebuild(): void {
    this.statements.clear();
    for (const [name, s] of this.confirmedStatements) this.statements.set(name, s);
    this.portals.clear();
    for (const [name, p] of this.confirmedPortals) this.portals.set(name, p);
    this.removed.clear();
    for (const p of this.queue) this.apply(p);
  }

  /**
   * Before a Bind of statement `name`: a promise when what that name is depends on an earlier Sync group whose
   * answers have not all come (a Parse or Close there may fail, or be skipped after an error, and the server would
   * then bind another statement than the one the relay would admit the execution as). Resolved once that group is
   * answered; look the statement up again then. Null (the usual case) when the Bind can go on now.
   */
  waitFor(name: string): Promise<void> | null {
    const stmt = this.statements.get(name);
    const group = stmt ? stmt.group : this.removed.get(name);
    if (group === undefined || group === this.syncs || group < this.answered) return null;
    return this.until(() => group < this.answered);
  }

  /**
   * Before an Execute or Describe of portal `name`: a promise when a Sync or simple Query sent after its Bind has not
   * been answered (its transaction may end there, and the portal with it: what the name is then is for the answer to
   * tell, see ready()). Resolved once answered (or skipped); look the portal up again then. Null when it can go on now.
   */
  waitForPortal(name: string): Promise<void> | null {
    const portal = this.portals.get(name);
    if (!portal || portal.bound === this.ends) return null;
    let end: Pending | null = null;
    for (const p of this.queue) {
      if (p.kind === 'bind' && p.portal === portal) end = null;
      else if (p.kind === 'sync' || p.kind === 'query') end = p;
    }
    const last = end;
    return last ? this.until(() => !this.queue.includes(last)) : null;
  }

  /**
   * Whether the server will skip a message sent now: it is skipping to Sync already, or a refused message's poison
   * Parse — certain to fail — went out since the last Sync.
   */
  doomed(): boolean {
    if (this.skipping) return true;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const p = this.queue[i]!;
      if (p.kind === 'sync') return false;
      if (p.kind === 'parse' && p.refusal) return true;
    }
    return false;
  }

  /** Whether what `portal` returns is still as last known: no other statement was sent to run since (Portal.seen). */
  fresh(portal: Portal): boolean {
    return portal.seen === this.runs;
  }

  /**
   * SQL about to run may define or forget these statement names (`null`: every one): PREPARE, DEALLOCATE, DISCARD ALL.
   * The relay no longer knows what they hold: they are forgotten now, with what Parses still in flight would put under
   * them (they run before it). Forgetting too much is safe: a Bind of a name not held here is judged as the SQL EXECUTE
   * of it (relay.ts). The unnamed statement is SQL's to neither make nor drop.
   */
  forget(names: readonly (string | null)[]): void {
    if (!names.length) return;
    const all = names.includes(null);
    const gone = (name: string) => name !== '' && (all || names.includes(name));
    for (const map of [this.statements, this.confirmedStatements]) for (const name of [...map.keys()]) if (gone(name)) map.delete(name);
    for (const p of this.queue) if (p.kind === 'parse' && p.stmt && gone(p.name)) p.stmt = undefined;
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  /** Wake the waits whose answers came. */
  private settle(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (!w.done()) continue;
      this.waiters.splice(i, 1);
      w.resolve();
    }
  }
}
