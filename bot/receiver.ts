// A Bolt receiver mounted in the broker's fastify: POST /slack/events takes events, interactions and
// slash commands. Every request's signature is checked first (v0 HMAC-SHA256 of `v0:{ts}:{raw body}`
// with the signing secret, Bolt's own verifySlackRequest) and timestamps more than 5 minutes off are
// refused, so the route parses its body as a raw string in its own encapsulated context.
import { verifySlackRequest, type App, type Receiver, type ReceiverEvent } from '@slack/bolt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BotLog } from './ports.js';

export interface FastifyReceiverOptions {
  signingSecret: string;
  log: BotLog;
  path?: string;
  /** Clock for the timestamp check (tests). */
  now?: () => number;
}

const MAX_SKEW_SECONDS = 5 * 60;
const NOT_ACKED = Symbol('not acked');

/** The parsed body: JSON events, `payload=` interactions, or a form-encoded slash command. */
export function parseSlackBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(raw);
    const payload = form.get('payload');
    if (payload !== null) return JSON.parse(payload) as Record<string, unknown>;
    return Object.fromEntries(form);
  }
  const body: unknown = JSON.parse(raw);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not a JSON object');
  return body as Record<string, unknown>;
}

export class FastifyReceiver implements Receiver {
  private app: App | undefined;
  private readonly path: string;
  private readonly now: () => number;

  constructor(private readonly opts: FastifyReceiverOptions) {
    this.path = opts.path ?? '/slack/events';
    this.now = opts.now ?? Date.now;
  }

  init(app: App): void {
    this.app = app;
  }

  // The broker's fastify listens; the receiver has nothing of its own to start or stop.
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** Adds POST {path} to `fastify` (before it listens). Other routes keep their own body parsers. */
  async mount(fastify: FastifyInstance): Promise<void> {
    await fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
      scope.post(this.path, (req, reply) => this.handle(req, reply));
    });
  }

  /** Whether the headers prove Slack sent exactly this body, recently. */
  verify(raw: string, headers: FastifyRequest['headers']): { ok: true } | { ok: false; why: string } {
    const signature = headers['x-slack-signature'];
    const timestamp = headers['x-slack-request-timestamp'];
    if (typeof signature !== 'string' || typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp)) {
      return { ok: false, why: 'missing or malformed X-Slack-Signature / X-Slack-Request-Timestamp' };
    }
    const ts = Number(timestamp);
    const nowMs = this.now();
    // Bolt refuses only old timestamps; a timestamp from the future is refused here too.
    if (Math.abs(nowMs / 1000 - ts) > MAX_SKEW_SECONDS) return { ok: false, why: 'request timestamp more than 5 minutes off' };
    try {
      verifySlackRequest({
        signingSecret: this.opts.signingSecret,
        body: raw,
        headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': ts },
        nowMilliseconds: nowMs,
      });
      return { ok: true };
    } catch (e) {
      return { ok: false, why: (e as Error).message };
    }
  }

  private async handle(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const raw = typeof req.body === 'string' ? req.body : '';
    const verdict = this.verify(raw, req.headers);
    if (!verdict.ok) {
      this.opts.log.warn({ why: verdict.why, ip: req.ip }, 'slack: refused a request with a bad signature');
      return reply.code(401).send({ error: 'invalid signature' });
    }
    let body: Record<string, unknown>;
    try {
      body = parseSlackBody(raw, req.headers['content-type']);
    } catch {
      return reply.code(400).send({ error: 'unreadable body' });
    }
    if (body['ssl_check']) return reply.code(200).send();
    if (body['type'] === 'url_verification') return reply.send({ challenge: body['challenge'] });
    const app = this.app;
    if (!app) return reply.code(503).send({ error: 'the Slack app is not ready' });

    let acked = false;
    let resolveAck: (value: unknown) => void = () => {};
    const ackPromise = new Promise<unknown>((resolve) => (resolveAck = resolve));
    const event: ReceiverEvent = {
      body,
      ack: async (response?: unknown) => {
        if (acked) return;
        acked = true;
        resolveAck(response);
      },
      retryNum: numberHeader(req.headers['x-slack-retry-num']),
      retryReason: typeof req.headers['x-slack-retry-reason'] === 'string' ? req.headers['x-slack-retry-reason'] : undefined,
    };
    // Listeners ack first and keep working after the HTTP answer has gone; their errors are logged.
    const processing = app.processEvent(event).then(
      (): typeof NOT_ACKED => NOT_ACKED,
      (e: unknown) => {
        this.opts.log.error({ err: e }, 'slack: a listener failed');
        return e instanceof Error ? e : new Error(String(e));
      },
    );
    const first = await Promise.race([ackPromise.then((r) => ({ response: r })), processing]);
    if (first === NOT_ACKED) {
      // Events nobody listens to are fine (a 404 would make Slack retry them, then disable delivery).
      if (body['type'] === 'event_callback') return reply.code(200).send();
      this.opts.log.warn({ type: body['type'] }, 'slack: no listener acknowledged the request');
      return reply.code(404).send({ error: 'no listener for this request' });
    }
    if (first instanceof Error) return reply.code(500).send({ error: 'listener error' });
    const response = first.response;
    if (response === undefined || response === '') return reply.code(200).send();
    if (typeof response === 'string') return reply.code(200).type('text/plain').send(response);
    return reply.code(200).send(response);
  }
}

function numberHeader(v: string | string[] | undefined): number | undefined {
  const n = typeof v === 'string' ? Number.parseInt(v, 10) : Number.NaN;
  return Number.isNaN(n) ? undefined : n;
}
