// What the broker recorded: GET /ui/sessions (build, subject, target, since, open), GET /ui/sessions/:id (a unique
// prefix is enough, as on the command line), GET /ui/logins (since, refused), GET /ui/policy and /ui/policy/:version.
// Read from the store as the admin API reads it (api-sessions.ts, api-logins.ts, api-policy.ts).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { listLogins, parseSince } from '../../audit/logins.js';
import { loadReplay } from '../../audit/replay.js';
import { diffPolicies } from '../../policy/versions.js';
import { AmbiguousSessionIdError, type Store } from '../../store/index.js';
import { renderPage } from '../html.js';
import { renderError, renderLogins, renderPolicy, renderPolicyVersion, renderSession, renderSessions, type SessionFilters } from '../pages/index.js';
import { contextOf, sendPage } from '../request-state.js';

export interface RecordsRoutesOptions {
  store: Store;
  /** The policy version this broker enforces now (absent: the newest stored). */
  activePolicy?: () => number | null;
}

const LIST_LIMIT = 200;
const text = { type: 'string', maxLength: 500 } as const;
const blank = (v: string | undefined) => (v?.trim() ? v.trim() : undefined);

export const recordsRoutes: FastifyPluginAsync<RecordsRoutesOptions> = async (app, { store, activePolicy }) => {
  const error = (req: FastifyRequest, reply: FastifyReply, status: number, message: string) => {
    const ctx = contextOf(req);
    return sendPage(reply, status, renderPage({ title: status === 404 ? 'Not found' : 'Error', ctx, body: renderError(ctx, status, message) }));
  };

  app.get<{ Querystring: { build?: string; subject?: string; target?: string; since?: string; open?: string } }>(
    '/sessions',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { build: text, subject: text, target: text, since: text, open: text } },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const f: SessionFilters = { build: blank(q.build), subject: blank(q.subject), target: blank(q.target), since: blank(q.since) };
      if (q.open === 'true' || q.open === 'on') f.open = true;
      const since = f.since === undefined ? undefined : parseSince(f.since);
      if (since === null) return error(req, reply, 400, `Since: '${f.since}' is neither a duration (15m, 1h, 7d) nor a date (2025-01-31T12:00:00Z).`);
      const sessions = await store.listSessions({ build: f.build, subject: f.subject, target: f.target, since, open: f.open, limit: LIST_LIMIT });
      const ctx = contextOf(req);
      return sendPage(reply, 200, renderPage({ title: 'Sessions', ctx, body: renderSessions(ctx, { sessions, filters: f }), active: 'sessions' }));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/sessions/:id',
    { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } } },
    async (req, reply) => {
      let r: Awaited<ReturnType<typeof loadReplay>>;
      try {
        r = await loadReplay(store, req.params.id);
      } catch (e) {
        if (!(e instanceof AmbiguousSessionIdError)) throw e;
        return error(req, reply, 409, e.message);
      }
      if (!r) return error(req, reply, 404, `There is no session '${req.params.id}'.`);
      const ctx = contextOf(req);
      const body = renderSession(ctx, { session: r.session, statements: r.statements, approvals: [...r.approvals.values()], samples: r.samples });
      return sendPage(reply, 200, renderPage({ title: `Session ${r.session.id}`, ctx, body, active: 'sessions' }));
    },
  );

  app.get<{ Querystring: { since?: string; refused?: string } }>(
    '/logins',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { since: text, refused: text } } } },
    async (req, reply) => {
      const sinceText = blank(req.query.since);
      const refused = req.query.refused === 'true' || req.query.refused === 'on';
      const since = sinceText === undefined ? undefined : parseSince(sinceText);
      if (since === null) return error(req, reply, 400, `Since: '${sinceText}' is neither a duration (15m, 1h, 7d) nor a date (2025-01-31T12:00:00Z).`);
      const logins = await listLogins(store, { refused, since, limit: LIST_LIMIT });
      const ctx = contextOf(req);
      const body = renderLogins(ctx, { logins, filters: { since: sinceText, refused } });
      return sendPage(reply, 200, renderPage({ title: 'Logins', ctx, body, active: 'logins' }));
    },
  );

  app.get('/policy', async (req, reply) => {
    const versions = await store.listPolicyVersions();
    const ctx = contextOf(req);
    const body = renderPolicy(ctx, { versions, ...(activePolicy ? { active: activePolicy() } : {}) });
    return sendPage(reply, 200, renderPage({ title: 'Policy', ctx, body, active: 'policy' }));
  });

  app.get<{ Params: { version: number } }>(
    '/policy/:version',
    { schema: { params: { type: 'object', required: ['version'], properties: { version: { type: 'integer', minimum: 1 } } } } },
    async (req, reply) => {
      const n = req.params.version;
      const version = await store.getPolicyVersion(n);
      if (!version) return error(req, reply, 404, `There is no policy version ${n}.`);
      const previous = n > 1 ? await store.getPolicyVersion(n - 1) : null;
      const diff = previous ? diffPolicies(previous.rules, version.rules) : null;
      const ctx = contextOf(req);
      const body = renderPolicyVersion(ctx, { version, previous, diff, ...(activePolicy ? { active: activePolicy() } : {}) });
      return sendPage(reply, 200, renderPage({ title: `Policy version ${n}`, ctx, body, active: 'policy' }));
    },
  );
};
