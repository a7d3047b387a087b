// The store: everything the broker persists goes through this interface. Every method is async so
// the embedded SQLite store and the PostgreSQL store (a later issue) share one contract.
import { randomBytes } from 'node:crypto';
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import type {
  Action,
  ClientInfo,
  Identity,
  Kind,
  ResultSample,
  StatementOutcome,
  StatementRequest,
} from '../types.js';

export interface NewSession {
  target: string;
  engine: 'postgres' | 'mysql';
  identity: Identity;
  client: ClientInfo;
  startedAt: Date;
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
}

export interface SessionSummary {
  id: string;
  target: string;
  engine: 'postgres' | 'mysql';
  subject: string;
  issuer: string;
  build: string | null;
  claims: Record<string, unknown>;
  actors: string[];
  tokenId: string | null;
  clientAddress: string;
  clientPort: number;
  clientApplication: string | null;
  dbUser: string | null;
  tls: boolean;
  startedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
  statementCount: number;
  /** Statements recorded with each decision (counted from the statements themselves). */
  allowed: number;
  denied: number;
  reviewed: number;
}

export interface StatementRecord {
  id: number;
  sessionId: string;
  seq: number;
  sql: string;
  protocol: StatementRequest['protocol'];
  kinds: Kind[];
  decision: Action;
  ruleId: string | null;
  message: string | null;
  startedAt: Date;
  /** Null until completeStatement() ran: the statement never finished (or is still running). */
  durationMs: number | null;
  tag: string | null;
  rows: number | null;
  error: string | null;
  /** The approval request that held it (or the session-scope approval it ran under); see getApproval(). The store always sets it (null: never held). */
  approvalId?: string | null;
}

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
export interface NewRefusedLogin {
  at: Date;
  engine: 'postgres' | 'mysql';
  /** The target (database name) the client asked for, null when it named none. */
  target: string | null;
  clientAddress: string;
  clientPort: number;
  clientApplication: string | null;
  dbUser: string | null;
  tls: boolean;
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
  /** At startup: ends the sessions a crash left open; returns how many. */
  endOpenSessions(reason: string): Promise<number>;
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
  /** Writes the mutable part of a request: state, approvals, decidedBy/At, reason, message ref. Rejects for an unknown id. */
  updateApproval(r: ApprovalRequest): Promise<void>;
  getApproval(id: string): Promise<ApprovalRequest | null>;
  /** Requests matching every given filter, oldest first (the most recent `limit` when limited). */
  listApprovals(filter: ApprovalFilter): Promise<ApprovalRequest[]>;
  /**
   * At startup: ends the requests an earlier broker process left pending (nothing waits on them
   * any more) as `cancelled` with `reason`, except the ids in `except`; returns them as they are now.
   */
  cancelPendingApprovals(reason: string, except?: readonly string[]): Promise<ApprovalRequest[]>;
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
  /** Resolves when the store can serve queries (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class AmbiguousSessionIdError extends Error {
  constructor(
    readonly prefix: string,
    readonly matches: string[],
  ) {
    super(`session id prefix "${prefix}" is ambiguous (${matches.join(', ')}, ...): type more characters`);
    this.name = 'AmbiguousSessionIdError';
  }
}

// Crockford's base32 alphabet, lower case: no i, l, o, u, so ids survive being read aloud and retyped.
const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** `s_` + 16 base32 characters = 80 random bits. */
export function newSessionId(): string {
  return newId('s_');
}

/** `a_` + 16 base32 characters = 80 random bits. */
export function newApprovalId(): string {
  return newId('a_');
}

function newId(prefix: string): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = prefix;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ID_ALPHABET[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** Normalises what a user typed as a session id (or prefix): trimmed, lower case, `s_` added. */
export function normalizeSessionIdPrefix(input: string): string {
  const p = input.trim().toLowerCase();
  if (p === '') return '';
  return p.startsWith('s_') ? p : `s_${p}`;
}

/**
 * Opens the store named by a URL and brings its schema up to date:
 * `sqlite:/abs/path.db`, `sqlite:relative/path.db` (against the cwd), `sqlite::memory:`.
 */
export async function openStore(url: string): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/path.db
    if (path === '') throw new Error('store URL "sqlite:" names no file: use sqlite:/path/to/broker.db or sqlite::memory:');
    const { openSqliteStore } = await import('./sqlite.js');
    return openSqliteStore(path);
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    // Never echo the URL: it carries the store's password.
    throw new Error(
      'store: PostgreSQL is not supported until the PostgreSQL store dialect lands; ' +
        'use the embedded store for now (store: sqlite:/var/lib/jit-broker/broker.db)',
    );
  }
  throw new Error(
    `store: unsupported URL scheme ${scheme ? `"${scheme}:"` : '(none)'}; expected sqlite:/path/to/file.db or sqlite::memory:`,
  );
}
