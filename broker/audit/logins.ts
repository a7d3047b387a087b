// Refused logins (issue 10): what an engine reports when it turns a client away at login, the record kept
// of it (the token's claims decoded WITHOUT trusting them; never the token itself), its warn log line,
// retention pruning (`audit.login_retention`). The login history shown by `jit logins` and GET /api/logins,
// which merges the refusals with the accepted logins (the sessions), is in login-history.ts.
import { decodeJwt } from 'jose';
import { deriveBuild } from '../identity/claims.js';
import { TokenRefusedError, type RefusalCheck } from '../identity/verifier.js';
import type { NewRefusedLogin, Store } from '../store/index.js';
import { SessionRefusedError, type ClientInfo } from '../types.js';

export { parseSince } from './since.js';
export { listLogins, loginJsonSchema, loginToJson, type LoginEntry, type LoginFilter, type LoginJson } from './login-history.js';

/** Why a login was refused: a token check, or what the engine or the session core refused before or after it. */
export type LoginRefusalReason =
  | RefusalCheck
  | 'tls_required'
  | 'replication'
  | 'unknown_target'
  | 'startup_parameter'
  | 'target_limit'
  | 'audit_unavailable'
  | 'session_role';

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
