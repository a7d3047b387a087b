// The store's contract: the Store interface and the records it keeps. Every method is async so the
// embedded SQLite store and the PostgreSQL store (a later issue) share one contract. Types only: the
// dialects (sqlite*.ts) and everything above the store import this; openStore() is in index.ts.
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import type { Action, ClientInfo, Identity, Kind, ResultSample, StatementOutcome, StatementRequest } from '../types.js';

export interface NewSession {
  target: string;
  engine: 'postgres' | 'mysql';
  identity: Identity;
  client: ClientInfo;
  startedAt: Date;
  /** The broker process (`replica_id`) that holds the session; null when not recorded (sessions from before fleets). */
  replicaId?: string | null;
  /** The session's id when the caller chose it (newSessionId(): its database role is named after it); absent: the store makes one. */
  id?: string;
  /** The database role the session logs in upstream as (`session_roles`); null or absent: the broker's own account. */
  dbRole?: string | null;
}

export interface NewStatement {
  sessionId: string;
  sql: string;
  protocol: StatementRequest['protocol'];
  kinds: Kind[];
  decision: Action;
  ruleId: string | null;
  message: string | null;
  startedAt: Date;
  /** The `scope: session` approval that lets this text run again without asking (held statements are linked by createApproval). */
  approvalId?: string | null;
  /** The policy version (policy_versions.version) that decided it; null or absent: none recorded (no version in the store). */
  policyVersion?: number | null;
}

/** Where a recorded session or refused login came from: ClientInfo as the store keeps it, in columns of its own. */
export interface RecordedClient {
  clientAddress: ClientInfo['address'];
  clientPort: ClientInfo['port'];
  clientApplication: ClientInfo['application'];
  dbUser: ClientInfo['user'];
  tls: ClientInfo['tls'];
}

/** A recorded session: what createSession() was given (the identity without its expiry, the client), and how it went. */
export interface SessionSummary
  extends Pick<NewSession, 'target' | 'engine' | 'startedAt' | 'replicaId'>,
    Pick<Identity, 'subject' | 'issuer' | 'build' | 'claims' | 'actors' | 'tokenId'>,
    RecordedClient {
  id: string;
  /** The database role it logged in upstream as (`session_roles`). The store always sets it (null: the broker's own account). */
  dbRole?: string | null;
  endedAt: Date | null;
  endReason: string | null;
  statementCount: number;
  /** Statements recorded with each decision (counted from the statements themselves). */
  allowed: number;
  denied: number;
  reviewed: number;
}

/**
 * A recorded statement: what recordStatement() was given, its place in the session, and its outcome —
 * each field of StatementOutcome null until completeStatement() ran (the statement never finished, or is still running).
 */
export interface StatementRecord extends Omit<NewStatement, 'approvalId' | 'policyVersion'>, Nullable<StatementOutcome> {
  id: number;
  seq: number;
  /** The policy version that decided it. The store always sets it (null: recorded before policy lived in the store). */
  policyVersion?: number | null;
  /** The approval request that held it (or the session-scope approval it ran under); see getApproval(). The store always sets it (null: never held). */
  approvalId?: string | null;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** A revoked build or token (`jit revoke`, POST /api/revocations, the Slack bot): refused from then on. */
export interface Revocation {
  id: number;
  /** Every token of this build id, parents and exchanged children alike. */
  build: string | null;
  /** One token by its `jti` (and the tokens exchanged from it). */
  jti: string | null;
  reason: string;
  /** `cli:<user>`, `api:<name>`, or a Slack user id. */
  revokedBy: string;
  revokedAt: Date;
}

export type NewRevocation = Omit<Revocation, 'id'>;

export interface RevocationFilter {
  build?: string;
  jti?: string;
  /** Only revocations recorded after this id (a cache catching up). */
  afterId?: number;
  /** Most recent ones only; all when absent. */
  limit?: number;
}

/** A token's use to open a session, when `identity.single_use` asks for it. */
export interface TokenUse {
  jti: string;
  issuer: string;
  usedAt: Date;
  /** The token's expiry: the row can be pruned after it. */
  expiresAt: Date;
}

export interface SessionFilter {
  build?: string;
  subject?: string;
  target?: string;
  /** Newest sessions only; all matching sessions when absent. */
  limit?: number;
  /** true: only sessions not yet ended; false: only ended ones; absent: both. */
  open?: boolean;
  /** Only sessions started at or after this time. */
  since?: Date;
}

/** A login the broker refused (see broker/audit/logins.ts); the token itself is never part of it. */
export interface NewRefusedLogin extends RecordedClient {
  at: Date;
  engine: 'postgres' | 'mysql';
  /** The target (database name) the client asked for, null when it named none. */
  target: string | null;
  /** A short code: a token check (`expired`, `audience`, `used`, ...) or `tls_required`, `unknown_target`, ... */
  reason: string;
  /** What the client was told. */
  message: string;
  /** Claims of the token decoded without trusting it (null when none was sent or it did not decode). */
  issuer: string | null;
  subject: string | null;
  tokenId: string | null;
  build: string | null;
}

export interface RefusedLogin extends NewRefusedLogin {
  id: number;
}

export interface RefusedLoginFilter {
  /** Only refusals at or after this time. */
  since?: Date;
  /** Newest ones only; all when absent. */
  limit?: number;
}

export interface Store {
  /** Records a new session and returns its id (`s_` + 16 base32 characters). */
  createSession(s: NewSession): Promise<string>;
  /** Marks a session ended. Idempotent: the first end wins; unknown ids are ignored. */
  endSession(id: string, reason: string, at?: Date): Promise<void>;
  /**
   * Ends the sessions left open, and returns how many: all of them (at the start of the only broker on
   * a store), or those of one replica (`replicaId`: a replica that died, after its lease).
   */
  endOpenSessions(reason: string, replicaId?: string): Promise<number>;
  /**
   * Write-ahead record of a statement, before it goes upstream. Resolves only once the row is
   * committed; rejects on any failure (the caller must then refuse the statement). Assigns the
   * per-session `seq` (from 1, in call order) in the same transaction, so the session's
   * statementCount includes it once this resolves. Returns the statement id for completeStatement().
   */
  recordStatement(s: NewStatement): Promise<number>;
  /**
   * Records what happened upstream and, when given, the sample of the result the client saw (in the
   * same group-committed transaction). Rejects when the statement id is unknown (nothing is written).
   */
  completeStatement(id: number, o: StatementOutcome, sample?: ResultSample | null): Promise<void>;
  /** Records (or replaces) a statement's result sample on its own. Rejects when the statement id is unknown. */
  recordSample(statementId: number, sample: ResultSample): Promise<void>;
  /** The result sample of one statement, null when none was recorded. */
  getSample(statementId: number): Promise<ResultSample | null>;
  /** The result samples of a session's statements, by statement id (statements without one are absent). */
  listSamples(sessionId: string): Promise<Map<number, ResultSample>>;
  /** Sessions matching every given filter, newest first. */
  listSessions(filter: SessionFilter): Promise<SessionSummary[]>;
  /**
   * One session by id or by a unique prefix of it (case-insensitive, the `s_` may be left out).
   * Null when nothing matches; rejects with AmbiguousSessionIdError when several do.
   */
  getSession(id: string): Promise<SessionSummary | null>;
  /** A session's statements in seq order. */
  listStatements(sessionId: string): Promise<StatementRecord[]>;
  /**
   * Records a new approval request (as Approvals.request() made it) and, when it has a statementId,
   * links that statement to it (statements.approval_id) in the same transaction.
   */
  createApproval(r: ApprovalRequest): Promise<void>;
  /**
   * Writes the mutable part of a request: state, approvals, decidedBy/At, reason, message ref. Rejects for
   * an unknown id. With `expect`, writes only if the stored request still is in that state (and, when
   * given, has that many approvals) — one conditional UPDATE, so two replicas deciding at once decide
   * once — and returns whether it wrote; without, always writes and returns true.
   */
  updateApproval(r: ApprovalRequest, expect?: ApprovalExpectation): Promise<boolean>;
  getApproval(id: string): Promise<ApprovalRequest | null>;
  /** Requests matching every given filter, oldest first (the most recent `limit` when limited). */
  listApprovals(filter: ApprovalFilter): Promise<ApprovalRequest[]>;
  /**
   * At startup: ends the requests an earlier broker process left pending (nothing waits on them
   * any more) as `cancelled` with `reason`, except the ids in `except`; returns them as they are now.
   */
  cancelPendingApprovals(reason: string, except?: readonly string[], replicaId?: string): Promise<ApprovalRequest[]>;
  /** A replica says it is alive (`approvals.lease`): inserts or refreshes its row. */
  heartbeat(replica: ReplicaBeat): Promise<void>;
  /** The replicas that said they were alive, newest heartbeat first. */
  listReplicas(): Promise<ReplicaBeat[]>;
  /** Forgets a replica (it stopped, or its lease ran out and its sessions and requests were ended). */
  removeReplica(id: string): Promise<void>;
  /** Records a revocation (build or jti, at least one) and returns it with its id. See sqlite-revocations.ts. */
  addRevocation(r: NewRevocation): Promise<Revocation>;
  /** Revocations matching every given filter, oldest first (the most recent `limit` when limited). */
  listRevocations(filter?: RevocationFilter): Promise<Revocation[]>;
  /** Marks a token id used; false when it already was (single use: the login is then refused). */
  claimTokenUse(u: TokenUse): Promise<boolean>;
  /** Links a claimed token use to the session it opened. */
  setTokenUseSession(jti: string, sessionId: string): Promise<void>;
  /** Deletes uses of tokens that expired before `before`; returns how many. */
  pruneTokenUses(before: Date): Promise<number>;
  /** Records a refused login. */
  recordRefusedLogin(r: NewRefusedLogin): Promise<void>;
  /** Refused logins matching the filter, newest first. */
  listRefusedLogins(filter?: RefusedLoginFilter): Promise<RefusedLogin[]>;
  /** Deletes refused logins recorded before `before` (audit.login_retention); returns how many. */
  pruneRefusedLogins(before: Date): Promise<number>;
  /**
   * The audit journal's indexer (broker/audit/journal): applies a batch of journal events and records
   * `position` (where the journal `journal` has been read up to) in ONE transaction, so a restart resumes exactly
   * after the last batch applied. Applying an event twice changes nothing. An event the store cannot
   * apply (a statement of a session it never saw) is skipped, not fatal: returns how many were.
   */
  ingest(journal: string, events: readonly JournalEvent[], position: JournalPosition): Promise<number>;
  /** Where the journal `journal` (its id: every broker of a fleet has its own) has been indexed up to; null before its first batch. */
  journalPosition(journal: string): Promise<JournalPosition | null>;
  /**
   * Reserves `count` statement ids no other caller gets (a block, for records numbered before they reach
   * the store) and returns the first. Ids of a block come after every statement id already stored.
   */
  reserveStatementIds(count: number): Promise<number>;
  /**
   * Stores a new policy version, which becomes the active one: its number is the newest stored + 1, assigned
   * atomically (two brokers applying at once get distinct versions). The sha256 is of the canonical JSON of `rules`.
   */
  addPolicyVersion(v: NewPolicyVersion): Promise<PolicyVersion>;
  /** One version; without a number, the newest (the active one). Null when there is none. */
  getPolicyVersion(version?: number): Promise<PolicyVersion | null>;
  /** Every stored version, oldest first. */
  listPolicyVersions(): Promise<PolicyVersion[]>;
  /** The newest version's number (null: none): a cheap query, what every broker polls to switch to a new version. */
  activePolicyVersion(): Promise<number | null>;
  /** Resolves when the store can serve queries (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What a replica last said about itself (the `replicas` table). */
export interface ReplicaBeat {
  id: string;
  startedAt: Date;
  lastSeen: Date;
}

/** The state a conditional updateApproval() expects the stored request to be in. */
export interface ApprovalExpectation {
  state: ApprovalRequest['state'];
  /** The number of approvals it holds (a partial approval counted on another replica meanwhile fails the write). */
  approvals?: number;
}

/** A place in the audit journal: every segment below `segment`, and that one up to byte `offset`. */
export interface JournalPosition {
  segment: number;
  offset: number;
}

/**
 * What the audit journal records (broker/audit/journal), in the order it happened; times are epoch ms.
 * `open` and `end` bracket a session; `stmt` is a statement's write-ahead record (numbered by the broker:
 * `id` from reserveStatementIds, `seq` its place in the session); `done` its outcome and result sample.
 */
export type JournalEvent =
  | ({ t: 'open'; id: string; startedAt: number; dbRole?: string | null } & Omit<
      SessionSummary,
      'id' | 'dbRole' | 'startedAt' | 'endedAt' | 'endReason' | 'statementCount' | 'allowed' | 'denied' | 'reviewed'
    >)
  | ({ t: 'stmt'; id: number; seq: number; startedAt: number; approvalId: string | null; policyVersion?: number | null } & Omit<
      NewStatement,
      'startedAt' | 'approvalId' | 'policyVersion'
    >)
  | ({ t: 'done'; id: number; sample: ResultSample | null } & StatementOutcome)
  | { t: 'end'; id: string; reason: string; at: number };

/** A policy as the store keeps it: what `rules:` and `default:` hold in jit.yaml (validated by the config schema). */
export interface PolicyDocument {
  rules: unknown[];
  default: string;
}

/** What addPolicyVersion() is given: the version number and hash are the store's to assign. */
export interface NewPolicyVersion {
  rules: PolicyDocument;
  /** Who applied it: `config` (bootstrap), `cli:<user>`, `api:<name>`. */
  author: string;
  message: string | null;
  appliedAt: Date;
}

/** A stored policy version (policy_versions): never changed once stored; the newest is active. */
export interface PolicyVersion extends NewPolicyVersion {
  version: number;
  /** sha256 (hex) of the canonical JSON of `rules` (see broker/store/policy-hash.ts). */
  sha256: string;
}

/**
 * What a held statement would touch, estimated before asking, without running it: the planner's row
 * estimate (EXPLAIN) for DELETE/UPDATE, the catalog's row count and size for DROP/TRUNCATE of a table.
 */
export interface BlastRadius {
  /** Estimated rows affected (or in the table dropped or truncated). */
  rows: number | null;
  /** Estimated bytes of the table(s), when known (DROP/TRUNCATE). */
  bytes?: number | null;
  /** The table(s) it concerns, as named in the statement or the plan. */
  tables: string[];
  /** How it was estimated: `explain` (the planner) or `catalog` (table statistics). */
  source: 'explain' | 'catalog';
  /** One line for people: `≈ 12,400 rows of orders`. */
  text: string;
}
