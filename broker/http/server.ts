// The broker's HTTP listener: health, readiness, the dev issuer's JWKS and discovery document, and
// the admin API (approvals; see api-approvals.ts for its authentication).
import Fastify, { type FastifyInstance } from 'fastify';
import type { Approvals } from '../approvals/index.js';
import type { LocalIssuer } from '../identity/index.js';
import { approvalsApi } from './api-approvals.js';

export interface HttpDeps {
  issuer: LocalIssuer | null;
  /** Throws when the broker cannot serve (store unreachable, a listener down). */
  ready: () => Promise<void>;
  logger: boolean | object;
  /** Served under /api/approvals when given. */
  approvals?: Approvals;
  /** Bearer token of the admin API; null or absent: the admin API answers 503. */
  adminToken?: string | null;
}

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger as boolean });

  app.get('/healthz', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({
    status: 'ok',
  }));

  app.get('/readyz', async (_req, reply) => {
    try {
      await deps.ready();
      return { status: 'ready' };
    } catch (e) {
      return reply.code(503).send({ status: 'not ready', error: (e as Error).message });
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
    }));
  }
  if (deps.approvals) await app.register(approvalsApi, { prefix: '/api/approvals', approvals: deps.approvals, adminToken: deps.adminToken ?? null });
  return app;
}
