// The logins HTTP API: what `jit logins` shows, for scripts and dashboards. GET /api/logins lists logins
// newest first: refused ones (with why, and what the token claimed, unverified) merged with accepted ones
// (the sessions they opened); `?refused=true` lists refusals only, `?since=1h` (or an ISO date) bounds
// them in time. Needs `Authorization: Bearer <admin_token>` (see admin-auth.ts).
import type { FastifyPluginAsync } from 'fastify';
import { listLogins, loginJsonSchema, loginToJson, parseSince } from '../audit/logins.js';
import type { Store } from '../store/index.js';
import { adminAuth, errorJsonSchema as error, guardedResponses as guarded } from './admin-auth.js';

export interface LoginsApiOptions {
  store: Store;
  /** null: the API answers 503. */
  adminToken: string | null;
}

export const loginsApi: FastifyPluginAsync<LoginsApiOptions> = async (app, opts) => {
  app.addHook('onRequest', adminAuth(opts.adminToken));

  app.get<{ Querystring: { refused?: boolean; since?: string; limit: number } }>(
    '/',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            refused: { type: 'boolean' },
            since: { type: 'string', minLength: 1, maxLength: 64 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
          },
        },
        response: { 200: { type: 'object', required: ['logins'], properties: { logins: { type: 'array', items: loginJsonSchema } } }, 400: error, ...guarded },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const since = q.since === undefined ? undefined : parseSince(q.since);
      if (since === null)
        return reply.code(400).send({ error: `since: '${q.since}' is neither a duration (90s, 15m, 1h, 7d) nor a date (2025-01-31T12:00:00Z)` });
      const rows = await listLogins(opts.store, { refused: q.refused, since, limit: q.limit });
      return { logins: rows.map(loginToJson) };
    },
  );
};
