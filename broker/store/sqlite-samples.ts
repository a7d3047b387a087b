// Result samples (what a client saw of a statement's result) in the embedded SQLite store. A sample
// given to completeStatement() is written by SqliteStore's group-commit transaction through
// insertEncoded(); recordSample() is a plain insert. SqliteStore delegates its sample methods here.
import type Database from 'better-sqlite3';
import { asc, eq, getTableName } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { ResultSample } from '../types.js';
import { statements, statementSamples } from './schema.sqlite.js';

/** A sample's column values as SQLite stores them, after the statement id. */
export type EncodedSample = [columns: unknown, rows: unknown, truncated: unknown, bytes: number];

export class SqliteSamples {
  private readonly insert: Database.Statement;
  private readonly exists: Database.Statement<[number], { id: number }>;

  constructor(
    client: Database.Database,
    private readonly db: BetterSQLite3Database,
    /** Lands queued statement records first (a sample refers to its statement's row). */
    private readonly flush: () => void,
  ) {
    const t = statementSamples;
    const cols = [t.statementId, t.columns, t.rows, t.truncated, t.bytes].map((c) => `"${c.name}"`).join(', ');
    // OR REPLACE: a second sample for a statement replaces the first instead of failing its whole batch.
    this.insert = client.prepare(`INSERT OR REPLACE INTO "${getTableName(t)}" (${cols}) VALUES (?, ?, ?, ?, ?)`);
    this.exists = client.prepare(`SELECT "${statements.id.name}" AS id FROM "${getTableName(statements)}" WHERE "${statements.id.name}" = ?`);
  }

  /** Maps a sample with the schema's own encoders (throws for one that cannot be stored, before any batch). */
  encode(s: ResultSample): EncodedSample {
    const t = statementSamples;
    return [
      t.columns.mapToDriverValue(s.columns.map((c) => ({ name: c.name, type: c.type }))),
      t.rows.mapToDriverValue(s.rows),
      t.truncated.mapToDriverValue(s.truncated),
      Math.max(0, Math.floor(s.bytes)),
    ];
  }

  /** Inside a transaction the caller holds, for a statement known to exist. */
  insertEncoded(statementId: number, e: EncodedSample): void {
    this.insert.run(statementId, ...e);
  }

  async record(statementId: number, sample: ResultSample): Promise<void> {
    const e = this.encode(sample);
    this.flush();
    if (!this.exists.get(statementId)) throw new Error(`store: cannot record a sample for unknown statement ${statementId}`);
    this.insertEncoded(statementId, e);
  }

  async get(statementId: number): Promise<ResultSample | null> {
    this.flush();
    const [row] = this.db.select().from(statementSamples).where(eq(statementSamples.statementId, statementId)).all();
    return row ? toSample(row) : null;
  }

  async list(sessionId: string): Promise<Map<number, ResultSample>> {
    this.flush();
    const rows = this.db
      .select({ sample: statementSamples })
      .from(statementSamples)
      .innerJoin(statements, eq(statements.id, statementSamples.statementId))
      .where(eq(statements.sessionId, sessionId))
      .orderBy(asc(statements.seq))
      .all();
    return new Map(rows.map((r) => [r.sample.statementId, toSample(r.sample)]));
  }
}

function toSample(row: typeof statementSamples.$inferSelect): ResultSample {
  return { columns: row.columns, rows: row.rows, truncated: row.truncated, bytes: row.bytes };
}
