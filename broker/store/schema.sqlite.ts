// SQLite schema of the store (drizzle sqlite-core). `npm run db:generate` turns changes here into a
// new migration under migrations/sqlite; never edit a generated migration by hand.
// Times are integer epoch milliseconds; JSON columns hold text. New tables (approvals, revocations)
// go below, each with its own indexes, referencing sessions(id) where they belong to a session.
import { sql } from 'drizzle-orm';
import { index, integer, real, sqliteTable, text, uniqueIndex, type AnySQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { ApprovalState } from '../approvals/types.js';
import type { Action, Kind, ReviewSettings, StatementRequest } from '../types.js';
import type { BlastRadius, PolicyDocument } from './types.js';

export const sessions = sqliteTable(
  'sessions',
  {
    /** `s_` + 16 base32 characters (80 random bits); see newSessionId(). */
    id: text('id').primaryKey(),
    target: text('target').notNull(),
    engine: text('engine').$type<'postgres' | 'mysql'>().notNull(),
    subject: text('subject').notNull(),
    issuer: text('issuer').notNull(),
    build: text('build'),
    claims: text('claims', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    actors: text('actors', { mode: 'json' }).$type<string[]>().notNull(),
    tokenId: text('token_id'),
    clientAddress: text('client_address').notNull(),
    clientPort: integer('client_port').notNull(),
    clientApplication: text('client_application'),
    dbUser: text('db_user'),
    tls: integer('tls', { mode: 'boolean' }).notNull(),
    startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
    endedAt: integer('ended_at', { mode: 'timestamp_ms' }),
    endReason: text('end_reason'),
    /** The broker process holding the session (`replica_id`); null for sessions recorded before fleets. */
    replicaId: text('replica_id'),
    /** The database role the session logged in upstream as (`targets.<name>.session_roles`); null: the broker's own account. */
    dbRole: text('db_role'),
    // No statement counter: a session's statement count is counted from its statements (as its
    // per-decision counts are), so recording a statement does not also rewrite its session row.
  },
  (t) => [
    index('sessions_build_idx').on(t.build),
    index('sessions_started_at_idx').on(t.startedAt),
    // Partial index: finding the sessions still open (crash recovery, `--open`) stays cheap.
    index('sessions_open_idx').on(t.startedAt).where(sql`${t.endedAt} IS NULL`),
  ],
);

export const statements = sqliteTable(
  'statements',
  {
    // A plain rowid key, not AUTOINCREMENT (whose sqlite_sequence row is one more page written per
    // commit): ids stay unique and increasing, and are never reused since statements are never deleted.
    id: integer('id').primaryKey(),
    sessionId: text('session_id')
      .notNull()
      .references(() => sessions.id),
    /** Position in its session, from 1. */
    seq: integer('seq').notNull(),
    sql: text('sql').notNull(),
    protocol: text('protocol').$type<StatementRequest['protocol']>().notNull(),
    kinds: text('kinds', { mode: 'json' }).$type<Kind[]>().notNull(),
    decision: text('decision').$type<Action>().notNull(),
    ruleId: text('rule_id'),
    message: text('message'),
    startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
    durationMs: real('duration_ms'),
    tag: text('tag'),
    rows: integer('rows'),
    error: text('error'),
    /**
     * The approval request that held this statement (set when the request is created, whatever its
     * end), or, for a `scope: session` approval, the earlier approval that lets this text run again.
     */
    approvalId: text('approval_id').references((): AnySQLiteColumn => approvals.id),
    /** The policy version that decided it (policy_versions.version); null before policy lived in the store. */
    policyVersion: integer('policy_version'),
  },
  (t) => [uniqueIndex('statements_session_seq_idx').on(t.sessionId, t.seq)],
);

/** A statement held for review: one row per request, written at creation and at every change. */
export const approvals = sqliteTable(
  'approvals',
  {
    /** `a_` + 16 base32 characters; see newApprovalId(). */
    id: text('id').primaryKey(),
    target: text('target').notNull(),
    sessionId: text('session_id')
      .notNull()
      .references(() => sessions.id),
    statementId: integer('statement_id').references((): AnySQLiteColumn => statements.id),
    subject: text('subject').notNull(),
    build: text('build'),
    claims: text('claims', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    actors: text('actors', { mode: 'json' }).$type<string[]>().notNull(),
    sql: text('sql').notNull(),
    kinds: text('kinds', { mode: 'json' }).$type<Kind[]>().notNull(),
    ruleId: text('rule_id'),
    settings: text('settings', { mode: 'json' }).$type<ReviewSettings>().notNull(),
    requestedAt: integer('requested_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    state: text('state').$type<ApprovalState>().notNull(),
    /** Approvals collected so far: `[{ by, at }]`, `at` in epoch milliseconds. */
    approvals: text('approvals', { mode: 'json' }).$type<{ by: string; at: number }[]>().notNull(),
    decidedBy: text('decided_by'),
    decidedAt: integer('decided_at', { mode: 'timestamp_ms' }),
    reason: text('reason'),
    messageChannel: text('message_channel'),
    messageTs: text('message_ts'),
    /** The policy version whose rule held it. */
    policyVersion: integer('policy_version'),
    /** What the statement would touch, estimated before asking (blast radius): `BlastRadius` as JSON; null when none. */
    estimate: text('estimate', { mode: 'json' }).$type<BlastRadius>(),
  },
  (t) => [
    index('approvals_session_idx').on(t.sessionId),
    index('approvals_build_idx').on(t.build),
    index('approvals_requested_at_idx').on(t.requestedAt),
    // Partial index: the pending requests (the approvers' queue, restart recovery) stay cheap to find.
    index('approvals_pending_idx').on(t.requestedAt).where(sql`${t.state} = 'pending'`),
  ],
);

/**
 * What the client saw of a statement's result, already masked: a bounded sample (issue 5), kept out of
 * `statements` so the hot path's rows stay small. One row per statement that returned rows.
 */
export const statementSamples = sqliteTable('statement_samples', {
  statementId: integer('statement_id')
    .primaryKey()
    .references(() => statements.id),
  /** Result columns: `[{ name, type }]` (type: the server's type name or OID, as text). */
  columns: text('columns', { mode: 'json' }).$type<{ name: string; type: string }[]>().notNull(),
  /** The first rows as text (null for SQL NULL), as the client received them. */
  rows: text('rows', { mode: 'json' }).$type<(string | null)[][]>().notNull(),
  /** Whether rows were left out (row or byte bound reached). */
  truncated: integer('truncated', { mode: 'boolean' }).notNull(),
  bytes: integer('bytes').notNull(),
});

/** Revoked builds and tokens (issue 7): every token of a build, or one token by `jti`, refused from then on. */
export const revocations = sqliteTable(
  'revocations',
  {
    id: integer('id').primaryKey(),
    build: text('build'),
    jti: text('jti'),
    reason: text('reason').notNull(),
    revokedBy: text('revoked_by').notNull(),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('revocations_build_idx').on(t.build), index('revocations_jti_idx').on(t.jti)],
);

/** Token ids already used to open a session, when the config asks for single use (replay protection). */
export const tokenUses = sqliteTable('token_uses', {
  jti: text('jti').primaryKey(),
  issuer: text('issuer').notNull(),
  sessionId: text('session_id').references(() => sessions.id),
  usedAt: integer('used_at', { mode: 'timestamp_ms' }).notNull(),
  /** The token's own expiry: rows past it can be pruned. */
  expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
});

export type SessionRow = typeof sessions.$inferSelect;
export type StatementRow = typeof statements.$inferSelect;
export type ApprovalRow = typeof approvals.$inferSelect;

/**
 * Logins the broker refused (bad token, unknown target, TLS required, ...): one row each, kept for
 * `audit.login_retention`. What the token claimed is decoded without trusting it; the token itself is
 * never stored. Accepted logins are the `sessions` table.
 */
export const refusedLogins = sqliteTable(
  'refused_logins',
  {
    id: integer('id').primaryKey(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    engine: text('engine').$type<'postgres' | 'mysql'>().notNull(),
    /** The target (database name) the client asked for, as it asked; null when it named none. */
    target: text('target'),
    clientAddress: text('client_address').notNull(),
    clientPort: integer('client_port').notNull(),
    clientApplication: text('client_application'),
    dbUser: text('db_user'),
    tls: integer('tls', { mode: 'boolean' }).notNull(),
    /** A short code (`expired`, `audience`, `unknown_target`, ...); `message` is what the client was told. */
    reason: text('reason').notNull(),
    message: text('message').notNull(),
    /** Unverified claims of the token, when one was sent and could be decoded. */
    issuer: text('issuer'),
    subject: text('subject'),
    tokenId: text('token_id'),
    build: text('build'),
  },
  (t) => [index('refused_logins_at_idx').on(t.at)],
);
export type RefusedLoginRow = typeof refusedLogins.$inferSelect;

/**
 * How far each audit journal (broker/audit/journal) has been indexed into this store. Written in
 * the same transaction as the events it covers, so an indexer that restarts resumes exactly there.
 */
export const journalState = sqliteTable('journal_state', {
  /** The journal's own id (`journal.id` in its folder): each broker of a fleet has its journal, and its row here. */
  journal: text('journal').primaryKey(),
  /** Every segment below this number, and this one up to `offset`, is in the store. */
  segment: integer('segment').notNull(),
  offset: integer('offset').notNull(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
});

/**
 * Counters handed out in blocks (`statement_id`: statement ids, so a broker writing through its journal
 * numbers statements before they reach the store; each block is its own, across processes).
 */
export const counters = sqliteTable('counters', {
  name: text('name').primaryKey(),
  /** The next value not yet handed out. */
  next: integer('next').notNull(),
});

/** The brokers sharing this store, each refreshing its row (`approvals.lease`): a row gone stale is a replica that died. */
export const replicas = sqliteTable('replicas', {
  id: text('id').primaryKey(),
  startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
  lastSeen: integer('last_seen', { mode: 'timestamp_ms' }).notNull(),
});

/**
 * Policy as data: every version of the rules (`rules:` and `default:` as in jit.yaml), the newest active.
 * A version is never changed; a rollback is a new version with an older one's rules.
 */
export const policyVersions = sqliteTable('policy_versions', {
  version: integer('version').primaryKey(),
  /** `{ rules, default }`, validated by the config's own schema when applied. */
  rules: text('rules', { mode: 'json' }).$type<PolicyDocument>().notNull(),
  /** sha256 of the canonical JSON of `rules`: two versions with the same rules have the same hash. */
  sha256: text('sha256').notNull(),
  author: text('author').notNull(),
  message: text('message'),
  appliedAt: integer('applied_at', { mode: 'timestamp_ms' }).notNull(),
});
