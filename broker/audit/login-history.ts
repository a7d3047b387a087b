// The login history (`jit logins`, GET /api/logins): refused logins merged with the accepted ones (the
// sessions), newest first. Apart from logins.ts, which records refusals, so reading it loads no JWT library.
import type { RefusedLogin, SessionSummary, Store } from '../store/index.js';

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
