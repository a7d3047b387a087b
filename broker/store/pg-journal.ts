// The audit journal's side of the PostgreSQL store: ingest() applies a batch of journal events in ONE
// transaction with the position read up to; reserveStatementIds() hands out blocks of statement ids under a
// row lock, so replicas never number alike. The indexer calls ingest with thousands of events at a time: each
// kind of write is one multi-row statement over unnest()ed arrays, idempotent (ON CONFLICT DO NOTHING, or
// updates that write the same values again), and an event that cannot be applied is skipped and counted.
import type { PgColumn } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import type { JournalEvent, JournalPosition } from './types.js';
import { counters, journalState, sessions, statementSamples, statements, approvals } from './schema.pg.js';
import { planIngest, type DoneEvent } from './journal-batch.js';
import { columnsOf, guarded, iso, json, q, T, unnestFrom, unnestInsert, inTransaction } from './pg-sql.js';

const se = sessions;
const st = statements;
const sm = statementSamples;
const sessionCols = [
  se.id,
  se.target,
  se.engine,
  se.subject,
  se.issuer,
  se.build,
  se.claims,
  se.actors,
  se.tokenId,
  se.clientAddress,
  se.clientPort,
  se.clientApplication,
  se.dbUser,
  se.tls,
  se.startedAt,
  se.replicaId,
  se.dbRole,
];
export const STATEMENT_COLS = [
  st.id,
  st.sessionId,
  st.seq,
  st.sql,
  st.protocol,
  st.kinds,
  st.decision,
  st.ruleId,
  st.message,
  st.startedAt,
  st.approvalId,
  st.policyVersion,
];
const outcomeCols = [st.durationMs, st.tag, st.rows, st.error];
const sampleCols = [sm.statementId, sm.columns, sm.rows, sm.truncated, sm.bytes];

const OPEN = unnestInsert(se, sessionCols, 'ON CONFLICT DO NOTHING');
/** Only statements whose session (and approval, when named) exist: the others are skipped, not a failed batch. */
export const INSERT_STATEMENTS = (cols: PgColumn[]) =>
  unnestInsert(
    st,
    cols,
    `WHERE EXISTS (SELECT 1 FROM ${T(se)} WHERE ${T(se)}.${q(se.id)} = u.${q(st.sessionId)}) ` +
      `AND (u.${q(st.approvalId)} IS NULL OR EXISTS (SELECT 1 FROM ${T(approvals)} WHERE ${T(approvals)}.${q(approvals.id)} = u.${q(st.approvalId)})) ` +
      `ON CONFLICT DO NOTHING RETURNING ${q(st.id)}`,
  );
const STMT = INSERT_STATEMENTS([...STATEMENT_COLS, ...outcomeCols]);
const END =
  `UPDATE ${T(se)} SET ${q(se.endedAt)} = u.${q(se.endedAt)}, ${q(se.endReason)} = u.${q(se.endReason)} ` +
  `FROM ${unnestFrom([se.id, se.endedAt, se.endReason])} WHERE ${T(se)}.${q(se.id)} = u.${q(se.id)} AND ${T(se)}.${q(se.endedAt)} IS NULL`;
export const COMPLETE =
  `UPDATE ${T(st)} SET ${outcomeCols.map((c) => `${q(c)} = u.${q(c)}`).join(', ')} ` +
  `FROM ${unnestFrom([st.id, ...outcomeCols])} WHERE ${T(st)}.${q(st.id)} = u.${q(st.id)} RETURNING ${T(st)}.${q(st.id)}`;
/** A second sample for a statement replaces the first (as SQLite's INSERT OR REPLACE). */
export const SAMPLES = unnestInsert(
  sm,
  sampleCols,
  `WHERE EXISTS (SELECT 1 FROM ${T(st)} WHERE ${T(st)}.${q(st.id)} = u.${q(sm.statementId)}) ` +
    `ON CONFLICT (${q(sm.statementId)}) DO UPDATE SET ${sampleCols
      .slice(1)
      .map((c) => `${q(c)} = excluded.${q(c)}`)
      .join(', ')} RETURNING ${q(sm.statementId)}`,
);
const J = journalState;
const SAVE_POSITION =
  `INSERT INTO ${T(J)} (${[J.journal, J.segment, J.offset, J.updatedAt].map(q).join(', ')}) VALUES ($1, $2, $3, now()) ` +
  `ON CONFLICT (${q(J.journal)}) DO UPDATE SET ${[J.segment, J.offset, J.updatedAt].map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}`;
const POSITION = `SELECT ${q(J.segment)} AS segment, ${q(J.offset)} AS offset FROM ${T(J)} WHERE ${q(J.journal)} = $1`;
const MAX_ID = `(SELECT coalesce(max(${q(st.id)}), 0) + 1 FROM ${T(st)})`;
/**
 * One statement, safe across processes: the first caller inserts the counter (above every stored id), the
 * others wait on its row lock and move it on; ids stored without the counter (none should be) are skipped.
 */
const RESERVE =
  `INSERT INTO ${T(counters)} (${q(counters.name)}, ${q(counters.next)}) VALUES ('statement_id', ${MAX_ID} + $1::bigint) ` +
  `ON CONFLICT (${q(counters.name)}) DO UPDATE SET ${q(counters.next)} = greatest(${T(counters)}.${q(counters.next)}, ${MAX_ID}) + $1::bigint ` +
  `RETURNING ${q(counters.next)} - $1::bigint AS first`;

/** A sample's column values as the statement_samples insert binds them, after the statement id. */
export function sampleRow(id: number, s: NonNullable<DoneEvent['sample']>): unknown[] {
  return [id, json(s.columns.map((c) => ({ name: c.name, type: c.type }))), json(s.rows), s.truncated, Math.max(0, Math.floor(s.bytes))];
}

/** Runs a prepared multi-row statement: one array parameter per column. */
function bulk(c: pg.PoolClient, text: string, rows: readonly unknown[][], width: number) {
  return c.query<{ id?: string; statement_id?: string }>(text, columnsOf(rows, width));
}

export class PgJournal {
  constructor(private readonly pool: pg.Pool) {}

  async ingest(journal: string, events: readonly JournalEvent[], position: JournalPosition): Promise<number> {
    const { opens, statements: pending, ends, outcomes: dones, sampled } = planIngest(events);
    return inTransaction(this.pool, async (c) => {
      let skipped = 0;
      await guarded(c, opens, async (rows) => {
        const values = rows.map((e) => [
          e.id,
          e.target,
          e.engine,
          e.subject,
          e.issuer,
          e.build,
          json(e.claims),
          json(e.actors),
          e.tokenId,
          e.clientAddress,
          e.clientPort,
          e.clientApplication,
          e.dbUser,
          e.tls,
          iso(e.startedAt),
          e.replicaId ?? null,
          e.dbRole ?? null,
        ]);
        await bulk(c, OPEN, values, sessionCols.length);
        return 0; // an open already there is no skip (a replay)
      });
      skipped += await guarded(c, pending, async (rows) => {
        const values = rows.map(({ s, done: d }) => [
          s.id,
          s.sessionId,
          s.seq,
          s.sql,
          s.protocol,
          json(s.kinds),
          s.decision,
          s.ruleId,
          s.message,
          iso(s.startedAt),
          s.approvalId,
          s.policyVersion ?? null,
          d?.durationMs ?? null,
          d?.tag ?? null,
          d?.rows ?? null,
          d?.error ?? null,
        ]);
        const { rowCount } = await bulk(c, STMT, values, STATEMENT_COLS.length + outcomeCols.length);
        return rows.length - (rowCount ?? 0); // as SQLite's INSERT OR IGNORE: a statement already there counts
      });
      await guarded(c, ends, async (rows) => {
        await bulk(
          c,
          END,
          rows.map((e) => [e.id, iso(e.at), e.reason]),
          3,
        );
        return 0;
      });
      skipped += await guarded(c, dones, async (rows) => {
        const last = new Map<number, DoneEvent>();
        for (const d of rows) last.set(d.id, d); // sequential updates: the last one stays
        const { rows: updated } = await bulk(
          c,
          COMPLETE,
          [...last.values()].map((d) => [d.id, d.durationMs, d.tag, d.rows, d.error]),
          5,
        );
        const found = new Set(updated.map((r) => Number(r.id)));
        return rows.filter((d) => !found.has(d.id)).length;
      });
      skipped += await guarded(c, sampled, async (rows) => {
        const last = new Map<number, DoneEvent>();
        for (const d of rows) last.set(d.id, d); // a later sample of a statement replaces an earlier one
        const { rows: written } = await bulk(
          c,
          SAMPLES,
          [...last.values()].map((d) => sampleRow(d.id, d.sample!)),
          sampleCols.length,
        );
        const found = new Set(written.map((r) => Number(r.statement_id)));
        return rows.filter((d) => !found.has(d.id)).length;
      });
      await c.query(SAVE_POSITION, [journal, position.segment, position.offset]);
      return skipped;
    });
  }

  async journalPosition(journal: string): Promise<JournalPosition | null> {
    const { rows } = await this.pool.query<{ segment: number; offset: string }>(POSITION, [journal]);
    const row = rows[0];
    return row ? { segment: row.segment, offset: Number(row.offset) } : null;
  }

  async reserveStatementIds(count: number): Promise<number> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`store: cannot reserve ${count} statement ids`);
    const { rows } = await this.pool.query<{ first: string }>(RESERVE, [count]);
    return Number(rows[0]!.first);
  }
}
