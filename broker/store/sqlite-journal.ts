// The audit journal's side of the embedded SQLite store: ingest() applies a batch of journal events in one
// transaction with the position read up to; reserveStatementIds() hands out blocks of statement ids. The
// indexer (broker/audit/journal) is the only caller of ingest; it calls it with thousands of events at a
// time, so the writes are raw statements prepared once, as the group commit's are.
import type Database from 'better-sqlite3';
import { getTableName } from 'drizzle-orm';
import type { JournalEvent, JournalPosition } from './types.js';
import { counters, journalState, sessions, statements } from './schema.sqlite.js';
import type { SqliteSamples } from './sqlite-samples.js';
import { planIngest } from './journal-batch.js';

const q = (c: { name: string }) => `"${c.name}"`;
const cols = (list: { name: string }[]) => list.map(q).join(', ');
const marks = (n: number) => new Array<string>(n).fill('?').join(', ');

/** A SQLite constraint failure (unknown session, duplicate key): the event is skipped, the batch goes on. */
function constraint(e: unknown): boolean {
  return typeof e === 'object' && e !== null && String((e as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT');
}

export class SqliteJournal {
  private readonly apply: (journal: string, events: readonly JournalEvent[], position: JournalPosition) => number;
  private readonly reserve: (count: number) => number;
  private readonly position: Database.Statement<[string], { segment: number; offset: number }>;

  constructor(client: Database.Database, samples: SqliteSamples) {
    const S = `"${getTableName(statements)}"`;
    const SS = `"${getTableName(sessions)}"`;
    const st = statements;
    const se = sessions;
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
    const stmtCols = [
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
    const openSession = client.prepare(`INSERT OR IGNORE INTO ${SS} (${cols(sessionCols)}) VALUES (${marks(sessionCols.length)})`);
    const endSession = client.prepare(`UPDATE ${SS} SET ${q(se.endedAt)} = ?, ${q(se.endReason)} = ? WHERE ${q(se.id)} = ? AND ${q(se.endedAt)} IS NULL`);
    const insertStmt = client.prepare(
      `INSERT OR IGNORE INTO ${S} (${cols([...stmtCols, ...outcomeCols])}) VALUES (${marks(stmtCols.length + outcomeCols.length)})`,
    );
    const complete = client.prepare(`UPDATE ${S} SET ${outcomeCols.map((c) => `${q(c)} = ?`).join(', ')} WHERE ${q(st.id)} = ?`);
    const J = `"${getTableName(journalState)}"`;
    const savePosition = client.prepare(
      `INSERT INTO ${J} (${cols([journalState.journal, journalState.segment, journalState.offset, journalState.updatedAt])}) VALUES (?, ?, ?, ?) ` +
        `ON CONFLICT(${q(journalState.journal)}) DO UPDATE SET ${q(journalState.segment)} = excluded.${q(journalState.segment)}, ` +
        `${q(journalState.offset)} = excluded.${q(journalState.offset)}, ${q(journalState.updatedAt)} = excluded.${q(journalState.updatedAt)}`,
    );
    this.position = client.prepare(
      `SELECT ${q(journalState.segment)} AS segment, ${q(journalState.offset)} AS offset FROM ${J} WHERE ${q(journalState.journal)} = ?`,
    );
    const C = `"${getTableName(counters)}"`;
    const counter = client.prepare<[string], { next: number }>(`SELECT ${q(counters.next)} AS next FROM ${C} WHERE ${q(counters.name)} = ?`);
    const maxId = client.prepare<[], { next: number }>(`SELECT coalesce(max(${q(st.id)}), 0) + 1 AS next FROM ${S}`);
    const setCounter = client.prepare(
      `INSERT INTO ${C} (${q(counters.name)}, ${q(counters.next)}) VALUES (?, ?) ON CONFLICT(${q(counters.name)}) DO UPDATE SET ${q(counters.next)} = excluded.${q(counters.next)}`,
    );

    const run = (s: Database.Statement, ...values: unknown[]): number => {
      try {
        return s.run(...values).changes;
      } catch (e) {
        if (constraint(e)) return 0; // this event only: one bad record must not stop the indexer for good
        throw e;
      }
    };

    this.apply = client.transaction((journal: string, events: readonly JournalEvent[], position: JournalPosition): number => {
      let skipped = 0;
      const plan = planIngest(events);
      for (const e of plan.opens)
        run(
          openSession,
          e.id,
          e.target,
          e.engine,
          e.subject,
          e.issuer,
          e.build,
          se.claims.mapToDriverValue(e.claims),
          se.actors.mapToDriverValue(e.actors),
          e.tokenId,
          e.clientAddress,
          e.clientPort,
          e.clientApplication,
          e.dbUser,
          e.tls ? 1 : 0,
          e.startedAt,
          e.replicaId ?? null,
          e.dbRole ?? null,
        );
      for (const { s, done: d } of plan.statements) {
        const changed = run(
          insertStmt,
          s.id,
          s.sessionId,
          s.seq,
          s.sql,
          s.protocol,
          st.kinds.mapToDriverValue(s.kinds),
          s.decision,
          s.ruleId,
          s.message,
          s.startedAt,
          s.approvalId,
          s.policyVersion ?? null,
          d?.durationMs ?? null,
          d?.tag ?? null,
          d?.rows ?? null,
          d?.error ?? null,
        );
        if (changed === 0) skipped++;
      }
      for (const e of plan.ends) run(endSession, e.at, e.reason, e.id);
      for (const d of plan.outcomes) if (run(complete, d.durationMs, d.tag, d.rows, d.error, d.id) === 0) skipped++;
      for (const e of plan.sampled) {
        if (!e.sample) continue;
        try {
          samples.insertEncoded(e.id, samples.encode(e.sample));
        } catch (err) {
          if (!constraint(err)) throw err;
          skipped++;
        }
      }
      savePosition.run(journal, position.segment, position.offset, Date.now());
      return skipped;
    }).immediate;

    this.reserve = client.transaction((count: number): number => {
      const stored = counter.get('statement_id')?.next ?? 0;
      const first = Math.max(stored, maxId.get()!.next);
      setCounter.run('statement_id', first + count);
      return first;
    }).immediate;
  }

  async ingest(journal: string, events: readonly JournalEvent[], position: JournalPosition): Promise<number> {
    return this.apply(journal, events, position);
  }

  async journalPosition(journal: string): Promise<JournalPosition | null> {
    const row = this.position.get(journal);
    return row ? { segment: row.segment, offset: row.offset } : null;
  }

  async reserveStatementIds(count: number): Promise<number> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`store: cannot reserve ${count} statement ids`);
    return this.reserve(count);
  }
}
