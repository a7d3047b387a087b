// The revocations HTTP API (`jit revoke`, scripts): a fastify plugin registered under /api/revocations,
// behind the admin token (admin-auth.ts). Revoking a build refuses every token of it from then on and
// ends its open sessions (see identity/revocation.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { RevocationService } from '../identity/revocation.js';
import type { Revocation } from '../store/index.js';
import { adminAuth, errorJsonSchema as error, guardedResponses as guarded } from './admin-auth.js';

export interface RevocationsApiOptions {
  revocations: RevocationService;
  adminToken: string | null;
}

export interface RevocationJson {
  id: number;
  build: string | null;
  jti: string | null;
  reason: string;
  revokedBy: string;
  revokedAt: string;
}

export const revocationToJson = (r: Revocation): RevocationJson => ({ ...r, revokedAt: r.revokedAt.toISOString() });

const nullableString = { type: ['string', 'null'] } as const;
const revocationSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    build: nullableString,
    jti: nullableString,
    reason: { type: 'string' },
    revokedBy: { type: 'string' },
    revokedAt: { type: 'string' },
  },
} as const;
const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;

/** `api:<name>` unless the caller already says where it acts from (`cli:alice`). */
const actor = (by: string | undefined) => (by && /^(cli|api):/.test(by) ? by : `api:${by ?? 'admin'}`);

export const revocationsApi: FastifyPluginAsync<RevocationsApiOptions> = async (app, opts) => {
  app.addHook('onRequest', adminAuth(opts.adminToken));

  app.get<{ Querystring: { build?: string; jti?: string; limit: number } }>(
    '/',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { build: text(500), jti: text(500), limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: { 200: { type: 'object', properties: { revocations: { type: 'array', items: revocationSchema } } }, ...guarded },
      },
    },
    async (req) => ({ revocations: (await opts.revocations.list(req.query)).map(revocationToJson) }),
  );

  app.post<{ Body: { build?: string; jti?: string; reason: string; by?: string } }>(
    '/',
    {
      schema: {
        body: {
          type: 'object',
          required: ['reason'],
          additionalProperties: false,
          properties: { build: text(500), jti: text(500), reason: text(2000), by: text(200) },
        },
        response: {
          201: { type: 'object', properties: { revocation: revocationSchema, ended: { type: 'array', items: { type: 'string' } } } },
          400: error,
          ...guarded,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const r = await opts.revocations.revoke({ build: b.build, jti: b.jti, reason: b.reason, by: actor(b.by), trusted: true });
      if (!r.ok) return reply.code(400).send({ error: r.message });
      return reply.code(201).send({ revocation: revocationToJson(r.revocation), ended: r.ended });
    },
  );
};
