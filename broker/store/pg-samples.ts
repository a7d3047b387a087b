// Result samples (what a client saw of a statement's result) in the PostgreSQL store. A sample given to
// completeStatement() is written by PgStore's batch (pg.ts); recordSample() is an insert of its own.
// PgStore delegates its sample methods here.
import { asc, eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { ResultSample } from '../types.js';
import { statements, statementSamples } from './schema.pg.js';

export class PgSamples {
  constructor(
    private readonly db: NodePgDatabase,
    /** Lands queued statement records first (a sample refers to its statement's row). */
    private readonly settle: () => Promise<void>,
  ) {}

  async record(statementId: number, s: ResultSample): Promise<void> {
    await this.settle();
    const values = {
      columns: s.columns.map((c) => ({ name: c.name, type: c.type })),
      rows: s.rows,
      truncated: s.truncated,
      bytes: Math.max(0, Math.floor(s.bytes)),
    };
    const [known] = await this.db.select({ id: statements.id }).from(statements).where(eq(statements.id, statementId));
    if (!known) throw new Error(`store: cannot record a sample for unknown statement ${statementId}`);
    // A second sample for a statement replaces the first.
    await this.db
      .insert(statementSamples)
      .values({ statementId, ...values })
      .onConflictDoUpdate({ target: statementSamples.statementId, set: values });
  }

  async get(statementId: number): Promise<ResultSample | null> {
    await this.settle();
    const [row] = await this.db.select().from(statementSamples).where(eq(statementSamples.statementId, statementId));
    return row ? toSample(row) : null;
  }

  async list(sessionId: string): Promise<Map<number, ResultSample>> {
    await this.settle();
    const rows = await this.db
      .select({ sample: statementSamples })
      .from(statementSamples)
      .innerJoin(statements, eq(statements.id, statementSamples.statementId))
      .where(eq(statements.sessionId, sessionId))
      .orderBy(asc(statements.seq));
    return new Map(rows.map((r) => [r.sample.statementId, toSample(r.sample)]));
  }
}

function toSample(row: typeof statementSamples.$inferSelect): ResultSample {
  return { columns: row.columns, rows: row.rows, truncated: row.truncated, bytes: row.bytes };
}
