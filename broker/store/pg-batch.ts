// The PostgreSQL store's direct write path (recordStatement/completeStatement, used when no journal is in
// front): as SQLite's group commit, every call queued in one turn of the event loop is written in ONE
// transaction of multi-row statements, and each promise settles once it has committed (or rejects with the
// whole batch). Batches run one after another; calls made while one is in flight form the next. Statement ids
// come in a block from counters.statement_id (as the journal's do), so replicas and journals never collide.
import type pg from 'pg';
import type { ResultSample, StatementOutcome } from '../types.js';
import type { NewStatement } from './types.js';
import { sessions, statements } from './schema.pg.js';
import { COMPLETE, SAMPLES, STATEMENT_COLS, INSERT_STATEMENTS, sampleRow } from './pg-journal.js';
import { columnsOf, inTransaction, iso, json, q, T } from './pg-sql.js';

/** Most records + completes one batch takes; more wait for the next. */
export const MAX_BATCH = 1000;

interface PendingRecord {
  s: NewStatement;
  kinds: string;
  resolve: (id: number) => void;
  reject: (e: unknown) => void;
}

interface PendingComplete {
  id: number;
  o: StatementOutcome;
  /** The sample's columns as bound, after the statement id; written only when the statement exists. */
  sample: unknown[] | null;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const INSERT = INSERT_STATEMENTS(STATEMENT_COLS);
/** The last seq of each named session that exists (0 when it has no statements yet). */
const LAST_SEQ =
  `SELECT s.${q(sessions.id)} AS id, (SELECT coalesce(max(${q(statements.seq)}), 0) FROM ${T(statements)} ` +
  `WHERE ${q(statements.sessionId)} = s.${q(sessions.id)}) AS seq FROM ${T(sessions)} s WHERE s.${q(sessions.id)} = ANY($1::text[])`;

export class PgBatch {
  private records: PendingRecord[] = [];
  private completes: PendingComplete[] = [];
  private scheduled = false;
  /** The batch in flight (or the last one): the next starts after it. */
  private tail: Promise<void> = Promise.resolve();
  private committed = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly reserveIds: (count: number) => Promise<number>,
  ) {}

  get commits(): number {
    return this.committed;
  }

  record(s: NewStatement): Promise<number> {
    let kinds: string;
    try {
      kinds = json(s.kinds); // encoded now: a malformed record fails alone, not its batch
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<number>((resolve, reject) => {
      this.records.push({ s, kinds, resolve, reject });
      this.enqueued();
    });
  }

  complete(id: number, o: StatementOutcome, sample: ResultSample | null): Promise<void> {
    let encoded: unknown[] | null;
    try {
      encoded = sample ? sampleRow(id, sample) : null;
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      this.completes.push({ id, o, sample: encoded, resolve, reject });
      this.enqueued();
    });
  }

  /** Resolves once everything queued so far has been written (or has failed: each call's own promise says). */
  settle(): Promise<void> {
    if (this.records.length || this.completes.length) this.flush();
    return this.tail;
  }

  private enqueued(): void {
    if (this.records.length + this.completes.length >= MAX_BATCH) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Takes what is queued as one batch, written after the batch in flight. */
  private flush(): void {
    const records = this.records;
    const completes = this.completes;
    if (records.length === 0 && completes.length === 0) return;
    this.records = [];
    this.completes = [];
    this.tail = this.tail.then(() => this.write(records, completes));
  }

  /** Never rejects: every call of the batch gets the batch's outcome. */
  private async write(records: PendingRecord[], completes: PendingComplete[]): Promise<void> {
    const ids = new Array<number | Error>(records.length);
    let completed: Set<number>;
    try {
      const first = records.length ? await this.reserveIds(records.length) : 0;
      completed = await inTransaction(this.pool, async (c) => {
        if (records.length) {
          const { rows } = await c.query<{ id: string; seq: string }>(LAST_SEQ, [[...new Set(records.map((r) => r.s.sessionId))]]);
          const seqs = new Map(rows.map((r) => [r.id, Number(r.seq)]));
          const values: unknown[][] = [];
          records.forEach((r, i) => {
            const last = seqs.get(r.s.sessionId);
            if (last === undefined) {
              // Only this record fails: one client's mistake must not refuse the others' statements.
              ids[i] = new Error(`store: cannot record a statement for unknown session ${r.s.sessionId}`);
              return;
            }
            seqs.set(r.s.sessionId, last + 1);
            ids[i] = first + i;
            const s = r.s;
            values.push([
              first + i,
              s.sessionId,
              last + 1,
              s.sql,
              s.protocol,
              r.kinds,
              s.decision,
              s.ruleId,
              s.message,
              iso(s.startedAt),
              s.approvalId ?? null,
              s.policyVersion ?? null,
            ]);
          });
          if (values.length) {
            const { rowCount } = await c.query(INSERT, columnsOf(values, STATEMENT_COLS.length));
            // A statement whose approval is unknown is not written: as a foreign key failure in SQLite, the batch fails.
            if (rowCount !== values.length) throw new Error('store: a statement names an unknown approval request');
          }
        }
        const done = new Set<number>();
        if (completes.length) {
          const last = new Map<number, PendingComplete>();
          for (const x of completes) last.set(x.id, x); // sequential updates: the last one stays
          const outcomes = [...last.values()].map((x) => [x.id, x.o.durationMs, x.o.tag, x.o.rows, x.o.error]);
          const { rows } = await c.query<{ id: string }>(COMPLETE, columnsOf(outcomes, 5));
          for (const r of rows) done.add(Number(r.id));
          const samples = [...last.values()].filter((x) => x.sample && done.has(x.id)).map((x) => x.sample!);
          if (samples.length) await c.query(SAMPLES, columnsOf(samples, 5));
        }
        return done;
      });
      this.committed++;
    } catch (e) {
      // Rolled back as a whole: nothing of the batch was written, so every one of its calls fails.
      for (const r of records) r.reject(e);
      for (const x of completes) x.reject(e);
      return;
    }
    records.forEach((r, i) => {
      const id = ids[i]!;
      if (typeof id === 'number') r.resolve(id);
      else r.reject(id);
    });
    for (const x of completes) {
      if (completed.has(x.id)) x.resolve();
      else x.reject(new Error(`store: cannot complete unknown statement ${x.id}`));
    }
  }
}
