// The console's session: a sealed cookie (seal.ts) holding who signed in, how, and the CSRF token the
// page's forms carry. Every visitor has one — before signing in it holds only the CSRF token, so the sign-in
// form is protected too — and signing in or out replaces it with a new id and token (no fixation).
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isLoopback } from '../../engines/listener.js';
import { parseCookies, serializeCookie } from './cookies.js';
import type { Sealer } from './seal.js';

export const SESSION_COOKIE = 'jit_ui';
/** Lifetime of a session nobody signed in to (its CSRF token for the sign-in form). */
const ANONYMOUS_TTL = 3600;

export interface UiUser {
  /** `oidc`: signed in at the identity provider; `local`: with the broker's admin token, from loopback. */
  via: 'oidc' | 'local';
  /** The ID token's `sub` (`admin` for the local sign-in). */
  sub: string;
  name: string;
  email: string | null;
  /** The ID token's groups claim, as the identity provider wrote them. */
  groups: string[];
}

export interface UiSession {
  /** Random id: what signing out forgets, and what event streams are closed by. */
  sid: string;
  csrf: string;
  user: UiUser | null;
  /** Expiry, epoch seconds. */
  exp: number;
  /** Where to go once signed in (a /ui/ path: the page that asked for a sign-in). */
  next?: string;
}

const random = () => randomBytes(24).toString('base64url');

function asUser(v: unknown): UiUser | null {
  if (!v || typeof v !== 'object') return null;
  const u = v as Record<string, unknown>;
  if ((u.via !== 'oidc' && u.via !== 'local') || typeof u.sub !== 'string' || typeof u.name !== 'string') return null;
  return {
    via: u.via,
    sub: u.sub,
    name: u.name,
    email: typeof u.email === 'string' ? u.email : null,
    groups: Array.isArray(u.groups) ? u.groups.filter((g): g is string => typeof g === 'string') : [],
  };
}

export interface SessionCookies {
  sealer: Sealer;
  /** Lifetime of a signed-in session (ui.session_ttl), seconds. */
  ttlSeconds: number;
  /** The console's public URL says https: every cookie is Secure. */
  httpsOnly: boolean;
}

/** Whether a cookie set for this request is Secure: always, unless the request is on loopback over plain http. */
export function secureFor(req: FastifyRequest, httpsOnly: boolean): boolean {
  return httpsOnly || !isLoopback(req.socket.remoteAddress ?? '');
}

export class Sessions {
  /** Sessions signed out on this broker, until they would have expired anyway. */
  private readonly signedOut = new Map<string, number>();

  constructor(private readonly o: SessionCookies) {}

  /** A new session: a new id and CSRF token; signed in for ui.session_ttl, anonymous for an hour. */
  fresh(user: UiUser | null): UiSession {
    return { sid: random(), csrf: random(), user, exp: Math.floor(Date.now() / 1000) + (user ? this.o.ttlSeconds : ANONYMOUS_TTL) };
  }

  /** The request's session, or null when it has none that is valid (absent, forged, expired, signed out). */
  async read(req: FastifyRequest): Promise<UiSession | null> {
    const p = await this.o.sealer.open(parseCookies(req.headers.cookie).get(SESSION_COOKIE), 'jit-ui-session');
    if (!p || typeof p.sid !== 'string' || typeof p.csrf !== 'string' || typeof p.exp !== 'number') return null;
    if (this.signedOut.has(p.sid)) return null;
    return { sid: p.sid, csrf: p.csrf, user: asUser(p.user), exp: p.exp, ...(typeof p.next === 'string' ? { next: p.next } : {}) };
  }

  async write(req: FastifyRequest, reply: FastifyReply, s: UiSession): Promise<void> {
    const ttl = s.exp - Math.floor(Date.now() / 1000);
    const value = await this.o.sealer.seal(
      { sid: s.sid, csrf: s.csrf, user: s.user ? { ...s.user } : null, ...(s.next ? { next: s.next } : {}) },
      'jit-ui-session',
      ttl,
    );
    reply.header(
      'set-cookie',
      serializeCookie(SESSION_COOKIE, value, { path: '/ui', maxAge: ttl, secure: secureFor(req, this.o.httpsOnly), sameSite: 'Strict' }),
    );
  }

  /** Forgets a session on this broker (its cookie is replaced by the caller). */
  signOut(s: UiSession): void {
    const now = Math.floor(Date.now() / 1000);
    for (const [sid, exp] of this.signedOut) if (exp < now) this.signedOut.delete(sid);
    this.signedOut.set(s.sid, s.exp);
  }
}
