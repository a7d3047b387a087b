// PostgreSQL schema of the store (drizzle pg-core): the same tables, columns and indexes as
// schema.sqlite.ts, in PostgreSQL's own types: timestamptz for times, jsonb for JSON, boolean, bigint ids
// (read as JS numbers: they stay far below 2^53). `npm run db:generate:pg` turns changes here into a new
// migration under migrations/postgres; never edit a generated migration by hand. A change to one
// dialect's schema is made to the other's too.
import { sql } from 'drizzle-orm';
import { type AnyPgColumn, bigint, boolean, doublePrecision, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { ApprovalState } from '../approvals/types.js';
import type { Action, Kind, ReviewSettings, StatementRequest } from '../types.js';
import type { BlastRadius, PolicyDocument } from './types.js';

/** Epoch-millisecond precision, as SQLite keeps times: what is written is read back exactly. */
const time = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });
const id64 = (name: string) => bigint(name, { mode: 'number' });

export const sessions = pgTable(
  'sessions',
  {
    /** `s_` + 16 base32 characters (80 random bits); see newSessionId(). */
    id: text('id').primaryKey(),
    /**
     * Insertion order, PostgreSQL's stand-in for SQLite's rowid: breaks ties between sessions started in
     * the same millisecond (the later insert lists first). Never read back.
     */
    ord: id64('ord').generatedAlwaysAsIdentity(),
    target: text('target').notNull(),
    engine: text('engine').$type<'postgres' | 'mysql'>().notNull(),
    subject: text('subject').notNull(),
    issuer: text('issuer').notNull(),
    build: text('build'),
    claims: jsonb('claims').$type<Record<string, unknown>>().notNull(),
    actors: jsonb('actors').$type<string[]>().notNull(),
    tokenId: text('token_id'),
    clientAddress: text('client_address').notNull(),
    clientPort: integer('client_port').notNull(),
    clientApplication: text('client_application'),
    dbUser: text('db_user'),
    tls: boolean('tls').notNull(),
    startedAt: time('started_at').notNull(),
    endedAt: time('ended_at'),
    endReason: text('end_reason'),
    /** The broker process holding the session (`replica_id`); null for sessions recorded before fleets. */
    replicaId: text('replica_id'),
    /** The database role the session logged in upstream as (`targets.<name>.session_roles`); null: the broker's own account. */
    dbRole: text('db_role'),
  },
  (t) => [
    index('sessions_build_idx').on(t.build),
    index('sessions_started_at_idx').on(t.startedAt),
    index('sessions_open_idx').on(t.startedAt).where(sql`${t.endedAt} IS NULL`),
    // Session ids typed as a prefix (getSession) are a range in byte order, whatever the database's collation.
    index('sessions_id_prefix_idx').on(sql`${t.id} COLLATE "C"`),
  ],
);

export const statements = pgTable(
  'statements',
  {
    // No default: ids are handed out in blocks from counters.statement_id (reserveStatementIds), by the
    // journal's writers and by PgStore's direct path alike, so every replica numbers apart.
    id: id64('id').primaryKey(),
    sessionId: text('session_id')
      .notNull()
      .references(() => sessions.id),
    /** Position in its session, from 1. */
    seq: integer('seq').notNull(),
    sql: text('sql').notNull(),
    protocol: text('protocol').$type<StatementRequest['protocol']>().notNull(),
    kinds: jsonb('kinds').$type<Kind[]>().notNull(),
    decision: text('decision').$type<Action>().notNull(),
    ruleId: text('rule_id'),
    message: text('message'),
    startedAt: time('started_at').notNull(),
    durationMs: doublePrecision('duration_ms'),
    tag: text('tag'),
    rows: id64('rows'),
    error: text('error'),
    /** The approval request that held this statement, or the `scope: session` approval it ran under. */
    approvalId: text('approval_id').references((): AnyPgColumn => approvals.id),
    /** The policy version that decided it (policy_versions.version); null before policy lived in the store. */
    policyVersion: integer('policy_version'),
  },
  (t) => [uniqueIndex('statements_session_seq_idx').on(t.sessionId, t.seq)],
);

/** A statement held for review: one row per request, written at creation and at every change. */
export const approvals = pgTable(
  'approvals',
  {
    /** `a_` + 16 base32 characters; see newApprovalId(). */
    id: text('id').primaryKey(),
    target: text('target').notNull(),
    sessionId: text('session_id')
      .notNull()
      .references(() => sessions.id),
    statementId: id64('statement_id').references((): AnyPgColumn => statements.id),
    subject: text('subject').notNull(),
    build: text('build'),
    claims: jsonb('claims').$type<Record<string, unknown>>().notNull(),
    actors: jsonb('actors').$type<string[]>().notNull(),
    sql: text('sql').notNull(),
    kinds: jsonb('kinds').$type<Kind[]>().notNull(),
    ruleId: text('rule_id'),
    settings: jsonb('settings').$type<ReviewSettings>().notNull(),
    requestedAt: time('requested_at').notNull(),
    expiresAt: time('expires_at').notNull(),
    state: text('state').$type<ApprovalState>().notNull(),
    /** Approvals collected so far: `[{ by, at }]`, `at` in epoch milliseconds. */
    approvals: jsonb('approvals').$type<{ by: string; at: number }[]>().notNull(),
    decidedBy: text('decided_by'),
    decidedAt: time('decided_at'),
    reason: text('reason'),
    messageChannel: text('message_channel'),
    messageTs: text('message_ts'),
    /** The policy version whose rule held it. */
    policyVersion: integer('policy_version'),
    /** What the statement would touch, estimated before asking (blast radius); null when none. */
    estimate: jsonb('estimate').$type<BlastRadius>(),
  },
  (t) => [
    index('approvals_session_idx').on(t.sessionId),
    index('approvals_build_idx').on(t.build),
    index('approvals_requested_at_idx').on(t.requestedAt),
    index('approvals_pending_idx').on(t.requestedAt).where(sql`${t.state} = 'pending'`),
  ],
);

/** What the client saw of a statement's result, already masked (see schema.sqlite.ts). */
export const statementSamples = pgTable('statement_samples', {
  statementId: id64('statement_id')
    .primaryKey()
    .references(() => statements.id),
  columns: jsonb('columns').$type<{ name: string; type: string }[]>().notNull(),
  rows: jsonb('rows').$type<(string | null)[][]>().notNull(),
  truncated: boolean('truncated').notNull(),
  bytes: integer('bytes').notNull(),
});

/** Revoked builds and tokens: every token of a build, or one token by `jti`, refused from then on. */
export const revocations = pgTable(
  'revocations',
  {
    id: id64('id').primaryKey().generatedByDefaultAsIdentity(),
    build: text('build'),
    jti: text('jti'),
    reason: text('reason').notNull(),
    revokedBy: text('revoked_by').notNull(),
    revokedAt: time('revoked_at').notNull(),
  },
  (t) => [index('revocations_build_idx').on(t.build), index('revocations_jti_idx').on(t.jti)],
);

/** Token ids already used to open a session (single use): the primary key makes a second claim fail, on any replica. */
export const tokenUses = pgTable('token_uses', {
  jti: text('jti').primaryKey(),
  issuer: text('issuer').notNull(),
  sessionId: text('session_id').references(() => sessions.id),
  usedAt: time('used_at').notNull(),
  expiresAt: time('expires_at').notNull(),
});

export type SessionRow = typeof sessions.$inferSelect;
export type StatementRow = typeof statements.$inferSelect;
export type ApprovalRow = typeof approvals.$inferSelect;

/** Logins the broker refused (see schema.sqlite.ts): kept for `audit.login_retention`. */
export const refusedLogins = pgTable(
  'refused_logins',
  {
    id: id64('id').primaryKey().generatedByDefaultAsIdentity(),
    at: time('at').notNull(),
    engine: text('engine').$type<'postgres' | 'mysql'>().notNull(),
    target: text('target'),
    clientAddress: text('client_address').notNull(),
    clientPort: integer('client_port').notNull(),
    clientApplication: text('client_application'),
    dbUser: text('db_user'),
    tls: boolean('tls').notNull(),
    reason: text('reason').notNull(),
    message: text('message').notNull(),
    issuer: text('issuer'),
    subject: text('subject'),
    tokenId: text('token_id'),
    build: text('build'),
  },
  (t) => [index('refused_logins_at_idx').on(t.at)],
);
export type RefusedLoginRow = typeof refusedLogins.$inferSelect;

/** How far each audit journal has been indexed into this store, written in the same transaction as its events. */
export const journalState = pgTable('journal_state', {
  /** The journal's own id: each broker of a fleet has its journal, and its row here. */
  journal: text('journal').primaryKey(),
  segment: integer('segment').notNull(),
  offset: id64('offset').notNull(),
  updatedAt: time('updated_at').notNull(),
});

/** Counters handed out in blocks (`statement_id`), under a row lock: each block is its own, across replicas. */
export const counters = pgTable('counters', {
  name: text('name').primaryKey(),
  /** The next value not yet handed out. */
  next: id64('next').notNull(),
});

/** The brokers sharing this store, each refreshing its row (`approvals.lease`): a row gone stale is a replica that died. */
export const replicas = pgTable('replicas', {
  id: text('id').primaryKey(),
  startedAt: time('started_at').notNull(),
  lastSeen: time('last_seen').notNull(),
});

/**
 * Policy as data: every version of the rules (`rules:` and `default:` as in jit.yaml), the newest active.
 * A version is never changed; a rollback is a new version with an older one's rules.
 */
export const policyVersions = pgTable('policy_versions', {
  version: integer('version').primaryKey(),
  /** `{ rules, default }`, validated by the config's own schema when applied. */
  rules: jsonb('rules').$type<PolicyDocument>().notNull(),
  /** sha256 of the canonical JSON of `rules`: two versions with the same rules have the same hash. */
  sha256: text('sha256').notNull(),
  author: text('author').notNull(),
  message: text('message'),
  appliedAt: time('applied_at').notNull(),
});
