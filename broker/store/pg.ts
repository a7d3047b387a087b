// The PostgreSQL store: the Store contract over a pg.Pool and drizzle's node-postgres driver, for a fleet of
// brokers sharing one database. Migrations are applied at open under an advisory lock (several replicas may
// start at once). recordStatement/completeStatement are batched per turn of the event loop as SQLite's group
// commit is (one transaction per batch, multi-row statements); the rest are ordinary drizzle queries, split
// by concern in pg-*.ts as sqlite-*.ts are. The URL holds a password: it never appears in an error or a log.
import { join } from 'node:path';
import { DrizzleQueryError, and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { parse } from 'pg-connection-string';
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import type { ResultSample, StatementOutcome } from '../types.js';
import { AmbiguousSessionIdError, newSessionId, normalizeSessionIdPrefix } from './ids.js';
import { sessionFilterWhere, sessionValues, withDecisionCounts } from './session-rows.js';
import type {
  ApprovalExpectation,
  JournalEvent,
  JournalPosition,
  NewRefusedLogin,
  NewRevocation,
  NewSession,
  NewStatement,
  NewPolicyVersion,
  RefusedLoginFilter,
  ReplicaBeat,
  RevocationFilter,
  SessionFilter,
  SessionSummary,
  StatementRecord,
  Store,
  TokenUse,
} from './types.js';
import { sessions, statements, type SessionRow } from './schema.pg.js';
import { PgApprovals } from './pg-approvals.js';
import { PgJournal } from './pg-journal.js';
import { PgLogins } from './pg-logins.js';
import { PgRevocations } from './pg-revocations.js';
import { PgSamples } from './pg-samples.js';
import { PgBatch } from './pg-batch.js';
import { PgReplicas } from './pg-replicas.js';
import { PgPolicy } from './pg-policy.js';
import { MIGRATIONS_DIR } from '../paths.js';

/** Resolved against this file, not the cwd: works wherever the broker is started from. */
export const PG_MIGRATIONS = join(MIGRATIONS_DIR, 'postgres');

/** The advisory lock every replica takes around its migrations ("jitbrokr" in ASCII): one migrates at a time. */
export const MIGRATION_LOCK = '7667765247313587058';

/** Where a URL points, without its user or password: what errors may say. */
export function describePgUrl(url: string): string {
  try {
    const c = parse(url);
    return `${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.database ?? ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** An error that says where and what, never the URL itself (it may hold the password). */
function storeError(url: string, what: string, e: unknown): Error {
  const err = new Error(`store: ${what} the PostgreSQL store at ${describePgUrl(url)}: ${e instanceof Error ? e.message : String(e)}`);
  if (e instanceof Error) (err as Error & { code?: unknown }).code = (e as { code?: unknown }).code;
  return err;
}

/** Applies pending migrations on a connection of its own, holding the advisory lock for it. */
export async function migratePg(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {}); // a broken connection fails the query in progress, which reports it
  try {
    await client.connect();
  } catch (e) {
    throw storeError(url, 'cannot connect to', e);
  }
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle({ client }), { migrationsFolder: PG_MIGRATIONS });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK]).catch(() => {});
    }
  } catch (e) {
    throw storeError(url, 'cannot migrate', e);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface PgStoreOptions {
  /** Most connections the pool opens. Default 10. */
  maxConnections?: number;
}

/** Opens the PostgreSQL store at `url` (postgres:// or postgresql://) and applies pending migrations. */
export async function openPgStore(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
  await migratePg(url);
  const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10 });
  pool.on('error', () => {}); // an idle connection that broke is dropped by the pool; the next query reports
  try {
    await pool.query('SELECT 1');
  } catch (e) {
    await pool.end().catch(() => {});
    throw storeError(url, 'cannot connect to', e);
  }
  return new PgStore(pool);
}

/**
 * A failed query's error as PostgreSQL gave it: drizzle wraps it in one whose message holds the query and
 * its parameters (statement text, claims), which callers would log.
 */
export function plain<T>(p: PromiseLike<T>): Promise<T> {
  return Promise.resolve(p).catch((e: unknown) => {
    throw e instanceof DrizzleQueryError && e.cause instanceof Error ? e.cause : e;
  });
}

// Sessions per query when counting their statements.
const IN_CHUNK = 1000;

export class PgStore implements Store {
  private readonly db: NodePgDatabase;
  private readonly batch: PgBatch;
  private readonly approvals: PgApprovals;
  private readonly revocations: PgRevocations;
  private readonly samples: PgSamples;
  private readonly logins: PgLogins;
  private readonly journal: PgJournal;
  private readonly replicas: PgReplicas;
  private readonly policy: PgPolicy;
  private closed = false;

  constructor(
    /** The pool, for diagnostics and tests; the broker itself never needs it. */
    readonly pool: pg.Pool,
  ) {
    const db = (this.db = drizzle({ client: pool }));
    this.journal = new PgJournal(pool);
    this.batch = new PgBatch(pool, (n) => this.journal.reserveStatementIds(n));
    const settle = () => this.batch.settle();
    this.approvals = new PgApprovals(db, settle);
    this.revocations = new PgRevocations(db);
    this.logins = new PgLogins(db);
    this.samples = new PgSamples(db, settle);
    this.replicas = new PgReplicas(db);
    this.policy = new PgPolicy(db);
  }

  /** Batch transactions committed since open (diagnostics and tests). */
  get commits(): number {
    return this.batch.commits;
  }

  async createSession(s: NewSession): Promise<string> {
    const id = s.id ?? newSessionId();
    await plain(this.db.insert(sessions).values(sessionValues(id, s)));
    return id;
  }

  async endSession(id: string, reason: string, at: Date = new Date()): Promise<void> {
    await this.batch.settle(); // the session's queued records land before its end
    await plain(
      this.db
        .update(sessions)
        .set({ endedAt: at, endReason: reason })
        .where(and(eq(sessions.id, id), isNull(sessions.endedAt))),
    );
  }

  async endOpenSessions(reason: string, replicaId?: string): Promise<number> {
    await this.batch.settle();
    const result = await plain(
      this.db
        .update(sessions)
        .set({ endedAt: new Date(), endReason: reason })
        .where(and(isNull(sessions.endedAt), replicaId !== undefined ? eq(sessions.replicaId, replicaId) : undefined)),
    );
    return result.rowCount ?? 0;
  }

  recordStatement(s: NewStatement): Promise<number> {
    if (this.closed) return Promise.reject(new Error('store: closed'));
    return this.batch.record(s);
  }

  completeStatement(id: number, o: StatementOutcome, sample?: ResultSample | null): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store: closed'));
    return this.batch.complete(id, o, sample ?? null);
  }

  async listSessions(filter: SessionFilter): Promise<SessionSummary[]> {
    await this.batch.settle(); // reads see every write already asked for, awaited or not
    const where = sessionFilterWhere(sessions, filter);
    const query = this.db
      .select()
      .from(sessions)
      .where(and(...where))
      // ord breaks ties between sessions started in the same millisecond: later insert first.
      .orderBy(desc(sessions.startedAt), desc(sessions.ord));
    const rows = await plain(filter.limit !== undefined ? query.limit(Math.max(0, filter.limit)) : query);
    return this.summarize(rows);
  }

  async getSession(idOrPrefix: string): Promise<SessionSummary | null> {
    const prefix = normalizeSessionIdPrefix(idOrPrefix);
    if (prefix === '') return null;
    await this.batch.settle();
    const exact = await plain(this.db.select().from(sessions).where(eq(sessions.id, prefix)));
    // Ids are ASCII: in byte order ("C" collation, indexed), [prefix, prefix + U+FFFF) is exactly the ids starting with prefix.
    const rows =
      exact.length > 0
        ? exact
        : await plain(
            this.db
              .select()
              .from(sessions)
              .where(sql`${sessions.id} COLLATE "C" >= ${prefix} AND ${sessions.id} COLLATE "C" < ${`${prefix}\uffff`}`)
              .orderBy(sql`${sessions.id} COLLATE "C"`)
              .limit(3),
          );
    if (rows.length > 1)
      throw new AmbiguousSessionIdError(
        idOrPrefix,
        rows.map((r) => r.id),
      );
    const [summary] = await this.summarize(rows);
    return summary ?? null;
  }

  async listStatements(sessionId: string): Promise<StatementRecord[]> {
    await this.batch.settle();
    return plain(this.db.select().from(statements).where(eq(statements.sessionId, sessionId)).orderBy(asc(statements.seq)));
  }

  // Approval requests: see pg-approvals.ts.
  createApproval = (r: ApprovalRequest) => plain(this.approvals.create(r));
  updateApproval = (r: ApprovalRequest, expect?: ApprovalExpectation) => plain(this.approvals.update(r, expect));
  getApproval = (id: string) => plain(this.approvals.get(id));
  listApprovals = (f: ApprovalFilter) => plain(this.approvals.list(f));
  cancelPendingApprovals = (reason: string, except?: readonly string[], replicaId?: string) => plain(this.approvals.cancelPending(reason, except, replicaId));

  // The replicas sharing this store: see pg-replicas.ts.
  heartbeat = (r: ReplicaBeat) => plain(this.replicas.heartbeat(r));
  listReplicas = () => plain(this.replicas.list());
  removeReplica = (id: string) => plain(this.replicas.remove(id));

  // Policy versions: see pg-policy.ts.
  addPolicyVersion = (v: NewPolicyVersion) => plain(this.policy.add(v));
  getPolicyVersion = (version?: number) => plain(this.policy.get(version));
  listPolicyVersions = () => plain(this.policy.list());
  activePolicyVersion = () => plain(this.policy.active());

  // Result samples: see pg-samples.ts (and completeStatement, which writes one with its outcome).
  recordSample = (statementId: number, sample: ResultSample) => plain(this.samples.record(statementId, sample));
  getSample = (statementId: number) => plain(this.samples.get(statementId));
  listSamples = (sessionId: string) => plain(this.samples.list(sessionId));

  // Revocations and single-use token ids: see pg-revocations.ts.
  addRevocation = (r: NewRevocation) => plain(this.revocations.add(r));
  listRevocations = (f?: RevocationFilter) => plain(this.revocations.list(f));
  claimTokenUse = (u: TokenUse) => plain(this.revocations.claimUse(u));
  setTokenUseSession = (jti: string, sessionId: string) => plain(this.revocations.setUseSession(jti, sessionId));
  pruneTokenUses = (before: Date) => plain(this.revocations.pruneUses(before));

  // Refused logins: see pg-logins.ts.
  recordRefusedLogin = (r: NewRefusedLogin) => plain(this.logins.record(r));
  listRefusedLogins = (f?: RefusedLoginFilter) => plain(this.logins.list(f));
  pruneRefusedLogins = (before: Date) => plain(this.logins.prune(before));

  // The audit journal's indexer: see pg-journal.ts.
  ingest = (journal: string, events: readonly JournalEvent[], position: JournalPosition) => plain(this.journal.ingest(journal, events, position));
  journalPosition = (journal: string) => plain(this.journal.journalPosition(journal));
  reserveStatementIds = (count: number) => plain(this.journal.reserveStatementIds(count));

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store: closed');
    await this.pool.query('SELECT 1');
  }

  /** Writes what is still queued (its promises settle), then closes the pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.batch.settle().catch(() => {}); // each queued call's own promise reports its failure
    await this.pool.end();
  }

  /** Adds the statement count and the per-decision counts, counted from the statements. */
  private async summarize(rows: SessionRow[]): Promise<SessionSummary[]> {
    const grouped: { sessionId: string; decision: string; n: number }[] = [];
    for (let i = 0; i < rows.length; i += IN_CHUNK) {
      const ids = rows.slice(i, i + IN_CHUNK).map((r) => r.id);
      grouped.push(
        ...(await plain(
          this.db
            .select({ sessionId: statements.sessionId, decision: statements.decision, n: sql<number>`count(*)::int` })
            .from(statements)
            .where(inArray(statements.sessionId, ids))
            .groupBy(statements.sessionId, statements.decision),
        )),
      );
    }
    return withDecisionCounts(
      rows.map(({ ord: _ord, ...row }) => row),
      grouped,
    );
  }
}
