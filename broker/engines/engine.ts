// The engine contract: what main.ts hands an engine (EngineDeps), what an engine gives back (Engine), and the
// part of the session core an engine may call (SessionPort). Like Teleport's `common.Engine`: one engine per
// wire protocol behind one small interface; the engine turns messages into StatementRequests, obeys the
// Admission it gets, feeds each result (after masking) to a ResultRecorder and reports the outcome. Engines
// depend on these interfaces only, never on the session, policy, audit or masking implementations.
import type tls from 'node:tls';
import type { LoginRefusal } from '../audit/logins.js';
import type { ResultRecorder, ResultSample } from '../audit/types.js';
import type { MaskingPolicy } from '../masking/index.js';
import type { MysqlSessionState } from '../session-mysql.js';
import type { BlastRadius } from '../store/types.js';
import type { Admission, ClassifiedStatement, ClientInfo, Decision, Identity, StatementOutcome, StatementRequest, Target } from '../types.js';
import type { ListenLimits } from './listener.js';

/** What main.ts gives every engine (each engine's deps extend it with its protocol's own). */
export interface EngineDeps {
  /** Targets this engine serves, by the database name a client asks for. */
  targets: ReadonlyMap<string, Target>;
  /** Verify the token a client sent as its password; throws an error whose message says which check failed. */
  verify: (token: string) => Promise<Identity>;
  /** A login refused (bad token, unknown target, TLS required, ...), to record and log; `token`: the password sent, if any, to decode (never to keep). */
  loginRefused?: (refusal: LoginRefusal, token?: string) => void;
  /** The broker could not connect (or log in) to a target's database for an accepted login (counted in GET /metrics). */
  upstreamFailed?: (target: Target) => void;
  /** Record a verified client's session; throws a SessionRefusedError (answer its code and message), or a store error. */
  openSession: (identity: Identity, target: Target, client: ClientInfo) => Promise<SessionPort>;
  /** Result masking: each session's rules come from `masking.forSession`; null or absent: nothing is masked. */
  masking?: MaskingPolicy | null;
  tls: tls.SecureContext | null;
  /** `loopback`: clients on 127.0.0.0/8 and ::1 may log in without TLS. */
  plaintext: 'never' | 'loopback';
  maxMessageBytes: number;
  /** Login deadline and caps; absent (or a field absent): DEFAULT_LIMITS. */
  limits?: Partial<ListenLimits>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A running engine: its listener's address, its live connections, and how to stop it. */
export interface Engine<C extends EngineConnection = EngineConnection> {
  readonly address: { host: string; port: number };
  /** Connections with a live session. */
  readonly connections: ReadonlySet<C>;
  /** Stop accepting, tell every client why, and end their sessions. */
  close(reason?: string): Promise<void>;
}

/** One client connection of an engine, as the rest of the broker sees it. */
export interface EngineConnection {
  /** Who the live session is for (null before login). */
  readonly identity: Identity | null;
  readonly sessionId: string | null;
  /** End the connection because its token was revoked, telling the client why in its protocol; resolves once the session's end is recorded. */
  revoke(message: string): Promise<void>;
}

/** The session state a MySQL engine keeps in step with its server (session-mysql.ts): version and settings. */
export type MysqlSessionPort = Pick<MysqlSessionState, 'serverVersion' | 'settling' | 'wantsSettings' | 'asking' | 'settings' | 'reset'>;

/** A held statement to estimate: its text, and its statements as classified (their kinds and tables). */
export interface EstimateRequest {
  sql: string;
  statements: readonly ClassifiedStatement[];
}

/**
 * Estimates what a held statement would touch without running it (EXPLAIN without ANALYZE, table statistics),
 * on the session's own upstream connection while the statement waits; null when it cannot (nothing to
 * estimate, the connection busy, an aborted transaction). Never throws.
 */
export type Estimator = (req: EstimateRequest) => Promise<BlastRadius | null>;

/** How an engine logs in upstream for a session: as the broker's own account, or as the session's database role. */
export interface UpstreamLogin {
  /** The target's URL, or the same with the session role's name and password. */
  url: string;
  /** The session's database role (`targets.<name>.session_roles`); null: the broker's own account. */
  role: string | null;
  /** MySQL: log in naming no database, then run `setup` (which activates the role and selects the database). */
  noDatabase: boolean;
  /** MySQL: statements to run once logged in, before anything is relayed. */
  setup: string[];
}

/** What an engine may call on its session (broker/session.ts implements it). */
export interface SessionPort {
  readonly id: string;
  readonly identity: Identity;
  readonly target: Target;
  /** How to log in upstream for this session (the session role's credentials when it has one). */
  readonly upstream: UpstreamLogin;
  /** Decide a statement and record it before it is forwarded; `prior`: the decision taken when it was prepared. */
  admit(req: StatementRequest, prior?: Decision): Promise<Admission>;
  /** A recorder for one statement's result as the client received it (null: no samples are kept). */
  recorder(): ResultRecorder | null;
  /** Record what happened upstream, with the statement's sample (ResultRecorder.done()). Never waits. */
  complete(statementId: number, outcome: StatementOutcome, sample?: ResultSample | null): void;
  /** Whether a statement of the session is waiting for approval. */
  readonly holding: boolean;
  /** Withdraw the approval requests the session waits on (a client's cancel). */
  withdraw(reason: string): Promise<number>;
  /** Record the session's end (cancelling a request still pending). */
  close(reason: string): Promise<void>;
  /** PostgreSQL: the prepared-statement names an admitted decision defines or forgets (null: every name). */
  preparedNames(d: Decision): (string | null)[];
  /** PostgreSQL: the upstream is ready for a query, with this transaction status. */
  ready(status: string): void;
  /** MySQL: the session's server version and settings, which the engine learns from the server. */
  readonly mysql: MysqlSessionPort | null;
  /** The engine's estimator of a held statement's blast radius, given once its upstream connection is up. */
  useEstimator?(estimate: Estimator): void;
}
