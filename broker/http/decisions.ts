// What the HTTP listener answers when Approvals refuses a decision, and the id of a request in a URL: the same for
// the admin API (/api/approvals) and the console (/ui/reviews).
import type { DecisionResult } from '../approvals/types.js';

/** HTTP status of each refusal of Approvals.decide. */
export const DECISION_REFUSAL_STATUS: Record<Exclude<DecisionResult, { ok: true }>['code'], number> = {
  not_found: 404,
  ended: 409,
  already_approved: 409,
  not_approver: 403,
  own_request: 403,
};

/** `:id` of an approval request in a route. */
export const approvalIdParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
