// The embedded store: SQLite through better-sqlite3 (synchronous, in-process) and drizzle.
// recordStatement/completeStatement run for every statement a client sends, so they use statements
// prepared once at open; the rest is ordinary drizzle queries.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { and, asc, desc, eq, gte, inArray, isNotNull, isNull, lt, sql, type SQL } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { StatementOutcome } from '../types.js';
import {
  AmbiguousSessionIdError,
  newSessionId,
  normalizeSessionIdPrefix,
  type NewSession,
  type NewStatement,
  type SessionFilter,
  type SessionSummary,
  type StatementRecord,
  type Store,
} from './index.js';
import { sessions, statements, type SessionRow } from './schema.sqlite.js';

/** Resolved against this file, not the cwd: works wherever the broker is started from. */
export const SQLITE_MIGRATIONS = fileURLToPath(new URL('../../migrations/sqlite', import.meta.url));

export interface SqliteStoreOptions {
  /** How long a write waits for another connection's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) a SQLite store at `path` (or `:memory:`) and applies pending migrations. */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  const memory = path === ':memory:';
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
  const client = new Database(path);
  try {
    // WAL: readers never block the writer. NORMAL: a commit survives a crash of the broker; only a
    // power loss / OS crash may lose the last transactions (FULL would fsync every commit).
    if (!memory) client.pragma('journal_mode = WAL');
    client.pragma('synchronous = NORMAL');
    client.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    client.pragma('foreign_keys = ON');
    const db = drizzle({ client });
    migrate(db, { migrationsFolder: SQLITE_MIGRATIONS });
    return new SqliteStore(client, db);
  } catch (err) {
    client.close();
    throw err;
  }
}

type Db = BetterSQLite3Database;

function prepareHotPath(db: Db) {
  const p = sql.placeholder;
  return {
    bumpCount: db
      .update(sessions)
      .set({ statementCount: sql`${sessions.statementCount} + 1` })
      .where(eq(sessions.id, p('sessionId')))
      .returning({ seq: sessions.statementCount })
      .prepare(),
    insertStatement: db
      .insert(statements)
      .values({
        sessionId: p('sessionId'),
        seq: p('seq'),
        sql: p('sql'),
        protocol: p('protocol'),
        kinds: p('kinds'),
        decision: p('decision'),
        ruleId: p('ruleId'),
        message: p('message'),
        startedAt: p('startedAt'),
      })
      .returning({ id: statements.id })
      .prepare(),
    complete: db
      .update(statements)
      // update().set() is typed without placeholders; wrapped in sql`` they bind all the same.
      .set({
        durationMs: sql`${p('durationMs')}`,
        tag: sql`${p('tag')}`,
        rows: sql`${p('rows')}`,
        error: sql`${p('error')}`,
      })
      .where(eq(statements.id, p('id')))
      .prepare(),
  };
}

// SQLite caps bound parameters per statement; count queries over many sessions go in chunks.
const IN_CHUNK = 500;

export class SqliteStore implements Store {
  private readonly hot: ReturnType<typeof prepareHotPath>;
  private readonly recordTx: (s: NewStatement) => number;

  constructor(
    /** The underlying connection, for diagnostics and tests; the broker itself never needs it. */
    readonly client: Database.Database,
    private readonly db: Db,
  ) {
    this.hot = prepareHotPath(db);
    // One IMMEDIATE transaction: the seq and the row commit together or not at all.
    this.recordTx = client.transaction((s: NewStatement): number => {
      const bumped = this.hot.bumpCount.get({ sessionId: s.sessionId });
      if (!bumped) throw new Error(`store: cannot record a statement for unknown session ${s.sessionId}`);
      const inserted = this.hot.insertStatement.get({ ...s, seq: bumped.seq });
      if (!inserted) throw new Error('store: statement insert returned no row');
      return inserted.id;
    }).immediate;
  }

  async createSession(s: NewSession): Promise<string> {
    const id = newSessionId();
    const { identity: who, client } = s;
    this.db
      .insert(sessions)
      .values({
        id,
        target: s.target,
        engine: s.engine,
        subject: who.subject,
        issuer: who.issuer,
        build: who.build,
        claims: who.claims,
        actors: who.actors,
        tokenId: who.tokenId,
        clientAddress: client.address,
        clientPort: client.port,
        clientApplication: client.application,
        dbUser: client.user,
        tls: client.tls,
        startedAt: s.startedAt,
      })
      .run();
    return id;
  }

  async endSession(id: string, reason: string, at: Date = new Date()): Promise<void> {
    this.db
      .update(sessions)
      .set({ endedAt: at, endReason: reason })
      .where(and(eq(sessions.id, id), isNull(sessions.endedAt)))
      .run();
  }

  async endOpenSessions(reason: string): Promise<number> {
    const result = this.db
      .update(sessions)
      .set({ endedAt: new Date(), endReason: reason })
      .where(isNull(sessions.endedAt))
      .run();
    return result.changes;
  }

  async recordStatement(s: NewStatement): Promise<number> {
    return this.recordTx(s);
  }

  async completeStatement(id: number, o: StatementOutcome): Promise<void> {
    const result = this.hot.complete.run({
      id,
      durationMs: o.durationMs,
      tag: o.tag,
      rows: o.rows,
      error: o.error,
    });
    if (result.changes === 0) throw new Error(`store: cannot complete unknown statement ${id}`);
  }

  async listSessions(filter: SessionFilter): Promise<SessionSummary[]> {
    const where: SQL[] = [];
    if (filter.build !== undefined) where.push(eq(sessions.build, filter.build));
    if (filter.subject !== undefined) where.push(eq(sessions.subject, filter.subject));
    if (filter.target !== undefined) where.push(eq(sessions.target, filter.target));
    if (filter.open === true) where.push(isNull(sessions.endedAt));
    if (filter.open === false) where.push(isNotNull(sessions.endedAt));
    const query = this.db
      .select()
      .from(sessions)
      .where(and(...where))
      // rowid breaks ties between sessions started in the same millisecond: later insert first.
      .orderBy(desc(sessions.startedAt), desc(sql`rowid`));
    const rows = filter.limit !== undefined ? query.limit(Math.max(0, filter.limit)).all() : query.all();
    return this.summarize(rows);
  }

  async getSession(idOrPrefix: string): Promise<SessionSummary | null> {
    const prefix = normalizeSessionIdPrefix(idOrPrefix);
    if (prefix === '') return null;
    const exact = this.db.select().from(sessions).where(eq(sessions.id, prefix)).all();
    // Ids are ASCII, so [prefix, prefix + U+FFFF) is exactly the ids starting with prefix (an index range).
    const rows =
      exact.length > 0
        ? exact
        : this.db
            .select()
            .from(sessions)
            .where(and(gte(sessions.id, prefix), lt(sessions.id, `${prefix}\uffff`)))
            .orderBy(asc(sessions.id))
            .limit(3)
            .all();
    if (rows.length > 1) throw new AmbiguousSessionIdError(idOrPrefix, rows.map((r) => r.id));
    const [summary] = this.summarize(rows);
    return summary ?? null;
  }

  async listStatements(sessionId: string): Promise<StatementRecord[]> {
    return this.db
      .select()
      .from(statements)
      .where(eq(statements.sessionId, sessionId))
      .orderBy(asc(statements.seq))
      .all();
  }

  async ping(): Promise<void> {
    this.client.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.client.open) this.client.close();
  }

  /** Adds the per-decision counts, counted from the statements. */
  private summarize(rows: SessionRow[]): SessionSummary[] {
    const counts = new Map<string, { allowed: number; denied: number; reviewed: number }>();
    for (const row of rows) counts.set(row.id, { allowed: 0, denied: 0, reviewed: 0 });
    for (let i = 0; i < rows.length; i += IN_CHUNK) {
      const ids = rows.slice(i, i + IN_CHUNK).map((r) => r.id);
      const grouped = this.db
        .select({ sessionId: statements.sessionId, decision: statements.decision, n: sql<number>`count(*)` })
        .from(statements)
        .where(inArray(statements.sessionId, ids))
        .groupBy(statements.sessionId, statements.decision)
        .all();
      for (const g of grouped) {
        const c = counts.get(g.sessionId);
        if (!c) continue;
        if (g.decision === 'allow') c.allowed = g.n;
        else if (g.decision === 'deny') c.denied = g.n;
        else if (g.decision === 'review') c.reviewed = g.n;
      }
    }
    return rows.map((row) => ({
      id: row.id,
      target: row.target,
      engine: row.engine,
      subject: row.subject,
      issuer: row.issuer,
      build: row.build,
      claims: row.claims,
      actors: row.actors,
      tokenId: row.tokenId,
      clientAddress: row.clientAddress,
      clientPort: row.clientPort,
      clientApplication: row.clientApplication,
      dbUser: row.dbUser,
      tls: row.tls,
      startedAt: row.startedAt,
      endedAt: row.endedAt,
      endReason: row.endReason,
      statementCount: row.statementCount,
      ...(counts.get(row.id) ?? { allowed: 0, denied: 0, reviewed: 0 }),
    }));
  }
}
