// Button clicks and the Deny modal: ack() first, then check the clicker and pass the decision to
// approvals.decide. Refusals go back to the clicker alone (ephemeral); nothing changes for anyone else.
// The channel message itself is updated from the `updated` event (notify.ts), not from here.
import type { App, BlockButtonAction, webApi } from '@slack/bolt';
import type { ApprovalRequest, DecisionInput, DecisionResult } from '../broker/approvals/types.js';
import { esc, slackDate, who } from './format.js';
import { ACTION_APPROVE, ACTION_DENY, REASON_INPUT, VIEW_DENY, denyModal } from './messages.js';
import type { Directory } from './people.js';
import type { ApprovalsPort, BotLog } from './ports.js';

export interface ActionDeps {
  client: webApi.WebClient;
  approvals: ApprovalsPort;
  directory: Directory;
  log: BotLog;
}

/** Says `text` to one user only: in the channel they clicked in, else in a DM with the bot. */
async function tell(d: ActionDeps, user: string, channel: string | null, text: string): Promise<void> {
  try {
    await d.client.chat.postEphemeral({ channel: channel ?? user, user, text });
  } catch (e) {
    d.log.warn({ err: e, user }, 'slack: could not send an ephemeral reply');
  }
}

function endedText(req: ApprovalRequest): string {
  const by = req.decidedBy ? ` by ${who(req.decidedBy)}` : '';
  const at = req.decidedAt ? ` ${slackDate(req.decidedAt)}` : '';
  return `This request has already ended (${req.state}${by}${at}), so nothing changed.`;
}

function resultText(r: Extract<DecisionResult, { ok: false }>): string {
  return `Nothing changed: ${esc(r.message)}`;
}

/** The request behind a click, if it can still be decided by `user`; tells them why not otherwise. */
async function decidable(
  d: ActionDeps,
  id: string,
  user: string,
  channel: string | null,
  approve: boolean,
): Promise<{ req: ApprovalRequest; email: string | null; groups: string[] } | null> {
  const req = await d.approvals.get(id);
  if (!req) {
    await tell(d, user, channel, 'This request no longer exists, so nothing changed.');
    return null;
  }
  if (req.state !== 'pending') {
    await tell(d, user, channel, endedText(req));
    return null;
  }
  if (approve && req.approvals.some((a) => a.by === user)) {
    await tell(d, user, channel, 'You already approved this request; it needs another approver. Nothing changed.');
    return null;
  }
  const check = await d.directory.check(req, user, approve);
  if (!check.ok) {
    d.log.info({ request: id, user, code: check.code }, 'slack: click refused');
    await tell(d, user, channel, check.message);
    return null;
  }
  return { req, email: check.email, groups: check.groups };
}

type Clicker = { user: string; email: string | null; groups: string[]; channel: string | null };

async function decide(d: ActionDeps, id: string, approve: boolean, reason: string | null, c: Clicker): Promise<void> {
  const { user, channel } = c;
  const input: DecisionInput = { approve, by: user, email: c.email, reason };
  // Only the groups the bot verified membership of: the core cannot see Slack groups.
  if (c.groups.length) input.groups = c.groups;
  let result: DecisionResult;
  try {
    result = await d.approvals.decide(id, input);
  } catch (e) {
    // E.g. the store could not record it: the decision did not count.
    d.log.error({ err: e, request: id, user }, 'slack: approvals.decide failed');
    await tell(d, user, channel, `Your decision could not be recorded, so it did not count: ${esc((e as Error).message)}. Try again.`);
    return;
  }
  d.log.info({ request: id, user, approve, ok: result.ok, code: result.ok ? undefined : result.code }, 'slack: decision');
  if (!result.ok) await tell(d, user, channel, result.code === 'ended' && result.request ? endedText(result.request) : resultText(result));
}

export function registerActions(app: App, d: ActionDeps): void {
  app.action<BlockButtonAction>(ACTION_APPROVE, async ({ ack, body, action }) => {
    await ack();
    const user = body.user.id;
    const channel = body.channel?.id ?? null;
    const ok = await decidable(d, action.value ?? '', user, channel, true);
    if (ok) await decide(d, ok.req.id, true, null, { user, channel, email: ok.email, groups: ok.groups });
  });

  app.action<BlockButtonAction>(ACTION_DENY, async ({ ack, body, action }) => {
    await ack();
    const user = body.user.id;
    const channel = body.channel?.id ?? null;
    const ok = await decidable(d, action.value ?? '', user, channel, false);
    if (!ok) return;
    try {
      await d.client.views.open({ trigger_id: body.trigger_id, view: denyModal(ok.req, channel) });
    } catch (e) {
      d.log.warn({ err: e, request: ok.req.id }, 'slack: could not open the Deny dialog');
      await tell(d, user, channel, 'Slack could not open the Deny dialog (it allows 3 seconds after the click); please click Deny again.');
    }
  });

  app.view(VIEW_DENY, async ({ ack, body, view }) => {
    const reason = view.state.values[REASON_INPUT]?.[REASON_INPUT]?.value?.trim() ?? '';
    if (reason === '') {
      await ack({ response_action: 'errors', errors: { [REASON_INPUT]: 'Say why, for the requester and the audit record.' } });
      return;
    }
    await ack();
    let meta: { id?: unknown; channel?: unknown };
    try {
      meta = JSON.parse(view.private_metadata) as { id?: unknown; channel?: unknown };
    } catch {
      meta = {};
    }
    const user = body.user.id;
    const channel = typeof meta.channel === 'string' ? meta.channel : null;
    const ok = await decidable(d, typeof meta.id === 'string' ? meta.id : '', user, channel, false);
    if (ok) await decide(d, ok.req.id, false, reason, { user, channel, email: ok.email, groups: ok.groups });
  });
}
