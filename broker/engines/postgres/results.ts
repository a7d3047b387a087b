// The relay's result side: what each prepared statement and portal returns (its RowDescription, kept from
// the Describe that answered it, with the formats Bind asked for), and what masking does to the result set
// whose rows are coming. An Execute sends no RowDescription: its rows are read with its portal's.
import type { Detection } from '../../masking/index.js';
import type { Decision, StatementRequest } from '../../types.js';
import type { RowPlan } from './datarow.js';
import type { Described, PgMasking } from './masking.js';
import { NO_COLUMNS, withFormats, type RowDescription } from './row-description.js';

/** The result set whose rows are coming: how to read them, and what to mask. */
export interface ActiveResult {
  desc: RowDescription;
  plan: RowPlan | null;
  /** COPY … TO STDOUT rows: the detectors to run over them. */
  copy: Detection | null;
}

export interface Prepared {
  sql: string;
  decision: Decision;
  /** Results left unmasked (`exempt_masking`), or masking off for the session. */
  exempt: boolean;
  /** A Describe of it was sent (by the client, or by the relay). */
  described: boolean;
  result: Described | null;
  /** Syncs sent before its Parse (see InFlight.waitFor). */
  group: number;
}

export interface Portal {
  prepared: Prepared;
  /** Bind's result-format codes. */
  formats: number[];
  described: boolean;
  result: Described | null;
  /**
   * The count of statements sent upstream (InFlight.runs) when what it returns was last known: at its Bind, its
   * Describe, its own Execute. Another statement run since (a CLOSE and a DECLARE of its name, a function opening a
   * refcursor under it) may have put something else under its name: its rows are then read by a new Describe.
   */
  seen: number;
  /** The count of Syncs and simple Queries sent (InFlight.ends) at its Bind: none since, its transaction is still on. */
  bound: number;
}

/** An empty replacement: the message is not sent to the client (the answer to a Describe it did not send). */
export const NOTHING = Buffer.alloc(0);

export class ResultMasking {
  constructor(readonly masking: PgMasking | null) {}

  /**
   * Whether an admitted statement's result is left unmasked: its decision says so (a break-glass policy rule,
   * `exempt_masking`), or no masking rule applies to the session.
   */
  exempt(d: Decision): boolean {
    return this.masking === null || d.exemptMasking === true;
  }

  /** The engine's own refusal, through the session (so it is recorded): COPY output it could not mask, unless exempt. */
  confine(sql: string): StatementRequest['confine'] {
    const refusal = this.masking?.refusal(sql);
    return refusal ? (_, d) => (d.exemptMasking ? null : refusal) : undefined;
  }

  /** A statement was admitted (DDL: see PgMasking.admitted). */
  admitted(d: Decision): void {
    this.masking?.admitted(d.kinds);
  }

  /** ReadyForQuery with this transaction status. */
  ready(status: string): void {
    this.masking?.ready(status);
  }

  /**
   * Whether the relay must Describe a portal before executing it: its rows would otherwise be unreadable, or read
   * by a description that may no longer be its own (`fresh` false: other statements ran since it was last known).
   */
  needsDescribe(p: Portal, tapRows: boolean, fresh: boolean): boolean {
    const masked = this.masking !== null && !p.prepared.exempt;
    if (!fresh && (tapRows || masked)) return true;
    const kept = p.result ?? p.prepared.result;
    // A description kept from before DDL (or too old) may no longer say where the columns come from.
    if (masked && kept && this.masking!.stale(kept)) return true;
    return (tapRows || masked) && !p.described && !p.prepared.described;
  }

  /** The result an Execute's rows belong to, from what its portal (or its statement) was described as. */
  forExecute(p: Portal, exempt: boolean): ActiveResult {
    const described = p.result ?? p.prepared.result;
    const desc = p.result?.desc ?? (described ? withFormats(described.desc, p.formats) : null);
    const masked = this.masking !== null && !exempt;
    // Cannot happen (a Describe is added before such an Execute): never pass rows unread.
    if (masked && !described?.resolved) throw new Error('rows of a statement whose columns are unknown cannot be masked');
    return { desc: desc ?? NO_COLUMNS, plan: masked && described && desc ? this.masking!.plan(described, desc) : null, copy: null };
  }

  /**
   * A RowDescription: resolved against the catalog when its result is masked, then `done` (at once when the
   * catalog cache has it all, else after one lookup — the relay's scanner waits meanwhile).
   */
  describe(desc: RowDescription, exempt: boolean, done: (d: Described) => Buffer | null): Buffer | null | Promise<Buffer | null> {
    const d: Described = { desc, resolved: null };
    const wait = exempt ? null : this.masking?.resolve(d);
    return wait ? wait.then(() => done(d)) : done(d);
  }

  /** The result set a simple query's RowDescription starts. */
  start(d: Described, exempt: boolean): ActiveResult {
    return { desc: d.desc, plan: exempt || !this.masking ? null : this.masking.plan(d, d.desc), copy: null };
  }

  /** COPY … TO STDOUT output: null when nothing is to be done, 'refuse' when it cannot be masked. */
  copyOut(exempt: boolean, binary: boolean): ActiveResult | null | 'refuse' {
    if (!this.masking || exempt) return null;
    const copy = this.masking.copyDetection(binary);
    if (copy === 'refuse') return copy;
    return copy ? { desc: NO_COLUMNS, plan: null, copy } : null;
  }
}
