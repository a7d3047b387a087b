// The embedded store: SQLite through better-sqlite3 (synchronous, in-process) and drizzle.
// recordStatement/completeStatement run for every statement a client sends, so they are group
// committed (see SqliteStore) through raw statements prepared once at open; the rest is ordinary
// drizzle queries.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { and, asc, desc, eq, getTableName, gte, inArray, isNull, lt, sql } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import type { ResultSample, StatementOutcome } from '../types.js';
import { AmbiguousSessionIdError, newSessionId, normalizeSessionIdPrefix } from './ids.js';
import { sessionFilterWhere, sessionValues, withDecisionCounts } from './session-rows.js';
import type {
  ApprovalExpectation,
  ReplicaBeat,
  JournalEvent,
  JournalPosition,
  NewSession,
  NewRefusedLogin,
  NewRevocation,
  RefusedLoginFilter,
  NewStatement,
  NewPolicyVersion,
  RevocationFilter,
  TokenUse,
  SessionFilter,
  SessionSummary,
  StatementRecord,
  Store,
} from './types.js';
import { sessions, statements, type SessionRow } from './schema.sqlite.js';
import { SqliteApprovals } from './sqlite-approvals.js';
import { SqliteLogins } from './sqlite-logins.js';
import { SqliteRevocations } from './sqlite-revocations.js';
import { SqliteSamples, type EncodedSample } from './sqlite-samples.js';
import { SqliteJournal } from './sqlite-journal.js';
import { SqliteReplicas } from './sqlite-replicas.js';
import { SqlitePolicy } from './sqlite-policy.js';
import { MIGRATIONS_DIR } from '../paths.js';

/** Resolved against this file, not the cwd: works wherever the broker is started from. */
export const SQLITE_MIGRATIONS = join(MIGRATIONS_DIR, 'sqlite');

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

/** Most records + completes one group-commit transaction takes; more are flushed at once. */
export const MAX_BATCH = 1000;

interface PendingRecord {
  sessionId: string;
  /** Column values after the session id and seq, already mapped to what SQLite stores. */
  values: unknown[];
  resolve: (id: number) => void;
  reject: (e: unknown) => void;
}

interface PendingComplete {
  id: number;
  o: StatementOutcome;
  /** The result sample, already encoded; written only when the statement exists. */
  sample: EncodedSample | null;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** What one committed batch produced: per record a statement id or its own error; per complete its changes. */
interface BatchResult {
  ids: (number | Error)[];
  lastSeq: Map<string, number>;
  completed: number[];
}

/**
 * The hot path as raw better-sqlite3 statements: no query building or result mapping per call.
 * Table and column names come from the drizzle schema, which stays the source of truth for the
 * layout (a renamed column follows, a dropped one fails to compile here); values are encoded with
 * the schema's own column encoders in recordStatement().
 */
function prepareHotPath(client: Database.Database) {
  const q = (c: { name: string }) => `"${c.name}"`;
  const S = `"${getTableName(statements)}"`;
  const SS = `"${getTableName(sessions)}"`;
  const st = statements;
  return {
    /** The last seq handed out in a session (0 if none), or no row when the session does not exist. */
    lastSeq: client.prepare<[string], { seq: number }>(
      `SELECT (SELECT coalesce(max(${q(st.seq)}), 0) FROM ${S} WHERE ${q(st.sessionId)} = ${SS}.${q(sessions.id)}) AS seq ` +
        `FROM ${SS} WHERE ${q(sessions.id)} = ?`,
    ),
    insert: client.prepare(
      `INSERT INTO ${S} (${[
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
      ]
        .map(q)
        .join(', ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    complete: client.prepare(`UPDATE ${S} SET ${q(st.durationMs)} = ?, ${q(st.tag)} = ?, ${q(st.rows)} = ?, ${q(st.error)} = ? WHERE ${q(st.id)} = ?`),
  };
}

// SQLite caps bound parameters per statement; count queries over many sessions go in chunks.
const IN_CHUNK = 500;

/**
 * Group commit: recordStatement and completeStatement calls are queued, and everything queued in
 * one turn of the event loop is written in ONE IMMEDIATE transaction, flushed from setImmediate
 * (after the I/O callbacks of that turn have queued theirs). Each promise settles only once that
 * transaction has committed, or rejects when it failed (every promise of the batch: it rolled back
 * as a whole). A record's promise resolving still means its row is committed.
 *
 * The per-session seq is kept in memory once known (initialised from MAX(seq) of the session, so it
 * survives re-opening the store) and only advanced after a commit; this connection is the only
 * writer of a session's statements (the broker process that holds the session). A session's
 * statement count is counted from its statements, so a batch writes no session rows at all.
 * Reads, endSession and close() first flush what is queued.
 */
export class SqliteStore implements Store {
  private readonly batchTx: (records: PendingRecord[], completes: PendingComplete[]) => BatchResult;
  /** Last committed seq per session, for sessions seen since open (dropped when a session ends). */
  private readonly seqs = new Map<string, number>();
  private records: PendingRecord[] = [];
  private completes: PendingComplete[] = [];
  private flushScheduled = false;
  private closed = false;
  private committed = 0;
  private readonly flushCallback = () => {
    this.flushScheduled = false;
    this.flush();
  };
  private readonly approvals: SqliteApprovals;
  private readonly revocations: SqliteRevocations;
  private readonly samples: SqliteSamples;
  private readonly logins: SqliteLogins;
  private readonly journal: SqliteJournal;
  private readonly replicas: SqliteReplicas;
  private readonly policy: SqlitePolicy;

  constructor(
    /** The underlying connection, for diagnostics and tests; the broker itself never needs it. */
    readonly client: Database.Database,
    private readonly db: Db,
  ) {
    this.approvals = new SqliteApprovals(db, () => this.flush());
    this.revocations = new SqliteRevocations(db);
    this.logins = new SqliteLogins(db);
    const samples = (this.samples = new SqliteSamples(client, db, () => this.flush()));
    this.journal = new SqliteJournal(client, samples);
    this.replicas = new SqliteReplicas(db);
    this.policy = new SqlitePolicy(db);
    const hot = prepareHotPath(client);
    this.batchTx = client.transaction((records: PendingRecord[], completes: PendingComplete[]): BatchResult => {
      const ids: (number | Error)[] = new Array<number | Error>(records.length);
      const lastSeq = new Map<string, number>();
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        let seq = lastSeq.get(r.sessionId) ?? this.seqs.get(r.sessionId);
        if (seq === undefined) {
          const row = hot.lastSeq.get(r.sessionId);
          if (!row) {
            // Only this record fails: one client's mistake must not refuse the others' statements.
            ids[i] = new Error(`store: cannot record a statement for unknown session ${r.sessionId}`);
            continue;
          }
          seq = row.seq;
        }
        seq++;
        ids[i] = Number(hot.insert.run(r.sessionId, seq, ...r.values).lastInsertRowid);
        lastSeq.set(r.sessionId, seq);
      }
      const completed = new Array<number>(completes.length);
      for (let i = 0; i < completes.length; i++) {
        const { id, o, sample } = completes[i]!;
        completed[i] = hot.complete.run(o.durationMs, o.tag, o.rows, o.error, id).changes;
        // Only for a statement that exists: an unknown id fails its own call, not the batch.
        if (sample && completed[i]! > 0) samples.insertEncoded(id, sample);
      }
      return { ids, lastSeq, completed };
    }).immediate;
  }

  /** Group-commit transactions committed since open (diagnostics and tests). */
  get commits(): number {
    return this.committed;
  }

  /** Writes everything queued, now, in one transaction, and settles its promises. */
  private flush(): void {
    const records = this.records;
    const completes = this.completes;
    if (records.length === 0 && completes.length === 0) return;
    this.records = [];
    this.completes = [];
    let result: BatchResult;
    try {
      result = this.batchTx(records, completes);
      this.committed++;
    } catch (e) {
      // Rolled back as a whole: nothing of the batch was written, so every one of its calls fails.
      for (const r of records) r.reject(e);
      for (const c of completes) c.reject(e);
      return;
    }
    for (const [sessionId, seq] of result.lastSeq) this.seqs.set(sessionId, seq);
    for (let i = 0; i < records.length; i++) {
      const id = result.ids[i]!;
      if (typeof id === 'number') records[i]!.resolve(id);
      else records[i]!.reject(id);
    }
    for (let i = 0; i < completes.length; i++) {
      const c = completes[i]!;
      if (result.completed[i]! > 0) c.resolve();
      else c.reject(new Error(`store: cannot complete unknown statement ${c.id}`));
    }
  }

  /** After a call was queued: flush at the end of this turn of the event loop, or now when the batch is full. */
  private enqueued(): void {
    if (this.records.length + this.completes.length >= MAX_BATCH) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushCallback);
    }
  }

  async createSession(s: NewSession): Promise<string> {
    const id = s.id ?? newSessionId();
    this.db.insert(sessions).values(sessionValues(id, s)).run();
    return id;
  }

  async endSession(id: string, reason: string, at: Date = new Date()): Promise<void> {
    this.flush(); // the session's queued records land before its end
    this.seqs.delete(id); // a statement recorded after the end (if any) re-reads MAX(seq)
    this.db
      .update(sessions)
      .set({ endedAt: at, endReason: reason })
      .where(and(eq(sessions.id, id), isNull(sessions.endedAt)))
      .run();
  }

  async endOpenSessions(reason: string, replicaId?: string): Promise<number> {
    this.flush();
    this.seqs.clear(); // ended sessions need no cached seq (one recorded later re-reads MAX(seq))
    const result = this.db
      .update(sessions)
      .set({ endedAt: new Date(), endReason: reason })
      .where(and(isNull(sessions.endedAt), replicaId !== undefined ? eq(sessions.replicaId, replicaId) : undefined))
      .run();
    return result.changes;
  }

  recordStatement(s: NewStatement): Promise<number> {
    if (this.closed) return Promise.reject(new Error('store: closed'));
    let values: unknown[];
    try {
      // Mapped now, with the schema's own encoders: a malformed record fails alone, not its batch.
      values = [
        s.sql,
        s.protocol,
        statements.kinds.mapToDriverValue(s.kinds),
        s.decision,
        s.ruleId,
        s.message,
        statements.startedAt.mapToDriverValue(s.startedAt),
        s.approvalId ?? null,
        s.policyVersion ?? null,
      ];
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<number>((resolve, reject) => {
      this.records.push({ sessionId: s.sessionId, values, resolve, reject });
      this.enqueued();
    });
  }

  completeStatement(id: number, o: StatementOutcome, sample?: ResultSample | null): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store: closed'));
    let encoded: EncodedSample | null;
    try {
      encoded = sample ? this.samples.encode(sample) : null; // a malformed sample fails alone, not its batch
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      this.completes.push({ id, o, sample: encoded, resolve, reject });
      this.enqueued();
    });
  }

  async listSessions(filter: SessionFilter): Promise<SessionSummary[]> {
    this.flush(); // reads see every write already asked for, awaited or not (as before group commit)
    const where = sessionFilterWhere(sessions, filter);
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
    this.flush();
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
    if (rows.length > 1)
      throw new AmbiguousSessionIdError(
        idOrPrefix,
        rows.map((r) => r.id),
      );
    const [summary] = this.summarize(rows);
    return summary ?? null;
  }

  async listStatements(sessionId: string): Promise<StatementRecord[]> {
    this.flush();
    return this.db.select().from(statements).where(eq(statements.sessionId, sessionId)).orderBy(asc(statements.seq)).all();
  }

  // Approval requests: see sqlite-approvals.ts.
  createApproval = (r: ApprovalRequest) => this.approvals.create(r);
  updateApproval = (r: ApprovalRequest, expect?: ApprovalExpectation) => this.approvals.update(r, expect);
  getApproval = (id: string) => this.approvals.get(id);
  listApprovals = (f: ApprovalFilter) => this.approvals.list(f);
  cancelPendingApprovals = (reason: string, except?: readonly string[], replicaId?: string) => this.approvals.cancelPending(reason, except, replicaId);

  // The replicas sharing this store: see sqlite-replicas.ts.
  heartbeat = (r: ReplicaBeat) => this.replicas.heartbeat(r);
  listReplicas = () => this.replicas.list();
  removeReplica = (id: string) => this.replicas.remove(id);

  // Policy versions: see sqlite-policy.ts.
  addPolicyVersion = (v: NewPolicyVersion) => this.policy.add(v);
  getPolicyVersion = (version?: number) => this.policy.get(version);
  listPolicyVersions = () => this.policy.list();
  activePolicyVersion = () => this.policy.active();

  // Result samples: see sqlite-samples.ts (and completeStatement, which writes one with its outcome).
  recordSample = (statementId: number, sample: ResultSample) => this.samples.record(statementId, sample);
  getSample = (statementId: number) => this.samples.get(statementId);
  listSamples = (sessionId: string) => this.samples.list(sessionId);

  // Revocations and single-use token ids: see sqlite-revocations.ts.
  addRevocation = (r: NewRevocation) => this.revocations.add(r);
  listRevocations = (f?: RevocationFilter) => this.revocations.list(f);
  claimTokenUse = (u: TokenUse) => this.revocations.claimUse(u);
  setTokenUseSession = (jti: string, sessionId: string) => this.revocations.setUseSession(jti, sessionId);
  pruneTokenUses = (before: Date) => this.revocations.pruneUses(before);

  // Refused logins: see sqlite-logins.ts.
  recordRefusedLogin = (r: NewRefusedLogin) => this.logins.record(r);
  listRefusedLogins = (f?: RefusedLoginFilter) => this.logins.list(f);
  pruneRefusedLogins = (before: Date) => this.logins.prune(before);

  // The audit journal's indexer: see sqlite-journal.ts. A store is written either through a journal (the
  // broker) or by recordStatement directly (embedded uses, tests), not both: the two number statements apart.
  ingest = (journal: string, events: readonly JournalEvent[], position: JournalPosition) => this.journal.ingest(journal, events, position);
  journalPosition = (journal: string) => this.journal.journalPosition(journal);
  reserveStatementIds = (count: number) => this.journal.reserveStatementIds(count);

  async ping(): Promise<void> {
    this.client.prepare('SELECT 1').get();
  }

  /** Writes what is still queued (its promises settle), then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.client.open) this.client.close();
  }

  /** Adds the statement count and the per-decision counts, counted from the statements. */
  private summarize(rows: SessionRow[]): SessionSummary[] {
    const grouped: { sessionId: string; decision: string; n: number }[] = [];
    for (let i = 0; i < rows.length; i += IN_CHUNK) {
      const ids = rows.slice(i, i + IN_CHUNK).map((r) => r.id);
      grouped.push(
        ...this.db
          .select({ sessionId: statements.sessionId, decision: statements.decision, n: sql<number>`count(*)` })
          .from(statements)
          .where(inArray(statements.sessionId, ids))
          .groupBy(statements.sessionId, statements.decision)
          .all(),
      );
    }
    return withDecisionCounts(rows, grouped);
  }
}
