// The broker's HTTP listener: health, readiness, the dev issuer's JWKS and discovery document, metrics, and
// the admin API (approvals, sessions; see admin-auth.ts for its authentication).
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Approvals } from '../approvals/index.js';
import type { LocalIssuer } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { isLoopback } from '../engines/listener.js';
import { approvalsApi } from './api-approvals.js';
import type { ExchangeOptions } from '../identity/exchange.js';
import type { RevocationService } from '../identity/revocation.js';
import { revocationsApi } from './api-revocations.js';
import { oauthTokenRoute } from './oauth-token.js';
import { sessionsApi } from './api-sessions.js';
import { loginsApi } from './api-logins.js';
import { adminAuth } from './admin-auth.js';
import { policyApi } from './api-policy.js';
import type { LivePolicy } from '../policy/live.js';
import type { Metrics } from '../metrics/index.js';
import { buildInfo } from '../version.js';
import type { UiOptions } from '../ui/index.js';

export interface HttpDeps {
  issuer: LocalIssuer | null;
  /** Throws when the broker cannot serve (store unreachable, a listener down). */
  ready: () => Promise<void>;
  /** Reported by /readyz beside readiness, which they do not affect (an upstream account with too much privilege). */
  warnings?: () => readonly string[];
  /** Each request is logged through it (method, URL, status, time; never a header, so never a token); false: not logged. */
  logger: FastifyBaseLogger | false;
  /** Served under /api/approvals when given. */
  approvals?: Approvals;
  /** Served under /api/sessions (sessions, statements, replay events) and /api/logins when given. */
  store?: Store;
  /** Bearer token of the admin API; null or absent: the admin API answers 503. */
  adminToken?: string | null;
  /** The admin API (/api/…) answers loopback clients only, 403 otherwise: for a token generated under data_dir. */
  adminLoopbackOnly?: boolean;
  /** RFC 8693 token exchange at POST /oauth/token (with `issuer`); null: answered `unauthorized_client`. */
  exchange?: ExchangeOptions | null;
  /** Served under /api/policy (admin token) with `store` when given: policy versions, and applying a new one here. */
  policy?: { live: LivePolicy; targets: readonly string[] };
  /** Served under /api/revocations (admin token) when given. */
  revocations?: RevocationService;
  /** GET /metrics (Prometheus text format), behind the admin token unless `public` (config `metrics.public`). */
  metrics?: { metrics: Metrics; public: boolean };
  /** Request-independent log lines (token exchanges granted and refused). */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** The web console under /ui/ (broker/ui, docs/console.md) when given. */
  ui?: UiOptions;
}

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = deps.logger ? Fastify({ loggerInstance: deps.logger }) : Fastify({ logger: false });

  const build = buildInfo();
  app.get(
    '/healthz',
    {
      schema: {
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, version: { type: 'string' }, commit: { type: ['string', 'null'] } } },
        },
      },
    },
    async () => ({ status: 'ok', version: build.version, commit: build.commit }),
  );

  app.get('/readyz', async (_req, reply) => {
    try {
      await deps.ready();
      return { status: 'ready', warnings: deps.warnings?.() ?? [] };
    } catch (e) {
      return reply.code(503).send({ status: 'not ready', error: (e as Error).message, warnings: deps.warnings?.() ?? [] });
    }
  });

  if (deps.issuer) {
    const issuer = deps.issuer;
    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return issuer.jwks();
    });
    app.get('/.well-known/openid-configuration', async () => ({
      issuer: issuer.issuer,
      jwks_uri: `${issuer.issuer}/.well-known/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      token_endpoint: `${issuer.issuer}/oauth/token`,
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      token_endpoint_auth_methods_supported: ['none'],
    }));
    await app.register(oauthTokenRoute, { exchange: deps.exchange ?? null, log: deps.log });
  }
  if (deps.metrics) {
    const { metrics, public: open } = deps.metrics;
    const loopbackOnly = async (req: FastifyRequest, reply: FastifyReply) => {
      if (!isLoopback(req.socket.remoteAddress ?? ''))
        await reply.code(403).send({ error: 'this broker generated its admin token (admin_token: generate), which it accepts from loopback only' });
    };
    const guard = open ? [] : deps.adminLoopbackOnly ? [loopbackOnly, adminAuth(deps.adminToken ?? null)] : [adminAuth(deps.adminToken ?? null)];
    app.get('/metrics', { onRequest: guard }, async (_req, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.type(contentType).send(body);
    });
  }
  // Before the admin API's plugins are registered, so that it runs ahead of their token checks.
  if (deps.adminLoopbackOnly) {
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/api/') || isLoopback(req.socket.remoteAddress ?? '')) return;
      await reply.code(403).send({
        error:
          'this broker generated its admin token (admin_token: generate), which it accepts from loopback only: set admin_token in its config to use the admin API from elsewhere',
      });
    });
  }
  if (deps.revocations) await app.register(revocationsApi, { prefix: '/api/revocations', revocations: deps.revocations, adminToken: deps.adminToken ?? null });
  if (deps.approvals) await app.register(approvalsApi, { prefix: '/api/approvals', approvals: deps.approvals, adminToken: deps.adminToken ?? null });
  if (deps.store) await app.register(sessionsApi, { prefix: '/api/sessions', store: deps.store, adminToken: deps.adminToken ?? null });
  if (deps.store && deps.policy)
    await app.register(policyApi, {
      prefix: '/api/policy',
      store: deps.store,
      live: deps.policy.live,
      targets: deps.policy.targets,
      adminToken: deps.adminToken ?? null,
    });
  if (deps.store) await app.register(loginsApi, { prefix: '/api/logins', store: deps.store, adminToken: deps.adminToken ?? null });
  if (deps.ui) {
    const { consolePlugin } = await import('../ui/index.js'); // openid-client and the pages load only with the console on
    await app.register(consolePlugin, { prefix: '/ui', ...deps.ui });
  }
  return app;
}
