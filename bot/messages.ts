// Block Kit builders: the approval message (pending, partly approved, ended), the Deny modal and the
// requester's direct message. Pure functions of an ApprovalRequest.
import type { types } from '@slack/bolt';
import type { ApprovalRequest, ApprovalState } from '../broker/approvals/types.js';
import { actorChain, ciRun, clip, code, codeBlock, count, esc, link, slackDate, who } from './format.js';

type KnownBlock = types.KnownBlock;

export const ACTION_APPROVE = 'jit_approve';
export const ACTION_DENY = 'jit_deny';
export const VIEW_DENY = 'jit_deny_reason';
/** block_id / action_id of the reason input in the Deny modal. */
export const REASON_INPUT = 'reason';

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
const plain = (text: string) => ({ type: 'plain_text' as const, text, emoji: true });

function kindsText(req: ApprovalRequest): string {
  return req.kinds.length ? req.kinds.join(', ') : 'unknown';
}

/** Notification / fallback text (what a phone shows). */
export function requestText(req: ApprovalRequest): string {
  return esc(`Review requested: ${kindsText(req)} statement on ${req.target} by ${req.subject}`);
}

const OUTCOME: Record<Exclude<ApprovalState, 'pending'>, { icon: string; word: string }> = {
  approved: { icon: ':white_check_mark:', word: 'Approved' },
  denied: { icon: ':no_entry:', word: 'Denied' },
  expired: { icon: ':hourglass:', word: 'Expired' },
  cancelled: { icon: ':heavy_multiplication_x:', word: 'Cancelled' },
};

/** One line (plus the reason) saying how the request ended. */
export function outcomeText(req: ApprovalRequest): string {
  if (req.state === 'pending') return 'Waiting for a decision.';
  const { icon, word } = OUTCOME[req.state];
  const at = req.decidedAt ? ` ${slackDate(req.decidedAt)}` : '';
  let line: string;
  if (req.state === 'approved') {
    const by = req.approvals.length ? req.approvals.map((a) => who(a.by)) : req.decidedBy ? [who(req.decidedBy)] : [];
    line = `${icon} *${word}*${by.length ? ` by ${by.join(', ')}` : ''}${at}: the statement ran.`;
  } else if (req.state === 'denied') {
    line = `${icon} *${word}*${req.decidedBy ? ` by ${who(req.decidedBy)}` : ''}${at}: the statement was refused.`;
  } else if (req.state === 'expired') {
    line = `${icon} *${word}*${at}: nobody decided within ${req.settings.timeoutSeconds} s, so the statement was refused.`;
  } else {
    line = `${icon} *${word}*${req.decidedBy ? ` by ${who(req.decidedBy)}` : ''}${at}: the statement did not run.`;
  }
  return req.reason ? `${line}\n*Reason:* ${esc(clip(req.reason, 1000))}` : line;
}

/** The request's page in the web console (`ui.public_url` + /ui/reviews/<id>), when the broker has a public URL. */
export function consoleLink(req: ApprovalRequest, consoleUrl: string | undefined): string | null {
  return consoleUrl ? `${consoleUrl.replace(/\/+$/, '')}/ui/reviews/${encodeURIComponent(req.id)}` : null;
}

function whatAndWho(req: ApprovalRequest, consoleUrl?: string): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  const what = [
    mrkdwn(`*Target*\n${code(req.target, 100)}`),
    mrkdwn(`*Kinds*\n${esc(kindsText(req))}`),
    mrkdwn(`*Rule*\n${req.ruleId ? code(req.ruleId, 100) : '_default_'}${typeof req.policyVersion === 'number' ? ` · policy v${req.policyVersion}` : ''}`),
    mrkdwn(req.state === 'pending' ? `*Expires*\n${slackDate(req.expiresAt)}` : `*Requested*\n${slackDate(req.requestedAt)}`),
  ];
  blocks.push({ type: 'section', block_id: 'what', fields: what });
  // What it would touch, estimated without running it (added to the message when the estimate comes).
  if (req.estimate) {
    const how = req.estimate.source === 'explain' ? 'planner estimate' : 'table statistics';
    blocks.push({ type: 'section', block_id: 'estimate', text: mrkdwn(`*Blast radius:* ${esc(clip(req.estimate.text, 500))} (${how})`) });
  }
  const sql = codeBlock(req.sql);
  blocks.push({ type: 'section', block_id: 'statement', text: mrkdwn(sql.text) });
  if (sql.truncated) {
    blocks.push({
      type: 'context',
      block_id: 'statement_note',
      elements: [
        mrkdwn(
          `Statement truncated: showing the first ${count(sql.shown, 'character')} of ${req.sql.length.toLocaleString('en-US')}. ` +
            `Full text: \`/jit session ${esc(req.sessionId)}\``,
        ),
      ],
    });
  }
  const whoFields = [mrkdwn(`*Subject*\n${code(req.subject, 150)}`), mrkdwn(`*Build*\n${req.build ? code(req.build, 150) : '_none_'}`)];
  const run = ciRun(req.claims);
  if (run) whoFields.push(mrkdwn(`*Run*\n${link(clip(run.label, 200), run.url)}`));
  const chain = actorChain(req.subject, req.actors);
  if (chain) whoFields.push(mrkdwn(`*Actor chain* (current first)\n${chain}`));
  blocks.push({ type: 'section', block_id: 'who', fields: whoFields });
  blocks.push({
    type: 'context',
    block_id: 'ids',
    elements: [
      mrkdwn(
        `Request \`${esc(req.id)}\` · session \`${esc(req.sessionId)}\` · requested ${slackDate(req.requestedAt)}` +
          (consoleUrl ? ` · ${link('Open in the console', consoleLink(req, consoleUrl))}` : ''),
      ),
    ],
  });
  return blocks;
}

function buttons(req: ApprovalRequest): KnownBlock {
  const confirmText = `Run this ${esc(kindsText(req))} statement on *${esc(clip(req.target, 60))}* for ${code(req.subject, 80)}?`;
  return {
    type: 'actions',
    block_id: 'decide',
    elements: [
      {
        type: 'button',
        action_id: ACTION_APPROVE,
        text: plain('Approve'),
        style: 'primary',
        value: req.id,
        confirm: {
          title: plain('Approve this statement?'),
          text: mrkdwn(clip(confirmText, 300)),
          confirm: plain('Approve'),
          deny: plain('Cancel'),
        },
      },
      { type: 'button', action_id: ACTION_DENY, text: plain('Deny'), style: 'danger', value: req.id },
    ],
  };
}

/** The channel message: what, who, when it expires, and either the buttons or how it ended; a link to the console's page when `consoleUrl` is set. */
export function approvalBlocks(req: ApprovalRequest, consoleUrl?: string): KnownBlock[] {
  const ended = req.state !== 'pending';
  const title = ended
    ? `${OUTCOME[req.state as Exclude<ApprovalState, 'pending'>].word}: ${kindsText(req)} on ${req.target}`
    : `Review requested: ${kindsText(req)} on ${req.target}`;
  const blocks: KnownBlock[] = [{ type: 'header', block_id: 'title', text: plain(clip(title, 150)) }, ...whatAndWho(req, consoleUrl)];
  if (ended) {
    blocks.push({ type: 'section', block_id: 'outcome', text: mrkdwn(outcomeText(req)) });
    return blocks;
  }
  if (req.settings.minApprovals > 1) {
    const so = req.approvals.map((a) => `${who(a.by)} ${slackDate(a.at, '{time}')}`);
    const text = `*Approvals:* ${req.approvals.length} of ${req.settings.minApprovals}${so.length ? ` — ${so.join(', ')}` : ''}`;
    blocks.push({ type: 'section', block_id: 'approvals', text: mrkdwn(text) });
  }
  blocks.push(buttons(req));
  return blocks;
}

/** The modal Deny opens: asks for the reason the requester will see. */
export function denyModal(req: ApprovalRequest, channel: string | null): types.ModalView {
  const short = codeBlock(req.sql, 400).text;
  return {
    type: 'modal',
    callback_id: VIEW_DENY,
    private_metadata: JSON.stringify({ id: req.id, channel }),
    title: plain('Deny statement'),
    submit: plain('Deny'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'section',
        text: mrkdwn(`Deny this ${esc(kindsText(req))} statement on *${esc(req.target)}* for ${code(req.subject, 80)}?\n${short}`),
      },
      {
        type: 'input',
        block_id: REASON_INPUT,
        label: plain('Reason'),
        element: {
          type: 'plain_text_input',
          action_id: REASON_INPUT,
          multiline: true,
          min_length: 1,
          max_length: 500,
          placeholder: plain('Shown to the requester and kept in the audit record'),
        },
      },
    ],
  };
}

/** The requester's direct message once the request ended. */
export function outcomeDm(req: ApprovalRequest): { text: string; blocks: KnownBlock[] } {
  const word = req.state === 'pending' ? 'pending' : OUTCOME[req.state].word.toLowerCase();
  const text = esc(`Your ${kindsText(req)} statement on ${req.target} was ${word}.`);
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: mrkdwn(`Your ${esc(kindsText(req))} statement on *${esc(req.target)}* (session \`${esc(req.sessionId)}\`):\n${codeBlock(req.sql, 600).text}`),
      },
      { type: 'section', text: mrkdwn(outcomeText(req)) },
    ],
  };
}
