// The reviews: GET /ui/reviews (the inbox, filtered by target, rule, requester, build), GET /ui/reviews/:id, and
// the decisions, POST /ui/reviews/:id/approve and /deny (reason). Deciding goes through Approvals.decide, which
// applies the review rule's approvers, the own-request rule and min_approvals; its refusal is shown on the page.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Approvals } from '../../approvals/index.js';
import type { ApprovalRequest } from '../../approvals/types.js';
import { canDecide, deciderOf } from '../auth/access.js';
import { renderPage } from '../html.js';
import { filterReviews, renderError, renderReview, renderReviews, type ReviewFilters } from '../pages/index.js';
import { BASE, contextOf, sendPage, userOf } from '../request-state.js';
import { safeNext } from '../security.js';
import { approvalIdParams, DECISION_REFUSAL_STATUS } from '../../http/decisions.js';

/** Settled requests shown besides the pending ones. */
const SETTLED_LIMIT = 200;

const filterText = { type: 'string', maxLength: 500 } as const;

/** Query values as filters: empty fields (a submitted form's blanks) are no filter. */
function filters(q: ReviewFilters): ReviewFilters {
  const out: ReviewFilters = {};
  for (const k of ['target', 'rule', 'requester', 'build'] as const) {
    const v = q[k]?.trim();
    if (v) out[k] = v;
  }
  return out;
}

export const reviewsRoutes: FastifyPluginAsync<{ approvals: Approvals }> = async (app, { approvals }) => {
  app.get<{ Querystring: ReviewFilters }>(
    '/reviews',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { target: filterText, rule: filterText, requester: filterText, build: filterText },
        },
      },
    },
    async (req, reply) => {
      const f = filters(req.query);
      const [pending, recent] = await Promise.all([
        approvals.list({ state: 'pending', build: f.build }),
        approvals.list({ build: f.build, limit: SETTLED_LIMIT }),
      ]);
      const byId = new Map<string, ApprovalRequest>();
      for (const r of [...recent, ...pending]) byId.set(r.id, r);
      const requests = filterReviews([...byId.values()], f);
      const base = contextOf(req);
      // Decide forms only for someone who may decide at least one of the pending requests listed (Approvals checks each).
      const user = userOf(req);
      const ctx = { ...base, user: base.user && { ...base.user, canApprove: base.user.canApprove && requests.some((r) => canDecide(user, r).ok) } };
      const body = renderReviews(ctx, { requests, filters: f });
      return sendPage(reply, 200, renderPage({ title: 'Reviews', ctx, body, active: 'reviews' }));
    },
  );

  async function reviewPage(req: FastifyRequest, reply: FastifyReply, status: number, r: ApprovalRequest, notice?: { whyNot?: string; message?: string }) {
    const ctx = contextOf(req);
    const may = canDecide(userOf(req), r);
    const body = renderReview(ctx, {
      request: r,
      canDecide: may.ok,
      ...(notice?.whyNot ? { whyNot: notice.whyNot } : !may.ok && r.state === 'pending' ? { whyNot: may.why } : {}),
      ...(notice?.message ? { message: notice.message } : {}),
    });
    return sendPage(reply, status, renderPage({ title: `Review ${r.id}`, ctx, body, active: 'reviews' }));
  }

  const notFound = (req: FastifyRequest, reply: FastifyReply, id: string) => {
    const ctx = contextOf(req);
    return sendPage(reply, 404, renderPage({ title: 'Not found', ctx, body: renderError(ctx, 404, `There is no approval request '${id}'.`) }));
  };

  app.get<{ Params: { id: string }; Querystring: { done?: string } }>(
    '/reviews/:id',
    {
      schema: { params: approvalIdParams, querystring: { type: 'object', properties: { done: { type: 'string', enum: ['approved', 'denied', 'counted'] } } } },
    },
    async (req, reply) => {
      const r = await approvals.get(req.params.id);
      if (!r) return notFound(req, reply, req.params.id);
      const done = req.query.done;
      const message =
        done === 'approved'
          ? 'You approved this request.'
          : done === 'denied'
            ? 'You denied this request.'
            : done === 'counted'
              ? 'Your approval was counted; more are needed.'
              : undefined;
      return reviewPage(req, reply, 200, r, message ? { message } : undefined);
    },
  );

  /** After a decision: back to the page it was made on (the inbox or the request's page), as the Referer says. */
  function back(req: FastifyRequest, id: string, done: string): string {
    const ref = req.headers.referer;
    if (ref) {
      try {
        const u = new URL(ref);
        if (u.host === req.headers.host && u.pathname === `${BASE}/reviews`) return safeNext(u.pathname + u.search);
      } catch {
        // not a URL: fall through
      }
    }
    return `${BASE}/reviews/${encodeURIComponent(id)}?done=${done}`;
  }

  async function decide(req: FastifyRequest<{ Params: { id: string }; Body: Record<string, string | undefined> }>, reply: FastifyReply, approve: boolean) {
    const id = req.params.id;
    const current = await approvals.get(id);
    if (!current) return notFound(req, reply, id);
    const reason = req.body?.reason?.trim() || null;
    if (!approve && !reason) return reviewPage(req, reply, 400, current, { whyNot: 'Say why you deny it: the reason is what the requester is told.' });
    if (reason && reason.length > 2000) return reviewPage(req, reply, 400, current, { whyNot: 'The reason is longer than 2000 characters.' });
    const user = userOf(req);
    const r = await approvals.decide(id, { ...deciderOf(user, current), approve, reason });
    if (!r.ok) return reviewPage(req, reply, DECISION_REFUSAL_STATUS[r.code], r.request ?? current, { whyNot: r.message });
    const done = !approve ? 'denied' : r.request.state === 'approved' ? 'approved' : 'counted';
    return reply.redirect(back(req, id, done), 303);
  }

  const decideSchema = {
    schema: {
      params: approvalIdParams,
      body: {
        type: 'object',
        properties: { _csrf: { type: 'string' }, reason: { type: 'string', maxLength: 4000 } },
      },
    },
  };
  app.post<{ Params: { id: string }; Body: Record<string, string | undefined> }>('/reviews/:id/approve', decideSchema, (req, reply) =>
    decide(req, reply, true),
  );
  app.post<{ Params: { id: string }; Body: Record<string, string | undefined> }>('/reviews/:id/deny', decideSchema, (req, reply) => decide(req, reply, false));
};
