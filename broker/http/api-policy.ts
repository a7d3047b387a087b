// The policy versions HTTP API (`jit policy`, scripts): a fastify plugin registered under /api/policy, behind
// the admin token. GET / is the active version, GET /versions every one, GET /versions/:n one; POST / stores a
// new version ({ rules, default, message, author }), validated by the config's own schema, which becomes live
// on this broker at once and on the others of its fleet within a second.
import type { FastifyPluginAsync } from 'fastify';
import { ConfigError } from '../config.js';
import type { LivePolicy, PolicyStore } from '../policy/live.js';
import { diffPolicies, parsePolicyDocument, type PolicyDiff } from '../policy/versions.js';
import type { PolicyDocument, PolicyVersion } from '../store/types.js';
import { adminAuth } from './admin-auth.js';

export interface PolicyApiOptions {
  store: PolicyStore;
  live: LivePolicy;
  /** The target names a rule may name (the broker's config). */
  targets: readonly string[];
  adminToken: string | null;
}

export interface PolicyVersionJson {
  version: number;
  rules: PolicyDocument;
  sha256: string;
  author: string;
  message: string | null;
  appliedAt: string;
}

/** What POST /api/policy answers: the version stored, the one it replaced, and what changed. */
export interface PolicyAppliedJson {
  policy: PolicyVersionJson;
  previous: number | null;
  diff: PolicyDiff;
}

export const policyVersionToJson = (v: PolicyVersion): PolicyVersionJson => ({ ...v, appliedAt: v.appliedAt.toISOString() });

/** `api:<name>` unless the caller already says where it acts from (`cli:alice`). */
const actor = (by: string | undefined) => (by && (/^(cli|api):/.test(by) || by === 'config') ? by : `api:${by ?? 'admin'}`);

export const policyApi: FastifyPluginAsync<PolicyApiOptions> = async (app, opts) => {
  app.addHook('onRequest', adminAuth(opts.adminToken));

  app.get('/', async (_req, reply) => {
    const v = await opts.store.getPolicyVersion();
    if (!v) return reply.code(404).send({ error: 'no policy version in the store' });
    return { policy: policyVersionToJson(v), live: opts.live.holder.current.version };
  });

  app.get('/versions', async () => ({ versions: (await opts.store.listPolicyVersions()).map(policyVersionToJson) }));

  app.get<{ Params: { n: number } }>(
    '/versions/:n',
    { schema: { params: { type: 'object', properties: { n: { type: 'integer', minimum: 1 } }, required: ['n'] } } },
    async (req, reply) => {
      const v = await opts.store.getPolicyVersion(req.params.n);
      if (!v) return reply.code(404).send({ error: `no policy version ${req.params.n}` });
      return { policy: policyVersionToJson(v) };
    },
  );

  app.post<{ Body: { rules?: unknown; default?: unknown; message?: string; author?: string } }>(
    '/',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            rules: { type: 'array' },
            default: { type: 'string' },
            message: { type: 'string', maxLength: 2000 },
            author: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      let policy: ReturnType<typeof parsePolicyDocument>;
      try {
        policy = parsePolicyDocument({ rules: b.rules, default: b.default }, opts.targets);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        return reply.code(400).send({ error: `invalid policy: ${e.problems.join('; ')}`, code: 'invalid_policy', problems: e.problems });
      }
      const previous = await opts.store.getPolicyVersion();
      const stored = await opts.live.apply({ rules: { rules: policy.rules, default: policy.default }, author: actor(b.author), message: b.message ?? null });
      const body: PolicyAppliedJson = {
        policy: policyVersionToJson(stored),
        previous: previous?.version ?? null,
        diff: diffPolicies(previous?.rules ?? { rules: [], default: 'deny' }, stored.rules),
      };
      return reply.code(201).send(body);
    },
  );
};
