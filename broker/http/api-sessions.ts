// The sessions HTTP API: what `jit sessions` and `jit replay` show, for scripts and dashboards. A fastify
// plugin registered under /api/sessions; every route needs `Authorization: Bearer <admin_token>` (see
// admin-auth.ts). A session id may be given as a unique prefix, as on the command line.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { replayEventSchema, sessionJsonSchema, sessionToJson, statementJsonSchema, statementsToJson } from '../audit/json.js';
import { loadReplay, replayEvents, type Replay } from '../audit/replay.js';
import { AmbiguousSessionIdError, type Store } from '../store/index.js';
import { adminAuth, errorJsonSchema as error, guardedResponses as guarded } from './admin-auth.js';

export interface SessionsApiOptions {
  store: Store;
  /** null: the API answers 503. */
  adminToken: string | null;
}

const params = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const filterText = { type: 'string', minLength: 1, maxLength: 500 } as const;

export const sessionsApi: FastifyPluginAsync<SessionsApiOptions> = async (app, opts) => {
  const { store } = opts;
  app.addHook('onRequest', adminAuth(opts.adminToken));

  /** The replay of one session, or the reply already sent (404 none, 409 an ambiguous prefix). */
  async function load(id: string, reply: FastifyReply): Promise<Replay | null> {
    try {
      const r = await loadReplay(store, id);
      if (!r) void reply.code(404).send({ error: `no session '${id}'` });
      return r;
    } catch (e) {
      if (!(e instanceof AmbiguousSessionIdError)) throw e;
      void reply.code(409).send({ error: e.message });
      return null;
    }
  }

  app.get<{ Querystring: { build?: string; subject?: string; target?: string; open?: boolean; limit: number } }>(
    '/',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            build: filterText,
            subject: filterText,
            target: filterText,
            open: { type: 'boolean' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
          },
        },
        response: { 200: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: sessionJsonSchema } } }, ...guarded },
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await store.listSessions({ build: q.build, subject: q.subject, target: q.target, open: q.open, limit: q.limit });
      return { sessions: rows.map(sessionToJson) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id',
    {
      schema: {
        params,
        response: {
          200: {
            type: 'object',
            required: ['session', 'statements'],
            properties: { session: sessionJsonSchema, statements: { type: 'array', items: statementJsonSchema } },
          },
          404: error,
          409: error,
          ...guarded,
        },
      },
    },
    async (req, reply) => {
      const r = await load(req.params.id, reply);
      return r ? { session: sessionToJson(r.session), statements: statementsToJson(r) } : reply;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/:id/events',
    { schema: { params, response: { 200: { type: 'array', items: replayEventSchema }, 404: error, 409: error, ...guarded } } },
    async (req, reply) => {
      const r = await load(req.params.id, reply);
      return r ? replayEvents(r) : reply;
    },
  );
};
