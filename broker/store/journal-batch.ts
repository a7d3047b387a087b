// A batch of journal events sorted into the writes both store dialects' ingest() makes, in this order:
// sessions opened, statements (one recorded and finished within the batch is written once, with its
// outcome: no UPDATE), sessions ended (the first end of a session wins), outcomes of statements recorded
// in an earlier batch, result samples (a later one of a statement replaces an earlier one).
import type { JournalEvent } from './types.js';

export type OpenEvent = Extract<JournalEvent, { t: 'open' }>;
export type StmtEvent = Extract<JournalEvent, { t: 'stmt' }>;
export type DoneEvent = Extract<JournalEvent, { t: 'done' }>;
export type EndEvent = Extract<JournalEvent, { t: 'end' }>;

export interface IngestPlan {
  opens: OpenEvent[];
  statements: { s: StmtEvent; done: DoneEvent | null }[];
  ends: EndEvent[];
  /** In the order they came: for one statement, the last counts. */
  outcomes: DoneEvent[];
  /** Every outcome that carries a sample, in the order they came. */
  sampled: DoneEvent[];
}

export function planIngest(events: readonly JournalEvent[]): IngestPlan {
  const opens: OpenEvent[] = [];
  const pending = new Map<number, { s: StmtEvent; done: DoneEvent | null }>();
  const ends = new Map<string, EndEvent>();
  const outcomes: DoneEvent[] = [];
  const sampled: DoneEvent[] = [];
  for (const e of events) {
    if (e.t === 'open') opens.push(e);
    else if (e.t === 'stmt') pending.set(e.id, { s: e, done: null });
    else if (e.t === 'done') {
      const p = pending.get(e.id);
      if (p) p.done = e;
      else outcomes.push(e);
      if (e.sample) sampled.push(e);
    } else if (!ends.has(e.id)) ends.set(e.id, e);
  }
  return { opens, statements: [...pending.values()], ends: [...ends.values()], outcomes, sampled };
}
