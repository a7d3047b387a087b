// Refused logins (issue 10): what an engine reports when it turns a client away at login, the record kept
// of it (the token's claims decoded WITHOUT trusting them; never the token itself), its warn log line,
// retention pruning (`audit.login_retention`), and the login history shown by `jit logins` and
// GET /api/logins, which merges the refusals with the accepted logins (the sessions).
import { decodeJwt } from 'jose';
import { deriveBuild } from '../identity/claims.js';
import { TokenRefusedError, type RefusalCheck } from '../identity/verifier.js';
import type { NewRefusedLogin, RefusedLogin, SessionSummary, Store } from '../store/index.js';
import { SessionRefusedError, type ClientInfo } from '../types.js';

/** Why a login was refused: a token check, or what the engine or the session core refused before or after it. */
export type LoginRefusalReason = RefusalCheck | 'tls_required' | 'replication' | 'unknown_target' | 'startup_parameter' | 'target_limit' | 'audit_unavailable';

/** What an engine reports (EngineDeps.loginRefused) when it refuses a login. */
export interface LoginRefusal {
  engine: 'postgres' | 'mysql';
  /** The target (database name) the client asked for, as it asked; null when it named none. */
  target: string | null;
  client: ClientInfo;
  reason: LoginRefusalReason;
  /** What the client is told. */
  message: string;
}

/** The reason of a refusal thrown by the token check or by BrokerSession.open(). */
export function refusalReason(e: unknown): LoginRefusalReason {
  if (e instanceof TokenRefusedError) return e.check;
  if (e instanceof SessionRefusedError) return e.reason;
  return 'malformed';
}

/** Untrusted text (client-sent or from an unverified token) is kept at this many characters. */
const MAX_TEXT = 200;
const clip = (v: string | null | undefined): string | null => (typeof v === 'string' && v !== '' ? v.slice(0, MAX_TEXT) : null);
const claim = (v: unknown): string | null => (typeof v === 'string' ? clip(v) : typeof v === 'number' ? String(v) : null);

export interface PeekedClaims {
  issuer: string | null;
  subject: string | null;
  tokenId: string | null;
  build: string | null;
}

/**
 * What a token says about itself, decoded without checking anything (for the record of a refusal only:
 * none of it is proven). `buildTemplate`: the `build` template of the issuer the token names, if any.
 */
export function peekClaims(token: string | undefined, buildTemplate?: (issuer: string) => string | undefined): PeekedClaims {
  const none = { issuer: null, subject: null, tokenId: null, build: null };
  if (!token) return none;
  try {
    const p = decodeJwt(token);
    const issuer = claim(p.iss);
    return { issuer, subject: claim(p.sub), tokenId: claim(p.jti), build: clip(deriveBuild(issuer ? buildTemplate?.(issuer) : undefined, p)) };
  } catch {
    return none;
  }
}

export interface LoginAuditOptions {
  store: Store;
  /** Logged at warn. */
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** `audit.login_retention`, in seconds. */
  retentionSeconds: number;
  buildTemplate?: (issuer: string) => string | undefined;
  /** How often old refusals are pruned (default hourly). */
  pruneEveryMs?: number;
  /** Counts each refusal by engine and reason (GET /metrics). */
  metrics?: { loginRefused(engine: LoginRefusal['engine'], reason: LoginRefusalReason): void } | null;
}

export interface LoginAudit {
  /** Records and logs a refusal; `token` (the password the client sent) is only decoded, never kept. */
  refused(r: LoginRefusal, token?: string): void;
  /** Deletes refusals older than the retention; returns how many. */
  prune(): Promise<number>;
  close(): void;
}

/** Prunes once now (awaited), then periodically on an unref'd timer. */
export async function startLoginAudit(o: LoginAuditOptions): Promise<LoginAudit> {
  const prune = async () => {
    const n = await o.store.pruneRefusedLogins(new Date(Date.now() - o.retentionSeconds * 1000));
    if (n) o.log('pruned refused logins past audit.login_retention', { pruned: n });
    return n;
  };
  await prune().catch((e: unknown) => o.log('refused logins could not be pruned', { error: String(e) }));
  const timer = setInterval(
    () => void prune().catch((e: unknown) => o.log('refused logins could not be pruned', { error: String(e) })),
    o.pruneEveryMs ?? 3600_000,
  );
  timer.unref();
  return {
    refused(r, token) {
      o.metrics?.loginRefused(r.engine, r.reason);
      const claims = peekClaims(token, o.buildTemplate);
      const record: NewRefusedLogin = {
        at: new Date(),
        engine: r.engine,
        target: clip(r.target),
        clientAddress: r.client.address,
        clientPort: r.client.port,
        clientApplication: clip(r.client.application),
        dbUser: clip(r.client.user),
        tls: r.client.tls,
        reason: r.reason,
        message: r.message,
        ...claims,
      };
      o.log('login refused', {
        engine: r.engine,
        target: record.target,
        client: `${r.client.address}:${r.client.port}`,
        application: record.clientApplication,
        reason: r.reason,
        message: r.message,
        subject: claims.subject,
        issuer: claims.issuer,
        jti: claims.tokenId,
        build: claims.build,
      });
      o.store.recordRefusedLogin(record).catch((e: unknown) => o.log('a refused login could not be recorded', { error: String(e) }));
    },
    prune,
    close: () => clearInterval(timer),
  };
}

/** One login, accepted (a session) or refused, as `jit logins` and GET /api/logins show it. */
export interface LoginEntry {
  at: Date;
  outcome: 'accepted' | 'refused';
  engine: 'postgres' | 'mysql';
  target: string | null;
  clientAddress: string;
  clientPort: number;
  clientApplication: string | null;
  dbUser: string | null;
  tls: boolean;
  /** Verified for an accepted login; as the token claimed (unverified) for a refused one. */
  subject: string | null;
  issuer: string | null;
  build: string | null;
  tokenId: string | null;
  /** Refused: why (a short code) and what the client was told. */
  reason: string | null;
  message: string | null;
  /** Accepted: the session it opened. */
  sessionId: string | null;
}

export interface LoginFilter {
  /** Only refusals (else refusals and sessions, merged). */
  refused?: boolean;
  since?: Date;
  limit: number;
}

const fromRefusal = (r: RefusedLogin): LoginEntry => ({
  at: r.at,
  outcome: 'refused',
  engine: r.engine,
  target: r.target,
  clientAddress: r.clientAddress,
  clientPort: r.clientPort,
  clientApplication: r.clientApplication,
  dbUser: r.dbUser,
  tls: r.tls,
  subject: r.subject,
  issuer: r.issuer,
  build: r.build,
  tokenId: r.tokenId,
  reason: r.reason,
  message: r.message,
  sessionId: null,
});

const fromSession = (s: SessionSummary): LoginEntry => ({
  at: s.startedAt,
  outcome: 'accepted',
  engine: s.engine,
  target: s.target,
  clientAddress: s.clientAddress,
  clientPort: s.clientPort,
  clientApplication: s.clientApplication,
  dbUser: s.dbUser,
  tls: s.tls,
  subject: s.subject,
  issuer: s.issuer,
  build: s.build,
  tokenId: s.tokenId,
  reason: null,
  message: null,
  sessionId: s.id,
});

/** Logins newest first: the refusals, merged with the sessions unless `refused` is set. */
export async function listLogins(store: Store, f: LoginFilter): Promise<LoginEntry[]> {
  const refused = (await store.listRefusedLogins({ since: f.since, limit: f.limit })).map(fromRefusal);
  if (f.refused) return refused;
  const accepted = (await store.listSessions({ since: f.since, limit: f.limit })).map(fromSession);
  return [...refused, ...accepted].sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, f.limit);
}

export type LoginJson = Omit<LoginEntry, 'at'> & { at: string };

export const loginToJson = (e: LoginEntry): LoginJson => ({ ...e, at: e.at.toISOString() });

const nullableString = { type: ['string', 'null'] } as const;

export const loginJsonSchema = {
  type: 'object',
  required: ['at', 'outcome', 'engine', 'target', 'clientAddress', 'reason', 'sessionId'],
  properties: {
    at: { type: 'string', format: 'date-time' },
    outcome: { type: 'string', enum: ['accepted', 'refused'] },
    engine: { type: 'string' },
    target: nullableString,
    clientAddress: { type: 'string' },
    clientPort: { type: 'integer' },
    clientApplication: nullableString,
    dbUser: nullableString,
    tls: { type: 'boolean' },
    subject: nullableString,
    issuer: nullableString,
    build: nullableString,
    tokenId: nullableString,
    reason: nullableString,
    message: nullableString,
    sessionId: nullableString,
  },
} as const;

/** `--since` / `?since=`: a duration back from now (`90s`, `15m`, `1h`, `7d`) or a date (ISO 8601). */
export function parseSince(v: string, now = Date.now()): Date | null {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(v.trim());
  if (m) return new Date(now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] * 1000);
  if (!/^\d{4}-\d\d-\d\d/.test(v.trim())) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
