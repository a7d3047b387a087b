// A local stand-in for Slack: a node:http server on 127.0.0.1 that plays the Web API methods the bot
// uses (recording every call, form or JSON, with `blocks`/`view` parsed from their JSON strings),
// can answer `ratelimited` (429 + Retry-After) or 500 a number of times, and receives response_url
// posts. Plus helpers that sign requests to the app exactly as Slack signs them.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  /** Bearer token of the call (or the `token` form field). */
  token: string | null;
  /** What the fake answered. */
  answered: 'ok' | 'ratelimited' | 'http500';
  /** The fake's answer (for `ok` calls). */
  result?: Record<string, unknown>;
}

export interface FakeUser {
  id: string;
  email?: string;
  name?: string;
}

export interface FakeGroup {
  id: string;
  handle: string;
  users: string[];
}

const JSON_FIELDS = new Set(['blocks', 'view', 'attachments', 'metadata']);

export class FakeSlack {
  /** Every Web API call, failed attempts included, in arrival order. */
  readonly calls: SlackCall[] = [];
  /** Bodies posted to response URLs, by URL name. */
  readonly responses: { name: string; body: Record<string, unknown> }[] = [];
  users: FakeUser[] = [];
  groups: FakeGroup[] = [];
  private readonly failures = new Map<string, { kind: 'ratelimited' | 500; times: number; retryAfter: number }>();
  private seq = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<FakeSlack> {
    let fake: FakeSlack | undefined;
    const server = createServer((req, res) => {
      void readBody(req).then((raw) => {
        const { status, headers, body } = fake!.answer(req, raw);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake = new FakeSlack(server, (server.address() as AddressInfo).port);
    return fake;
  }

  /** Base URL for the WebClient's `slackApiUrl`. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  /** A response_url whose posts land in `responses` under `name`. */
  responseUrl(name = 'r1'): string {
    return `http://127.0.0.1:${this.port}/respond/${name}`;
  }

  /** Answer the next `times` calls of `method` with a rate limit (429 + Retry-After) or an HTTP 500. */
  fail(method: string, kind: 'ratelimited' | 500, times = 1, retryAfter = 1): void {
    this.failures.set(method, { kind, times, retryAfter });
  }

  /** Successful calls of a method (`all` includes failed attempts). */
  callsTo(method: string, all = false): SlackCall[] {
    return this.calls.filter((c) => c.method === method && (all || c.answered === 'ok'));
  }

  /** Waits until a successful call of `method` matching `pred` has arrived. */
  async waitFor(method: string, pred: (c: SlackCall) => boolean = () => true, timeoutMs = 5000): Promise<SlackCall> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.callsTo(method).find(pred);
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`no ${method} call within ${timeoutMs} ms; calls: ${this.calls.map((c) => c.method).join(', ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitForResponse(name: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.responses.find((r) => r.name === name);
      if (hit) return hit.body;
      if (Date.now() > until) throw new Error(`nothing posted to response_url ${name} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, raw: string): { status: number; headers?: Record<string, string>; body: unknown } {
    const url = new URL(req.url ?? '/', 'http://fake');
    const args = parseArgs(raw, req.headers['content-type']);
    if (url.pathname.startsWith('/respond/')) {
      this.responses.push({ name: url.pathname.slice('/respond/'.length), body: args });
      return { status: 200, body: { ok: true } };
    }
    const method = url.pathname.replace(/^\/api\//, '');
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof args['token'] === 'string' ? args['token'] : null;
    const failure = this.failures.get(method);
    if (failure && failure.times > 0) {
      failure.times -= 1;
      const ratelimited = failure.kind === 'ratelimited';
      this.calls.push({ method, args, token, answered: ratelimited ? 'ratelimited' : 'http500' });
      return ratelimited
        ? { status: 429, headers: { 'retry-after': String(failure.retryAfter) }, body: { ok: false, error: 'ratelimited' } }
        : { status: 500, body: { ok: false, error: 'internal_error' } };
    }
    const result = this.play(method, args);
    this.calls.push({ method, args, token, answered: 'ok', result });
    return { status: 200, body: result };
  }

  private play(method: string, a: Record<string, unknown>): Record<string, unknown> {
    const n = ++this.seq;
    const user = (id: unknown) => this.users.find((u) => u.id === id);
    const slackUser = (u: FakeUser) => ({ id: u.id, name: u.name ?? u.id.toLowerCase(), profile: { email: u.email } });
    switch (method) {
      case 'auth.test':
        return { ok: true, user_id: 'UBOT', bot_id: 'BBOT', team_id: 'T0001', team: 'Test', url: 'https://test.slack.com/' };
      case 'chat.postMessage': {
        const ts = `${1_700_000_000 + n}.${String(n).padStart(6, '0')}`;
        return { ok: true, channel: a['channel'], ts, message: { ts, text: a['text'], blocks: a['blocks'] } };
      }
      case 'chat.update':
        return { ok: true, channel: a['channel'], ts: a['ts'], text: a['text'] };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${1_700_000_000 + n}.000000` };
      case 'views.open':
        return { ok: true, view: { id: `V${n}`, ...(a['view'] as object) } };
      case 'users.info': {
        const u = user(a['user']);
        return u ? { ok: true, user: slackUser(u) } : { ok: false, error: 'user_not_found' };
      }
      case 'users.lookupByEmail': {
        const email = String(a['email']).toLowerCase();
        const u = this.users.find((x) => x.email?.toLowerCase() === email);
        return u ? { ok: true, user: slackUser(u) } : { ok: false, error: 'users_not_found' };
      }
      case 'conversations.open':
        return { ok: true, channel: { id: `D${String(a['users']).replace(/^U/, '')}` } };
      case 'usergroups.list':
        return { ok: true, usergroups: this.groups.map((g) => ({ id: g.id, handle: g.handle, name: g.handle })) };
      case 'usergroups.users.list': {
        const g = this.groups.find((x) => x.id === a['usergroup']);
        return g ? { ok: true, users: g.users } : { ok: false, error: 'no_such_subteam' };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseArgs(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType?.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    out[k] = JSON_FIELDS.has(k) ? JSON.parse(v) : v;
  }
  return out;
}

// ---- requests from Slack to the app -------------------------------------------------------------

/** `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`, as Slack computes X-Slack-Signature. */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export function signedHeaders(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': slackSignature(secret, timestamp, body),
  };
}

/** Interactions arrive form-encoded as one `payload` field holding JSON. */
export function interactionBody(payload: object): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export function blockAction(o: { user: string; actionId: string; value: string; channel?: string; responseUrl: string; triggerId?: string }): object {
  return {
    type: 'block_actions',
    team: { id: 'T0001', domain: 'test' },
    user: { id: o.user, username: o.user.toLowerCase(), name: o.user.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'legacy-verification-token',
    container: { type: 'message', message_ts: '1700000001.000001', channel_id: o.channel ?? 'C01APPROVALS', is_ephemeral: false },
    trigger_id: o.triggerId ?? '1111.2222.trigger',
    channel: { id: o.channel ?? 'C01APPROVALS', name: 'approvals' },
    message: { type: 'message', ts: '1700000001.000001', text: 'Review requested' },
    response_url: o.responseUrl,
    actions: [
      { type: 'button', action_id: o.actionId, block_id: 'decide', value: o.value, text: { type: 'plain_text', text: 'x' }, action_ts: '1700000002.000000' },
    ],
  };
}

export function viewSubmission(o: {
  user: string;
  callbackId: string;
  privateMetadata: string;
  values: Record<string, Record<string, { type: string; value: string | null }>>;
}): object {
  return {
    type: 'view_submission',
    team: { id: 'T0001', domain: 'test' },
    user: { id: o.user, username: o.user.toLowerCase(), name: o.user.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'legacy-verification-token',
    trigger_id: '3333.4444.trigger',
    view: {
      id: 'V0001',
      team_id: 'T0001',
      type: 'modal',
      callback_id: o.callbackId,
      private_metadata: o.privateMetadata,
      state: { values: o.values },
      hash: 'h',
      title: { type: 'plain_text', text: 'Deny statement' },
      blocks: [],
      app_id: 'A0001',
      bot_id: 'BBOT',
    },
    response_urls: [],
  };
}

/** Slash commands arrive as plain form fields. */
export function commandBody(o: { user: string; text: string; responseUrl: string; command?: string }): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T0001',
    team_domain: 'test',
    channel_id: 'C02OPS',
    channel_name: 'ops',
    user_id: o.user,
    user_name: o.user.toLowerCase(),
    command: o.command ?? '/jit',
    text: o.text,
    api_app_id: 'A0001',
    response_url: o.responseUrl,
    trigger_id: '5555.6666.trigger',
  }).toString();
}
