// Signing in and out. GET /ui/login (the sign-in page), GET /ui/login/oidc (off to the identity provider, with
// state, nonce and the PKCE verifier in a sealed cookie), GET /ui/callback (back from it), POST /ui/login/local
// (the admin token, from loopback only), POST /ui/logout. A sign-in starts a new session (new id, new CSRF token).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isViewer } from '../auth/access.js';
import { parseCookies, serializeCookie } from '../auth/cookies.js';
import type { OidcSignIn, PendingSignIn } from '../auth/oidc.js';
import type { Sealer } from '../auth/seal.js';
import { secureFor, type Sessions, type UiUser } from '../auth/session.js';
import { html, renderPage } from '../html.js';
import { renderError, renderSignIn } from '../pages/index.js';
import { BASE, contextOf, sendPage, sessionOf, setSession } from '../request-state.js';
import { fromLoopback, safeNext } from '../security.js';
import type { EventStreams } from './events.js';

export interface AuthRoutesOptions {
  sessions: Sessions;
  sealer: Sealer;
  oidc: OidcSignIn | null;
  viewers: Record<string, string> | undefined;
  /** The admin token the local sign-in takes (from loopback only); null: no local sign-in. */
  adminToken: string | null;
  publicUrl: string | undefined;
  streams: EventStreams;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

const LOGIN_COOKIE = 'jit_ui_login';
/** How long a sign-in at the identity provider may take. */
const LOGIN_TTL = 600;

/** What ?error= on the sign-in page may say: a fixed set, so no text from a URL is ever shown. */
const ERRORS: Record<string, string> = {
  expired: 'The sign-in took too long or was started in another browser: sign in again.',
  refused: 'The identity provider did not sign you in.',
  unavailable: 'The identity provider cannot be reached: try again, or ask the broker’s operator.',
  viewer: 'You signed in, but this console is not open to you (ui.viewers).',
  token: 'That is not the admin token.',
  loopback: 'The admin-token sign-in works only from this machine (loopback).',
};

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A page that goes on to `to` by itself: a redirect would carry the identity provider's cross-site origin along, and the SameSite=Strict session cookie would not be sent. */
function continueTo(reply: FastifyReply, to: string): FastifyReply {
  const doc = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${to}"><title>Signed in · jit-broker</title>
<link rel="stylesheet" href="${BASE}/assets/app.css"></head>
<body><main><p>Signed in. <a href="${to}">Continue</a></p></main></body></html>
`;
  return sendPage(reply, 200, doc.value);
}

export const authRoutes: FastifyPluginAsync<AuthRoutesOptions> = async (app, o) => {
  const publicRoute = { config: { ui: 'public' } };
  const redirectUri = (req: FastifyRequest) => `${o.publicUrl ?? `http://${req.headers.host ?? '127.0.0.1'}`}${BASE}/callback`;
  const localOk = (req: FastifyRequest) => o.adminToken !== null && fromLoopback(req);
  const signInPage = (req: FastifyRequest, reply: FastifyReply, status: number, error?: string) => {
    const ctx = contextOf(req);
    const next = safeNext(sessionOf(req).next);
    const body = renderSignIn(ctx, { oidc: o.oidc !== null, local: localOk(req), next, ...(error ? { error } : {}) });
    return sendPage(reply, status, renderPage({ title: 'Sign in', ctx, body }));
  };
  const errorPage = (req: FastifyRequest, reply: FastifyReply, status: number, message: string) => {
    const ctx = contextOf(req);
    return sendPage(reply, status, renderPage({ title: 'Not found', ctx, body: renderError(ctx, status, message) }));
  };

  async function signIn(req: FastifyRequest, reply: FastifyReply, user: UiUser): Promise<UiUser> {
    const s = o.sessions.fresh(user);
    await o.sessions.write(req, reply, s);
    o.log('console sign-in', { via: user.via, sub: user.sub, email: user.email });
    return user;
  }

  app.get<{ Querystring: { next?: string; error?: string } }>('/login', publicRoute, async (req, reply) => {
    const s = sessionOf(req);
    const next = safeNext(req.query.next ?? s.next);
    if (s.user) return reply.redirect(next, 303);
    if (req.query.next !== undefined && next !== s.next) {
      const updated = { ...s, next };
      await o.sessions.write(req, reply, updated);
      setSession(req, updated);
    }
    const error = req.query.error !== undefined ? ERRORS[req.query.error] : undefined;
    return signInPage(req, reply, 200, error);
  });

  app.get<{ Querystring: { next?: string } }>('/login/oidc', publicRoute, async (req, reply) => {
    if (!o.oidc) return errorPage(req, reply, 404, 'OpenID Connect sign-in is not configured (ui.oidc).');
    const next = safeNext(req.query.next ?? sessionOf(req).next);
    let started: Awaited<ReturnType<OidcSignIn['start']>>;
    try {
      started = await o.oidc.start(redirectUri(req), next);
    } catch (e) {
      o.log('console: the identity provider could not be discovered', { error: String(e) });
      return reply.redirect(`${BASE}/login?error=unavailable`, 303);
    }
    const sealed = await o.sealer.seal({ ...started.pending }, 'jit-ui-login', LOGIN_TTL);
    // Lax, not Strict: it must come back with the identity provider's (cross-site) redirect to the callback.
    reply.header(
      'set-cookie',
      serializeCookie(LOGIN_COOKIE, sealed, {
        path: `${BASE}/callback`,
        maxAge: LOGIN_TTL,
        secure: secureFor(req, o.publicUrl?.startsWith('https:') ?? false),
        sameSite: 'Lax',
      }),
    );
    return reply.redirect(started.url.href, 302);
  });

  app.get('/callback', publicRoute, async (req, reply) => {
    const clear = serializeCookie(LOGIN_COOKIE, '', {
      path: `${BASE}/callback`,
      maxAge: 0,
      secure: secureFor(req, o.publicUrl?.startsWith('https:') ?? false),
      sameSite: 'Lax',
    });
    reply.header('set-cookie', clear);
    if (!o.oidc) return errorPage(req, reply, 404, 'OpenID Connect sign-in is not configured (ui.oidc).');
    const p = await o.sealer.open(parseCookies(req.headers.cookie).get(LOGIN_COOKIE), 'jit-ui-login');
    if (!p || typeof p.state !== 'string' || typeof p.nonce !== 'string' || typeof p.verifier !== 'string' || typeof p.redirectUri !== 'string')
      return reply.redirect(`${BASE}/login?error=expired`, 303);
    const pending: PendingSignIn = { state: p.state, nonce: p.nonce, verifier: p.verifier, redirectUri: p.redirectUri, next: safeNext(p.next) };
    const here = new URL(pending.redirectUri);
    here.search = new URL(req.url, 'http://x').search;
    let who: Awaited<ReturnType<OidcSignIn['finish']>>;
    try {
      who = await o.oidc.finish(here, pending);
    } catch (e) {
      o.log('console: OpenID Connect sign-in failed', { error: String(e) });
      return reply.redirect(`${BASE}/login?error=refused`, 303);
    }
    if (!isViewer(o.viewers, who.claims)) {
      o.log('console: sign-in refused by ui.viewers', { sub: who.sub, email: who.email });
      return reply.redirect(`${BASE}/login?error=viewer`, 303);
    }
    await signIn(req, reply, { via: 'oidc', sub: who.sub, name: who.name, email: who.email, groups: who.groups });
    return continueTo(reply, pending.next);
  });

  app.post<{ Body: Record<string, string | undefined> }>('/login/local', publicRoute, async (req, reply) => {
    if (!o.adminToken) return errorPage(req, reply, 404, 'The admin-token sign-in needs an admin_token.');
    if (!fromLoopback(req)) return signInPage(req, reply, 403, ERRORS.loopback);
    const given = req.body?.token ?? req.body?.admin_token ?? '';
    if (!given || !timingSafeEqual(digest(given.trim()), digest(o.adminToken))) {
      o.log('console: wrong admin token at the local sign-in', { client: req.socket.remoteAddress });
      return signInPage(req, reply, 401, ERRORS.token);
    }
    const next = safeNext(req.body?.next ?? sessionOf(req).next);
    await signIn(req, reply, { via: 'local', sub: 'admin', name: 'admin (local)', email: null, groups: [] });
    return reply.redirect(next, 303);
  });

  app.post('/logout', publicRoute, async (req, reply) => {
    const s = sessionOf(req);
    o.sessions.signOut(s);
    o.streams.endSession(s.sid);
    await o.sessions.write(req, reply, o.sessions.fresh(null));
    return reply.redirect(`${BASE}/login`, 303);
  });
};
