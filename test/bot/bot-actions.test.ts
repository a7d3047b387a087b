// Clicks on the approval message and the Deny modal, signed as Slack signs them; refusals; signatures.
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createSlackBot } from '../../bot/index.js';
import { blockAction, interactionBody, viewSubmission } from '../support/fake-slack.js';
import { CHANNEL, SECRET, startHarness, type Harness } from '../support/bot-harness.js';

type AnyRecord = Record<string, unknown>;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function click(user: string, actionId: 'jit_approve' | 'jit_deny', id = 'apr_1', triggerId?: string) {
  return h!.send(interactionBody(blockAction({ user, actionId, value: id, responseUrl: h!.slack.responseUrl('click'), triggerId })));
}

function submitReason(user: string, reason: string | null, meta: object = { id: 'apr_1', channel: CHANNEL }) {
  const payload = viewSubmission({
    user,
    callbackId: 'jit_deny_reason',
    privateMetadata: JSON.stringify(meta),
    values: { reason: { reason: { type: 'plain_text_input', value: reason } } },
  });
  return h!.send(interactionBody(payload));
}

async function posted(): Promise<void> {
  await h!.slack.waitFor('chat.postMessage');
}

const ephemeralTo = (user: string) => h!.slack.waitFor('chat.postEphemeral', (c) => c.args['user'] === user);
const blockIds = (args: AnyRecord) => (args['blocks'] as { block_id?: string }[]).map((b) => b.block_id);

describe('Approve', () => {
  it('passes the clicker to approvals.decide and updates the message without buttons', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    const res = await click('U01ALICE', 'jit_approve');
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    await expect
      .poll(() => h!.approvals.decisions)
      .toEqual([{ id: 'apr_1', input: { approve: true, by: 'U01ALICE', email: 'alice@acme.test', reason: null } }]);
    const update = await h.slack.waitFor('chat.update');
    expect(blockIds(update.args)).not.toContain('decide');
    const outcome = JSON.stringify(update.args['blocks']);
    expect(outcome).toContain('*Approved* by <@U01ALICE> <!date^');
    expect(update.args['text']).toContain('Review requested');
    const dm = await h.slack.waitFor('chat.postMessage', (c) => c.args['channel'] === 'D05DEV');
    expect(dm.args['text']).toBe('Your write, destructive statement on prod was approved.');
    expect(h.slack.callsTo('chat.postEphemeral')).toEqual([]);
  });

  it('lets a member of an approver user group decide (groups resolved once, then cached)', async () => {
    h = await startHarness();
    h.approvals.request({ settings: { approvers: ['@dba-oncall'], timeoutSeconds: 300, minApprovals: 2, scope: 'statement' } });
    await posted();
    await click('U02BOB', 'jit_approve');
    const partial = await h.slack.waitFor('chat.update');
    expect(blockIds(partial.args)).toContain('decide'); // still pending: buttons stay
    expect(JSON.stringify(partial.args['blocks'])).toContain('*Approvals:* 1 of 2 — <@U02BOB>');
    await click('U03CAROL', 'jit_approve');
    const final = await h.slack.waitFor('chat.update', (c) => !blockIds(c.args).includes('decide'));
    expect(JSON.stringify(final.args['blocks'])).toContain('*Approved* by <@U02BOB>, <@U03CAROL>');
    expect(h.approvals.decisions.map((d) => d.input)).toEqual([
      { approve: true, by: 'U02BOB', email: 'bob@acme.test', reason: null, groups: ['@dba-oncall'] },
      { approve: true, by: 'U03CAROL', email: 'carol@acme.test', reason: null, groups: ['@dba-oncall'] },
    ]);
    expect(h.slack.callsTo('usergroups.list')).toHaveLength(1);
    expect(h.slack.callsTo('usergroups.users.list')).toHaveLength(1);
    expect(h.slack.callsTo('usergroups.users.list')[0]?.args['usergroup']).toBe('S01DBA00');
  });

  it('reads a group written with spaces around it as the approvals core does: its member decides', async () => {
    // The bot used to trim an entry to find groups and the core did not: the bot verified Bob in " @dba-oncall",
    // the core read " @dba-oncall" as one person, and Bob's approval was refused after Slack had let him click.
    h = await startHarness();
    h.approvals.request({ settings: { approvers: [' @dba-oncall', ' S01DBA00 '], timeoutSeconds: 300, minApprovals: 1, scope: 'statement' } });
    await posted();
    await click('U02BOB', 'jit_approve');
    const final = await h.slack.waitFor('chat.update', (c) => !blockIds(c.args).includes('decide'));
    expect(JSON.stringify(final.args['blocks'])).toContain('*Approved* by <@U02BOB>');
    expect(h.approvals.decisions.map((d) => d.input)).toEqual([
      { approve: true, by: 'U02BOB', email: 'bob@acme.test', reason: null, groups: ['@dba-oncall', 'S01DBA00'] },
    ]);
    expect(h.slack.callsTo('chat.postEphemeral')).toEqual([]);
  });

  it('refuses the same approver twice when two approvals are needed', async () => {
    h = await startHarness();
    h.approvals.request({ settings: { approvers: [], timeoutSeconds: 300, minApprovals: 2, scope: 'statement' } });
    await posted();
    await click('U04EVE', 'jit_approve');
    await expect.poll(() => h!.approvals.decisions.length).toBe(1);
    await click('U04EVE', 'jit_approve');
    expect((await ephemeralTo('U04EVE')).args['text']).toContain('You already approved');
    expect(h.approvals.decisions).toHaveLength(1);
  });
});

describe('refusals', () => {
  it('refuses a non-approver ephemerally and decides nothing', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    expect((await click('U04EVE', 'jit_approve')).statusCode).toBe(200);
    const eph = await ephemeralTo('U04EVE');
    expect(eph.args['channel']).toBe(CHANNEL);
    expect(eph.args['text']).toContain('You are not an approver for this request (approvers: <@U01ALICE>, dev@acme.test, @dba-oncall)');
    await click('U04EVE', 'jit_deny');
    await expect.poll(() => h!.slack.callsTo('chat.postEphemeral').length).toBe(2);
    expect(h.approvals.decisions).toEqual([]);
    expect(h.slack.callsTo('views.open')).toEqual([]);
    expect(h.slack.callsTo('chat.update')).toEqual([]);
  });

  it("refuses the requester's own request, even when they are listed as an approver", async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    await click('U05DEV', 'jit_approve');
    expect((await ephemeralTo('U05DEV')).args['text']).toContain('This is your own request');
    expect(h.slack.callsTo('users.info').map((c) => c.args['user'])).toEqual(['U05DEV']);
    expect(h.approvals.decisions).toEqual([]);
  });

  it('says so when the request has already ended', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    await click('U01ALICE', 'jit_approve');
    await h.slack.waitFor('chat.update');
    await click('U02BOB', 'jit_deny');
    expect((await ephemeralTo('U02BOB')).args['text']).toMatch(/already ended \(approved by <@U01ALICE> <!date\^/);
    await click('U02BOB', 'jit_approve', 'apr_gone');
    await expect.poll(() => h!.slack.callsTo('chat.postEphemeral').map((c) => c.args['text'])).toContain('This request no longer exists, so nothing changed.');
    expect(h.approvals.decisions).toHaveLength(1);
  });

  it("reports approvals.decide's refusal to the clicker", async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    h.approvals.decide = async (id) => ({ ok: false, code: 'not_approver', message: `the policy for ${id} changed` });
    await click('U01ALICE', 'jit_approve');
    expect((await ephemeralTo('U01ALICE')).args['text']).toBe('Nothing changed: the policy for apr_1 changed');
  });

  it('tells the clicker when the decision could not be recorded', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    h.approvals.decide = async () => {
      throw new Error('store unavailable');
    };
    await click('U01ALICE', 'jit_approve');
    expect((await ephemeralTo('U01ALICE')).args['text']).toBe('Your decision could not be recorded, so it did not count: store unavailable. Try again.');
    expect(h.slack.callsTo('chat.update')).toEqual([]);
  });
});

describe('Deny', () => {
  it('opens a modal asking for a reason; the submission denies with it', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    await click('U01ALICE', 'jit_deny', 'apr_1', '9999.trigger');
    const open = await h.slack.waitFor('views.open');
    expect(open.args['trigger_id']).toBe('9999.trigger');
    const view = open.args['view'] as AnyRecord;
    expect(view).toMatchObject({ type: 'modal', callback_id: 'jit_deny_reason', submit: { text: 'Deny' } });
    expect(JSON.parse(view['private_metadata'] as string)).toEqual({ id: 'apr_1', channel: CHANNEL });
    expect(JSON.stringify(view['blocks'])).toContain('"type":"plain_text_input","action_id":"reason"');
    expect(h.approvals.decisions).toEqual([]);

    const res = await submitReason('U01ALICE', '  not during the sale  ');
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    await expect
      .poll(() => h!.approvals.decisions)
      .toEqual([{ id: 'apr_1', input: { approve: false, by: 'U01ALICE', email: 'alice@acme.test', reason: 'not during the sale' } }]);
    const update = await h.slack.waitFor('chat.update');
    const text = JSON.stringify(update.args['blocks']);
    expect(text).toContain('*Denied* by <@U01ALICE>');
    expect(text).toContain('*Reason:* not during the sale');
    expect(blockIds(update.args)).not.toContain('decide');
    const dm = await h.slack.waitFor('chat.postMessage', (c) => c.args['channel'] === 'D05DEV');
    expect(JSON.stringify(dm.args['blocks'])).toContain('not during the sale');
  });

  it('lets the requester deny (withdraw) their own request, as the CLI and the HTTP API do, but never approve it', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    await click('U05DEV', 'jit_deny', 'apr_1', '7777.trigger');
    expect((await h.slack.waitFor('views.open')).args['trigger_id']).toBe('7777.trigger');
    await submitReason('U05DEV', 'wrong table, my mistake');
    await expect
      .poll(() => h!.approvals.decisions)
      .toEqual([{ id: 'apr_1', input: { approve: false, by: 'U05DEV', email: 'dev@acme.test', reason: 'wrong table, my mistake' } }]);
  });

  it('keeps the modal open with an error when the reason is blank', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    const res = await submitReason('U01ALICE', '   ');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ response_action: 'errors', errors: { reason: 'Say why, for the requester and the audit record.' } });
    expect(h.approvals.decisions).toEqual([]);
  });

  it('checks the submitter again (a non-approver cannot deny through a forged modal)', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    await submitReason('U04EVE', 'because');
    expect((await ephemeralTo('U04EVE')).args['text']).toContain('not an approver');
    expect(h.approvals.decisions).toEqual([]);
  });
});

describe('signatures', () => {
  const body = () => interactionBody(blockAction({ user: 'U01ALICE', actionId: 'jit_approve', value: 'apr_1', responseUrl: 'http://127.0.0.1:9/' }));

  it('refuses a forged signature with 401 and decides nothing', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    const res = await h.send(body(), { secret: 'not-the-secret' });
    expect(res.statusCode).toBe(401);
    const tampered = await h.send(body(), { headers: { 'x-slack-signature': `v0=${'0'.repeat(64)}` } });
    expect(tampered.statusCode).toBe(401);
    const unsigned = await h.http.inject({
      method: 'POST',
      url: '/slack/events',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: body(),
    });
    expect(unsigned.statusCode).toBe(401);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.approvals.decisions).toEqual([]);
    expect(h.slack.calls.map((c) => c.method)).toEqual(['chat.postMessage']);
  });

  it('refuses a stale timestamp (and one from the future) with 401', async () => {
    h = await startHarness();
    h.approvals.request();
    await posted();
    const now = Math.floor(Date.now() / 1000);
    expect((await h.send(body(), { timestamp: now - 6 * 60 })).statusCode).toBe(401);
    expect((await h.send(body(), { timestamp: now + 6 * 60 })).statusCode).toBe(401);
    expect((await h.send(body(), { timestamp: now - 4 * 60 })).statusCode).toBe(200);
    await expect.poll(() => h!.approvals.decisions.length).toBe(1);
  });

  it('answers url_verification with the challenge (signed too)', async () => {
    h = await startHarness();
    const challenge = JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' });
    const res = await h.send(challenge, { headers: { 'content-type': 'application/json' } });
    expect(res.json()).toEqual({ challenge: 'c-123' });
    expect((await h.send(challenge, { secret: 'x', headers: { 'content-type': 'application/json' } })).statusCode).toBe(401);
    expect(SECRET).toBe('test-signing-secret');
  });

  it('answers events nobody listens to with 200, and unknown interactions with 404', async () => {
    h = await startHarness();
    const event = JSON.stringify({
      type: 'event_callback',
      team_id: 'T0001',
      api_app_id: 'A0001',
      event: { type: 'app_mention', user: 'U04EVE', text: 'hi', channel: 'C02OPS', ts: '1.2' },
      event_id: 'Ev1',
      event_time: 1,
    });
    expect((await h.send(event, { headers: { 'content-type': 'application/json' } })).statusCode).toBe(200);
    const other = interactionBody(blockAction({ user: 'U01ALICE', actionId: 'something_else', value: 'x', responseUrl: h.slack.responseUrl() }));
    expect((await h.send(other)).statusCode).toBe(404);
    expect(h.approvals.decisions).toEqual([]);
  });

  it("keeps the raw-body parser to its own route: the broker's other routes still parse JSON", async () => {
    const http = Fastify();
    http.post('/echo', async (req) => ({ got: req.body }));
    const bot = createSlackBot({
      config: { botToken: 'xoxb-x', signingSecret: SECRET, channel: 'C1', apiUrl: 'http://127.0.0.1:9/api/' },
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
    await bot.mount(http);
    const res = await http.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
    expect(res.json()).toEqual({ got: { a: 1 } });
    await http.close();
  });
});
