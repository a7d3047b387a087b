// What the relay expects back from the server, in order, and the client's prepared statements and portals.
//
// It follows the server's rule for errors in the extended protocol: after an ErrorResponse the server discards
// every message up to Sync. So the messages forwarded after a failing one get no answer — whether they went out
// before the error came back (they are in the queue: dropped from it) or after (a statement admitted slowly,
// while the error arrived: not queued at all, until the next Sync).
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
  /** `marked`: this Describe is what made `of` count as described (undone if the server skips it). */
  | { kind: 'describe'; of: Prepared | Portal | null; swallow: boolean; marked: boolean }
  /**
   * `stmt`: the statement it creates; null for a refused one (the poison sent in its place).
   */
  | { kind: 'parse'; name: string; stmt: Prepared | null; refusal?: Refusal }
  /** `portal`: null when its statement is unknown (the server refuses the Bind). */
  | { kind: 'bind'; name: string; portal: Portal | null }
  | { kind: 'close'; which: 'S' | 'P'; name: string }
  | { kind: 'sync' };

export class InFlight {
  /** Answers still owed, in order. */
  readonly queue: Pending[] = [];
  /** The client's statements and portals, as the messages sent so far define them. */
  readonly statements = new Map<string, Prepared>();
  readonly portals = new Map<string, Portal>();
  /** The server is discarding messages until Sync: what is sent meanwhile gets no answer. */
  private skipping = false;

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
    switch (p.kind) {
      case 'parse':
        if (p.stmt) this.statements.set(p.name, p.stmt);
        else this.statements.delete(p.name);
        break;
      case 'bind':
        if (p.portal) this.portals.set(p.name, p.portal);
        else this.portals.delete(p.name);
        break;
      case 'close':
        (p.which === 'S' ? this.statements : this.portals).delete(p.name);
        break;
      case 'describe':
        if (p.of && !p.of.described) {
          p.of.described = true;
          p.marked = true;
        }
        break;
      default:
    }
    this.queue.push(p);
  }

  /** The entry the next answer belongs to. */
  head(): Pending | undefined {
    return this.queue[0];
  }

  /** The head was answered in full (a Describe's description, an Execute's completion). */
  shift(): void {
    this.queue.shift();
  }

  /** ParseComplete, BindComplete or CloseComplete: the head is answered. */
  done(): void {
    this.queue.shift();
  }

  /** ReadyForQuery: the simple query or Sync at the head is answered (returned), or null if the head is neither. */
  ready(): Pending | null {
    const head = this.queue[0];
    if (!head || (head.kind !== 'query' && head.kind !== 'sync')) return null;
    this.queue.shift();
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
    this.undo(head);
    while (this.queue.length && this.queue[0]!.kind !== 'sync') {
      const p = this.queue.shift()!;
      if (p.kind === 'query' || p.kind === 'execute') this.skipped(p);
      this.undo(p);
    }
    if (!this.queue.length) this.skipping = true;
  }

  /** An entry left without taking effect: a Describe the server skipped described nothing. */
  private undo(p: Pending): void {
    if (p.kind === 'describe' && p.marked) p.of!.described = false;
  }
}
