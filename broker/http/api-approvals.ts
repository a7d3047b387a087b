// The approvals HTTP API (`jit approvals/approve/deny`, scripts): a fastify plugin, registered under
// /api/approvals. Every route needs `Authorization: Bearer <admin_token>` (see admin-auth.ts): 401
// without it or with another token; 503 when the broker has no admin_token configured.
// Deciders through this API hold the admin token, so a rule's approvers list does not apply to them;
// an `email` in the body is still checked against the requester's (no approving your own request).
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Approvals } from '../approvals/index.js';
import { approvalJsonSchema, approvalToJson } from '../approvals/json.js';
import type { ApprovalState, DecisionResult } from '../approvals/types.js';
import { adminAuth, errorJsonSchema as error, guardedResponses as guarded } from './admin-auth.js';
import { approvalIdParams, DECISION_REFUSAL_STATUS } from './decisions.js';

export interface ApprovalsApiOptions {
  approvals: Approvals;
  /** null: the API answers 503. */
  adminToken: string | null;
}

const STATES = ['pending', 'approved', 'denied', 'expired', 'cancelled'] as const;
const refusal = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, code: { type: 'string' }, message: { type: 'string' }, approval: approvalJsonSchema },
} as const;
const decided = { type: 'object', properties: { ok: { type: 'boolean' }, approval: approvalJsonSchema } } as const;

/** `api:<name>` unless the caller already says where it decides from (`cli:alice`). */
const decider = (by: string | undefined) => (by && /^(cli|api):/.test(by) ? by : `api:${by ?? 'admin'}`);

function answer(reply: FastifyReply, r: DecisionResult) {
  if (r.ok) return { ok: true, approval: approvalToJson(r.request) };
  return reply
    .code(DECISION_REFUSAL_STATUS[r.code])
    .send({ ok: false, code: r.code, message: r.message, ...(r.request ? { approval: approvalToJson(r.request) } : {}) });
}

export const approvalsApi: FastifyPluginAsync<ApprovalsApiOptions> = async (app, opts) => {
  const { approvals } = opts;
  app.addHook('onRequest', adminAuth(opts.adminToken));

  app.get<{ Querystring: { state?: ApprovalState; session?: string; build?: string; limit: number } }>(
    '/',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: STATES },
            session: { type: 'string' },
            build: { type: 'string' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: { 200: { type: 'object', properties: { approvals: { type: 'array', items: approvalJsonSchema } } }, ...guarded },
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await approvals.list({ state: q.state, sessionId: q.session, build: q.build, limit: q.limit });
      return { approvals: rows.map(approvalToJson) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id',
    { schema: { params: approvalIdParams, response: { 200: approvalJsonSchema, 404: error, ...guarded } } },
    async (req, reply) => {
      const r = await approvals.get(req.params.id);
      return r ? approvalToJson(r) : reply.code(404).send({ error: `no approval request '${req.params.id}'` });
    },
  );

  const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
  const responses = { 200: decided, 403: refusal, 404: refusal, 409: refusal, ...guarded } as const;

  app.post<{ Params: { id: string }; Body: { by?: string; email?: string; reason?: string } | undefined }>(
    '/:id/approve',
    {
      schema: {
        params: approvalIdParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { by: text(200), email: text(320), reason: text(2000) } },
        response: responses,
      },
    },
    async (req, reply) => {
      const b = req.body ?? {};
      return answer(
        reply,
        await approvals.decide(req.params.id, { approve: true, by: decider(b.by), email: b.email ?? null, reason: b.reason ?? null, trusted: true }),
      );
    },
  );

  app.post<{ Params: { id: string }; Body: { by?: string; reason: string } }>(
    '/:id/deny',
    {
      schema: {
        params: approvalIdParams,
        body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { by: text(200), reason: text(2000) } },
        response: responses,
      },
    },
    async (req, reply) =>
      answer(reply, await approvals.decide(req.params.id, { approve: false, by: decider(req.body.by), reason: req.body.reason, trusted: true })),
  );
};
