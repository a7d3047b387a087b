// Blast radius on an approval request: the session's engine estimates what a held statement would touch
// (broker/engines/*/estimate.ts) while the request is made and posted at once; the estimate is added when it
// comes — within ESTIMATE_BUDGET_MS, after which it is given up — and the request is written and published
// again, so the Slack message is updated with it. An estimate never holds up the request or the statement.
import type { BlastRadius } from '../store/types.js';

/** How long an estimate may take; later, the request stays without one. */
export const ESTIMATE_BUDGET_MS = 2000;

/** The estimate, or null once `ms` passed or it failed. */
export function withinBudget(estimate: Promise<BlastRadius | null>, ms = ESTIMATE_BUDGET_MS): Promise<BlastRadius | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
    timer.unref();
  });
  return Promise.race([estimate.catch(() => null), late]).finally(() => clearTimeout(timer));
}

/** What addEstimate needs of Approvals. */
export interface EstimateTarget {
  setEstimate(id: string, estimate: BlastRadius): Promise<boolean>;
}

/** Adds request `id`'s estimate when it comes within its budget (a request that ended meanwhile keeps none). */
export function addEstimate(
  approvals: EstimateTarget,
  id: string,
  estimate: Promise<BlastRadius | null>,
  log?: (msg: string, fields?: Record<string, unknown>) => void,
): void {
  void withinBudget(estimate).then(async (e) => {
    if (!e) return;
    try {
      await approvals.setEstimate(id, e);
    } catch (err) {
      log?.('approval estimate could not be recorded', { approval: id, error: String(err) });
    }
  });
}
