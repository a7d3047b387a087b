// The Slack bot's approval messages: what is posted on `requested`, how it is updated, the requester's
// DM, and what happens when Slack is rate-limited, failing or unreachable.
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { types } from '@slack/bolt';
import type { Approvals } from '../../broker/approvals/index.js';
import type { Store } from '../../broker/store/index.js';
import { createSlackBot, type ApprovalsPort, type StorePort } from '../../bot/index.js';
import { ciRun } from '../../bot/format.js';
import { CHANNEL, startHarness, type Harness } from '../support/bot-harness.js';

type Block = types.KnownBlock & { block_id?: string };
type AnyRecord = Record<string, unknown>;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const blocksOf = (args: AnyRecord) => args['blocks'] as Block[];
const block = (blocks: Block[], id: string) => blocks.find((b) => b.block_id === id) as AnyRecord | undefined;
const fieldsText = (b: AnyRecord | undefined) => ((b?.['fields'] as { text: string }[]) ?? []).map((f) => f.text).join('\n');
const text = (b: AnyRecord | undefined) => (b?.['text'] as { text: string } | undefined)?.text ?? '';

describe('ports', () => {
  it('the real Approvals class and Store plug into the bot (checked by tsc)', () => {
    expectTypeOf<Approvals>().toExtend<ApprovalsPort>();
    expectTypeOf<Store>().toExtend<StorePort>();
  });
});

describe('approval message', () => {
  it('posts the request to the channel: statement in a code block, kinds, rule, who, build link, buttons', async () => {
    h = await startHarness();
    const req = h.approvals.request();
    const post = await h.slack.waitFor('chat.postMessage');
    expect(post.token).toBe('xoxb-test');
    expect(post.args['channel']).toBe(CHANNEL);
    expect(post.args['text']).toContain('write, destructive');
    const blocks = blocksOf(post.args);

    expect(text(block(blocks, 'title'))).toContain('Review requested: write, destructive on prod');
    const what = fieldsText(block(blocks, 'what'));
    expect(what).toContain('`prod`');
    expect(what).toContain('write, destructive');
    expect(what).toContain('`prod-destructive-review`');
    expect(what).toMatch(/\*Expires\*\n<!date\^\d+\^\{date_short_pretty\} at \{time\}\|\d{4}-\d\d-\d\dT[\d:]+Z>/);
    const statement = text(block(blocks, 'statement'));
    expect(statement.startsWith('```\n')).toBe(true);
    expect(statement.endsWith('\n```')).toBe(true);
    expect(statement).toContain("DELETE FROM orders WHERE created_at &lt; now() - interval '90 days'");
    expect(block(blocks, 'statement_note')).toBeUndefined();

    const who = fieldsText(block(blocks, 'who'));
    expect(who).toContain('`repo:acme/shop:ref:refs/heads/main`');
    expect(who).toContain('`acme/shop/123/2`');
    expect(who).toContain('<https://github.com/acme/shop/actions/runs/123/attempts/2|acme/shop · deploy · run 123 (attempt 2)>');
    expect(who).toContain('`agent-b` ← `bot-a` ← `repo:acme/shop:ref:refs/heads/main`');

    const actions = block(blocks, 'decide') as { elements: AnyRecord[] };
    const [approve, deny] = actions.elements;
    expect(approve).toMatchObject({ type: 'button', action_id: 'jit_approve', style: 'primary', value: req.id });
    expect(approve?.['confirm']).toMatchObject({ title: { text: 'Approve this statement?' }, confirm: { text: 'Approve' }, deny: { text: 'Cancel' } });
    expect(deny).toMatchObject({ type: 'button', action_id: 'jit_deny', style: 'danger', value: req.id });

    await expect.poll(() => h!.approvals.messages).toEqual([{ id: req.id, ref: { channel: CHANNEL, ts: post.result?.['ts'] } }]);
  });

  it('truncates a long statement and says how long it is', async () => {
    h = await startHarness();
    const sql = `INSERT INTO t VALUES ${Array.from({ length: 2000 }, (_, i) => `(${i}, '<x>')`).join(', ')}`;
    h.approvals.request({ sql });
    const blocks = blocksOf((await h.slack.waitFor('chat.postMessage')).args);
    const statement = text(block(blocks, 'statement'));
    expect(statement.length).toBeLessThanOrEqual(3000);
    expect(statement).toContain('\n…\n```');
    const note = JSON.stringify(block(blocks, 'statement_note'));
    expect(note).toMatch(/Statement truncated: showing the first [\d,]+ characters of /);
    expect(note).toContain(sql.length.toLocaleString('en-US'));
    expect(note).toContain('/jit session s_0123456789abcdef');
  });

  it('links GitLab pipelines only when the claims name the host', () => {
    expect(ciRun({ project_path: 'grp/app', pipeline_id: 42, ci_server_url: 'https://gitlab.example.com/' })).toEqual({
      label: 'grp/app · pipeline 42',
      url: 'https://gitlab.example.com/grp/app/-/pipelines/42',
    });
    expect(ciRun({ project_path: 'grp/app', pipeline_id: '42' })).toEqual({ label: 'grp/app · pipeline 42', url: null });
    expect(ciRun({ repository: 'acme/shop', run_id: '9' })?.url).toBe('https://github.com/acme/shop/actions/runs/9');
    expect(ciRun({ repository: 'acme/shop"><script>', run_id: '9' })).toBeNull();
    expect(ciRun({ project_path: 'grp/app', pipeline_id: '1', ci_server_url: 'javascript:alert(1)' })?.url).toBeNull();
    expect(ciRun({})).toBeNull();
  });

  it('updates the message when the request ends elsewhere, and DMs the requester', async () => {
    h = await startHarness();
    const req = h.approvals.request();
    const post = await h.slack.waitFor('chat.postMessage');
    h.approvals.end(req.id, 'expired');
    const update = await h.slack.waitFor('chat.update');
    expect(update.args).toMatchObject({ channel: CHANNEL, ts: post.result?.['ts'] });
    const blocks = blocksOf(update.args);
    expect(block(blocks, 'decide')).toBeUndefined();
    expect(text(block(blocks, 'outcome'))).toContain('*Expired*');
    expect(text(block(blocks, 'outcome'))).toContain('nobody decided within 300 s');
    await h.slack.waitFor('users.lookupByEmail', (c) => c.args['email'] === 'dev@acme.test');
    await h.slack.waitFor('conversations.open', (c) => c.args['users'] === 'U05DEV');
    const dm = await h.slack.waitFor('chat.postMessage', (c) => c.args['channel'] === 'D05DEV');
    expect(dm.args['text']).toBe('Your write, destructive statement on prod was expired.');
  });

  it('sends no DM when the requester has no Slack account', async () => {
    h = await startHarness();
    const req = h.approvals.request({ claims: { email: 'stranger@elsewhere.test' } });
    await h.slack.waitFor('chat.postMessage');
    h.approvals.end(req.id, 'cancelled', 'the client disconnected');
    const update = await h.slack.waitFor('chat.update');
    expect(text(block(blocksOf(update.args), 'outcome'))).toContain('*Reason:* the client disconnected');
    await h.slack.waitFor('users.lookupByEmail');
    await h.bot.stop();
    expect(h.slack.callsTo('conversations.open')).toEqual([]);
    expect(h.slack.callsTo('chat.postMessage')).toHaveLength(1);
  });
});

describe('Slack errors', () => {
  it('retries a rate-limited postMessage (429 + Retry-After) and then posts', async () => {
    h = await startHarness();
    h.slack.fail('chat.postMessage', 'ratelimited', 1, 1);
    const started = Date.now();
    const req = h.approvals.request();
    const post = await h.slack.waitFor('chat.postMessage', () => true, 8000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // Retry-After: 1 was honoured
    expect(h.slack.callsTo('chat.postMessage', true).map((c) => c.answered)).toEqual(['ratelimited', 'ok']);
    await expect.poll(() => h!.approvals.messages.map((m) => m.ref.ts)).toEqual([post.result?.['ts']]);
    expect(h.approvals.get(req.id)?.state).toBe('pending');
  });

  it('retries 5xx answers with backoff', async () => {
    h = await startHarness();
    h.slack.fail('chat.postMessage', 500, 2);
    h.approvals.request();
    await h.slack.waitFor('chat.postMessage');
    expect(h.slack.callsTo('chat.postMessage', true).map((c) => c.answered)).toEqual(['http500', 'http500', 'ok']);
  });

  it('never decides when the message cannot be posted: the request stays pending for its timeout', async () => {
    h = await startHarness({ retries: 2 });
    h.slack.fail('chat.postMessage', 500, 1000);
    const req = h.approvals.request();
    await expect.poll(() => h!.logs.some((l) => l.level === 'error' && /could not post/.test(l.msg ?? ''))).toBe(true);
    expect(h.slack.callsTo('chat.postMessage', true)).toHaveLength(3);
    expect(h.approvals.decisions).toEqual([]);
    expect(h.approvals.messages).toEqual([]);
    expect(h.approvals.get(req.id)?.state).toBe('pending');
    // The core's timeout then refuses it; the bot has no message to update and only tells the requester.
    h.approvals.end(req.id, 'expired');
    await h.slack.waitFor('conversations.open');
    expect(h.slack.callsTo('chat.update', true)).toEqual([]);
  });

  it('posts pending requests nobody posted yet when it starts (catch-up after a restart)', async () => {
    h = await startHarness();
    await h.bot.stop();
    h.approvals.request({ id: 'apr_missed' });
    await h.bot.start();
    const post = await h.slack.waitFor('chat.postMessage');
    expect(JSON.stringify(post.args['blocks'])).toContain('apr_missed');
  });

  it('builds a Socket Mode app when an app token is set (and mounts no route)', async () => {
    const routes: string[] = [];
    const bot = createSlackBot({
      config: { botToken: 'xoxb-x', signingSecret: 's', appToken: 'xapp-1-x', channel: 'C1', apiUrl: 'http://127.0.0.1:9/api/' },
      approvals: {
        decide: async () => ({ ok: false, code: 'not_found', message: '' }),
        get: () => null,
        pending: () => [],
        setMessage: () => {},
        on: () => {},
      },
      store: { listSessions: async () => [], getSession: async () => null, listStatements: async () => [] },
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const fake = { register: () => routes.push('register') } as unknown as Parameters<typeof bot.mount>[0];
    await bot.mount(fake);
    expect(routes).toEqual([]);
    await bot.stop();
  });
});
