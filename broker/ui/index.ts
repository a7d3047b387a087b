// The web console, served by the broker on its HTTP listener under /ui/ (docs/console.md): server-rendered pages
// (pages/*.ts), a stylesheet and a small script (assets/), sign-in through OpenID Connect or, from this machine,
// the admin token. This plugin wires it: the session cookie read on every request, the sign-in required where it
// is, the CSRF and same-origin checks of every POST, the security headers of every response, then the routes.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Approvals } from '../approvals/index.js';
import type { UiConfig } from '../config.js';
import type { Store } from '../store/index.js';
import { loadOrCreateUiKey } from './auth/key.js';
import { OidcSignIn } from './auth/oidc.js';
import { Sealer } from './auth/seal.js';
import { Sessions } from './auth/session.js';
import { ChangeFeed } from './change-feed.js';
import { renderPage } from './html.js';
import { renderError } from './pages/index.js';
import { BASE, contextOf, sendPage, sessionOf, setSession } from './request-state.js';
import { assetsRoute } from './routes/assets.js';
import { authRoutes } from './routes/auth.js';
import { EventStreams, eventsRoute } from './routes/events.js';
import { recordsRoutes } from './routes/records.js';
import { reviewsRoutes } from './routes/reviews.js';
import { sameOrigin, setSecurityHeaders } from './security.js';

export { BASE as UI_BASE } from './request-state.js';

export interface UiOptions {
  config: UiConfig;
  /** Where the cookie key is kept (ui-session.key), shared by a fleet. */
  dataDir: string;
  approvals: Approvals;
  store: Store;
  /** The admin token: the local sign-in's credential (from loopback only); null: no local sign-in. */
  adminToken: string | null;
  /** The policy version this broker enforces now. */
  activePolicy?: () => number | null;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** How often live pages' store poll runs (tests). Default 2 s. */
  pollMs?: number;
}

/** Route config: `public` needs no sign-in (sign-in pages, sign-out), `assets` not even a session. */
type UiRouteConfig = { ui?: 'public' | 'assets' };

const sameToken = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Register with `{ prefix: '/ui' }`. */
export const consolePlugin: FastifyPluginAsync<UiOptions> = async (app, o) => {
  const log = o.log ?? (() => {});
  const sealer = new Sealer(loadOrCreateUiKey(o.dataDir));
  const publicUrl = o.config.public_url;
  const sessions = new Sessions({ sealer, ttlSeconds: o.config.session_ttl, httpsOnly: publicUrl?.startsWith('https:') ?? false });
  const oidc = o.config.oidc ? new OidcSignIn(o.config.oidc) : null;
  const feed = new ChangeFeed({ approvals: o.approvals, store: o.store, pollMs: o.pollMs, log });
  const streams = new EventStreams();

  // Forms post application/x-www-form-urlencoded; this plugin's scope only.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  // Every response, errors and 404s included (the event stream sets them itself).
  app.addHook('onSend', async (_req, reply, payload) => {
    setSecurityHeaders(reply);
    return payload;
  });

  // The session (a new anonymous one when there is none), and the sign-in where it is needed.
  app.addHook('onRequest', async (req, reply) => {
    const cfg = (req.routeOptions.config ?? {}) as UiRouteConfig;
    if (cfg.ui === 'assets') return;
    let s = await sessions.read(req);
    if (!s) {
      s = sessions.fresh(null);
      await sessions.write(req, reply, s);
    }
    setSession(req, s);
    if (s.user || cfg.ui === 'public' || req.routeOptions.url === undefined) return;
    if (req.method === 'GET' && req.routeOptions.url !== `${BASE}/events`) {
      return reply.redirect(`${BASE}/login?next=${encodeURIComponent(req.url)}`, 303);
    }
    const ctx = contextOf(req);
    return sendPage(reply, 401, renderPage({ title: 'Sign-in needed', ctx, body: renderError(ctx, 401, 'Sign in first.') }));
  });

  // Every POST comes from one of this console's own pages: same origin, and the session's CSRF token.
  app.addHook('preValidation', async (req, reply) => {
    if (req.method !== 'POST') return;
    const s = sessionOf(req);
    const body = req.body as Record<string, unknown> | undefined;
    const token = typeof body?._csrf === 'string' ? body._csrf : '';
    const okOrigin = sameOrigin(req, publicUrl);
    if (okOrigin && token && sameToken(token, s.csrf)) return;
    log('console: POST refused (CSRF)', { url: req.url, origin: okOrigin, token: Boolean(token) });
    const ctx = contextOf(req);
    const why = okOrigin
      ? 'This form is out of date or did not come from this console (its security token does not match): reload the page and try again.'
      : 'This request did not come from a page of this console.';
    return sendPage(reply, 403, renderPage({ title: 'Not allowed', ctx, body: renderError(ctx, 403, why) }));
  });

  app.setNotFoundHandler(async (req, reply) => {
    const s = await sessions.read(req);
    if (s) setSession(req, s);
    const ctx = contextOf(req);
    return sendPage(reply, 404, renderPage({ title: 'Not found', ctx, body: renderError(ctx, 404, 'There is no such page in the console.') }));
  });

  app.setErrorHandler(async (e: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) req.log.error({ err: e }, 'console: request failed');
    const ctx = contextOf(req);
    // A 4xx (a malformed query or form) says what was wrong; a 5xx never shows the error itself.
    const message = status === 500 ? 'The broker could not answer this page: see its log.' : e.message;
    return sendPage(reply, status, renderPage({ title: 'Error', ctx, body: renderError(ctx, status, message) }));
  });

  app.addHook('preClose', async () => {
    streams.endAll();
    feed.close();
  });

  app.get('/', async (_req, reply) => reply.redirect(`${BASE}/reviews`, 303));
  await app.register(assetsRoute, { dir: new URL('./assets/', import.meta.url) });
  await app.register(authRoutes, { sessions, sealer, oidc, viewers: o.config.viewers, adminToken: o.adminToken, publicUrl, streams, log });
  await app.register(reviewsRoutes, { approvals: o.approvals });
  await app.register(recordsRoutes, { store: o.store, ...(o.activePolicy ? { activePolicy: o.activePolicy } : {}) });
  await app.register(eventsRoute, { feed, streams });
};
