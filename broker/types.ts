// Shared vocabulary of the broker: every module speaks these types, none imports another's internals.
import type { FunctionRef } from './catalog/types.js';

/** What a statement does, least to most severe (order matters: see KIND_SEVERITY). */
export const KINDS = ['read', 'write', 'ddl', 'destructive', 'privilege', 'admin', 'unknown'] as const;
export type Kind = (typeof KINDS)[number];

export type Action = 'allow' | 'deny' | 'review';

/** Per-rule review settings (from a rule with `action: review`): how approvals/ asks, policy/ fills them in. */
export interface ReviewSettings {
  /** Slack user ids (U…), e-mail addresses, or user groups ("@dba-oncall" / S…); empty = anyone in the channel. */
  approvers: string[];
  timeoutSeconds: number;
  minApprovals: number;
  /** `statement`: one approval covers one execution; `session`: the same text may run again in that session. */
  scope: 'statement' | 'session';
}

/** Who is on the other end of a connection, as proven by a verified token. */
export interface Identity {
  /** `sub` claim. */
  subject: string;
  /** `iss` claim of the verified token. */
  issuer: string;
  /** Build id derived from the claims (issuer's `build` template, or the `build` claim). */
  build: string | null;
  /** The claims that matter for audit and policy (never the raw token). */
  claims: Record<string, unknown>;
  /** Delegation chain, outermost actor first (empty for a token used directly). */
  actors: string[];
  /** `jti`, when the token has one. */
  tokenId: string | null;
  /** When the token expires. */
  expiresAt: Date;
}

/** A configured upstream database a client can select by name. */
export interface Target {
  name: string;
  engine: 'postgres' | 'mysql';
  /** Connection URL with the broker's own credentials; never shown to clients. */
  upstream: string;
}

/** One classified statement out of a SQL string. */
export interface ClassifiedStatement {
  /** The statement's own text (trimmed). */
  sql: string;
  kinds: Kind[];
  /** Tables it touches, lower-cased, schema-qualified where written so. */
  tables: string[];
  /**
   * Those of `tables` it names only with ONLY (PostgreSQL `FROM ONLY t`, `UPDATE ONLY t`): their partitions and
   * inheritance children are not touched. Every other table is taken to reach its descendants (broker/catalog).
   */
  only?: string[];
  /**
   * Functions it calls by name (user functions and built-ins alike), for policy to resolve against the
   * target's catalog (broker/catalog): a name means what the database says it is, not what it looks like.
   */
  calls?: FunctionRef[];
  /** Operator names it uses (PostgreSQL), resolved the same way: a user-defined operator runs a function. */
  operators?: string[];
  /**
   * Type names it casts to (PostgreSQL `x::t`, `CAST(x AS t)`, as the parser names them: `::int` is `int4`): a cast
   * to a domain runs its CHECK constraints, and a user-defined cast runs its function.
   */
  casts?: string[];
  /**
   * Why it has the kinds it has, when its text does not show it (a function the catalog says writes, a view
   * read through, a catalog that could not be read, what the classifier could not see through): added to a
   * refusal's message.
   */
  reason?: string;
  /** PostgreSQL: what it does to the session's prepared statements (the session keeps them; see PreparedOp). */
  prepared?: PreparedOp;
}

/**
 * A PostgreSQL statement's effect on the session's prepared statements, which its text alone cannot show:
 * `PREPARE name AS …` defines `name` (its kinds are those of what it prepares); `EXECUTE name(…)` runs it — `unknown`
 * until the session substitutes what it saw prepared, with `args` the kinds of the parameter expressions;
 * DEALLOCATE name, DEALLOCATE ALL and DISCARD ALL forget (`name` null: every one).
 */
export type PreparedOp = { op: 'prepare'; name: string } | { op: 'execute'; name: string; args: Kind[] } | { op: 'forget'; name: string | null };

export interface Classification {
  statements: ClassifiedStatement[];
  /** Set when the text could not be parsed: every statement is then `unknown`. */
  error?: string;
}

export interface Decision {
  action: Action;
  /** Id of the rule that matched, or null when the default applied. */
  ruleId: string | null;
  /** Human-readable reason, shown to the client on refusal. */
  message: string;
  /** Union of the kinds of every statement the decision covers. */
  kinds: Kind[];
  /** Only when action is `review`: how to ask (the matched rule's settings, defaults filled in). */
  review?: ReviewSettings;
  /**
   * True when the statement's result is left unmasked: every statement of the text is decided (allowed or held
   * for review) by a rule with `exempt_masking: true`, a break-glass rule. Absent: results are masked.
   */
  exemptMasking?: boolean;
  /**
   * The policy version (policy_versions.version) whose rules decided it; null: a policy that is not a stored version;
   * absent: not decided by policy (an engine's own refusal). A prepared statement's decision of an older version is
   * taken again at its next execution.
   */
  policyVersion?: number | null;
}

/** What the engine hands to the session: one unit that will run upstream. */
export interface StatementRequest {
  sql: string;
  /** `simple` Query, extended-protocol `parse`, or the `execute` of an already admitted statement. */
  protocol: 'simple' | 'parse' | 'execute';
  /** `parse`: the prepared statement's name ('' for the unnamed one); PostgreSQL's SQL `EXECUTE name` runs a named one too. */
  name?: string;
  /**
   * The engine's own refusal, given the classified statements and policy's decision: a message when one would
   * leave the connection's target (MySQL's `USE other_db`), or produce output the engine cannot mask (PostgreSQL's
   * `COPY … TO STDOUT`, unless the decision exempts it from masking); the whole request is then denied with it
   * (rule `broker:confine`, whatever policy decided), and recorded.
   */
  confine?: (statements: readonly ClassifiedStatement[], decision: Decision) => string | null;
}

/** What the session answers: run it (with the id of its write-ahead record) or refuse it. */
export type Admission =
  | { ok: true; statementId: number | null; decision: Decision }
  | {
      ok: false;
      statementId: number | null;
      decision: Decision;
      /** `policy`: a rule or the default refused it; `audit`: it could not be recorded first. */
      reason: 'policy' | 'audit';
      /** The message for the client: which rule refused and why, and what to do. */
      message: string;
    };

/** What happened upstream, reported by the engine after the statement finished. */
export interface StatementOutcome {
  durationMs: number;
  /** Command tag such as `SELECT 3`, `INSERT 0 1`. */
  tag: string | null;
  rows: number | null;
  error: string | null;
}

/** Where a client connects from. */
export interface ClientInfo {
  address: string;
  port: number;
  /** Application name or client program, when the protocol tells. */
  application: string | null;
  /** Database user name the client asked for (informational only). */
  user: string | null;
  tls: boolean;
}

/** One result column: its name and the server's type (a type name, or the type OID as text). */
export interface SampleColumn {
  name: string;
  type: string;
}

/**
 * The first rows of a result as the client received them (after masking), as text: kept by broker/audit,
 * fed by the engines, stored by broker/store, shown by replay.
 */
export interface ResultSample {
  columns: SampleColumn[];
  /** Values as text; null is SQL NULL. A value cut at the byte bound ends in `…`. */
  rows: (string | null)[][];
  /** Whether anything the client received was left out: a row past a bound, a cut value, a later result set. */
  truncated: boolean;
  /** Bytes of the values kept (UTF-8; binary values count as their `\x…` text). At most the byte bound. */
  bytes: number;
}

/** A login the session core refuses (a token limited to other targets, or revoked): the engine answers `code` and `message`. */
export class SessionRefusedError extends Error {
  override readonly name = 'SessionRefusedError';
  constructor(
    /** SQLSTATE (engines that speak another protocol map it). */
    readonly code: string,
    message: string,
    /** For the record of the refused login. */
    readonly reason: 'target_limit' | 'revoked' | 'session_role',
  ) {
    super(message);
  }
}
