// Approval events → Slack: post the request to the channel, update that message as approvals come in
// and when it ends, and tell the requester by direct message. One queue per request keeps the
// update behind its own post. A Slack failure is logged and nothing else happens: the bot never
// decides; an unposted request simply times out into a refusal.
import type { webApi } from '@slack/bolt';
import { requesterEmails } from '../broker/approvals/approvers.js';
import type { ApprovalEvent, ApprovalRequest } from '../broker/approvals/types.js';
import { approvalBlocks, outcomeDm, requestText } from './messages.js';
import type { Directory } from './people.js';
import type { ApprovalsPort, BotLog, MessageRef } from './ports.js';

export class Notifier {
  private readonly refs = new Map<string, MessageRef>();
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly client: webApi.WebClient,
    private readonly approvals: ApprovalsPort,
    private readonly directory: Directory,
    private readonly channel: string,
    private readonly log: BotLog,
    /** `ui.public_url`: messages link to the request's page in the web console. */
    private readonly consoleUrl?: string,
  ) {}

  /** The approvals listener: returns at once, the Slack work runs in the request's queue. */
  readonly onEvent = (event: ApprovalEvent): void => {
    const req = event.request;
    this.enqueue(req.id, () => (event.type === 'requested' ? this.post(req) : this.update(req)));
  };

  /** After a restart: post the pending requests no bot has posted yet. */
  async catchUp(): Promise<void> {
    for (const req of await this.approvals.pending()) {
      if (!req.message && !this.refs.has(req.id)) this.enqueue(req.id, () => this.post(req));
    }
  }

  /** Resolves once the work queued so far has finished (or `ms` passed). */
  async idle(ms = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([Promise.allSettled([...this.queues.values()]), timeout]);
    clearTimeout(timer);
  }

  private enqueue(id: string, work: () => Promise<void>): void {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(work).catch((e: unknown) => this.log.error({ err: e, request: id }, 'slack: unexpected error'));
    this.queues.set(id, next);
    void next.then(() => {
      if (this.queues.get(id) === next) this.queues.delete(id);
    });
  }

  private async post(req: ApprovalRequest): Promise<void> {
    let ref: MessageRef;
    try {
      // The WebClient retries rate limits (Retry-After), 5xx and network errors with backoff.
      const res = await this.client.chat.postMessage({
        channel: this.channel,
        text: requestText(req),
        blocks: approvalBlocks(req, this.consoleUrl),
        unfurl_links: false,
        unfurl_media: false,
      });
      if (!res.ts) throw new Error('chat.postMessage returned no ts');
      ref = { channel: res.channel ?? this.channel, ts: res.ts };
    } catch (e) {
      this.log.error(
        { err: e, request: req.id, channel: this.channel },
        'slack: could not post the approval request; it stays pending until someone decides it elsewhere or it times out',
      );
      return;
    }
    this.refs.set(req.id, ref);
    this.log.info({ request: req.id, channel: ref.channel, ts: ref.ts }, 'slack: approval request posted');
    try {
      await this.approvals.setMessage(req.id, ref);
    } catch (e) {
      this.log.warn({ err: e, request: req.id }, 'slack: could not record where the request was posted');
    }
  }

  private async update(req: ApprovalRequest): Promise<void> {
    const ended = req.state !== 'pending';
    // While pending, only a partial approval (min_approvals > 1) or the blast radius' estimate changes what the message shows.
    if (!ended && req.approvals.length === 0 && !req.estimate) return;
    const ref = this.refs.get(req.id) ?? req.message;
    if (ref) {
      try {
        await this.client.chat.update({ channel: ref.channel, ts: ref.ts, text: requestText(req), blocks: approvalBlocks(req, this.consoleUrl) });
      } catch (e) {
        this.log.error({ err: e, request: req.id }, 'slack: could not update the approval message');
      }
    }
    if (ended) {
      this.refs.delete(req.id);
      await this.tellRequester(req);
    }
  }

  private async tellRequester(req: ApprovalRequest): Promise<void> {
    for (const email of requesterEmails(req)) {
      try {
        const user = await this.directory.userIdForEmail(email);
        if (!user) continue;
        const dm = await this.client.conversations.open({ users: user });
        const channel = dm.channel?.id;
        if (!channel) throw new Error('conversations.open returned no channel');
        await this.client.chat.postMessage({ channel, ...outcomeDm(req), unfurl_links: false });
        return;
      } catch (e) {
        this.log.warn({ err: e, request: req.id }, 'slack: could not send the requester a direct message');
        return;
      }
    }
  }
}
