// End to end: a real broker with the Slack bot mounted, a fake Slack Web API, psql and node-postgres on
// the real PostgreSQL. A DROP TABLE is held, posted to Slack, and released or refused by signed clicks.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_APPROVE, ACTION_DENY, REASON_INPUT, VIEW_DENY } from '../../bot/messages.js';
import { direct, eventually, startTestBroker, type TestBroker } from '../support/broker.js';
import { blockAction, commandBody, FakeSlack, interactionBody, signedHeaders, viewSubmission } from '../support/fake-slack.js';

const SECRET = 'e2e-signing-secret';
const APPROVER = 'U0APPROVER';
const OUTSIDER = 'U0OUTSIDER';
let slack: FakeSlack;
let t: TestBroker;

beforeAll(async () => {
  slack = await FakeSlack.start();
  slack.users = [
    { id: APPROVER, email: 'dba@example.com' },
    { id: OUTSIDER, email: 'someone@example.com' },
  ];
  t = await startTestBroker(`
slack: { bot_token: xoxb-e2e, signing_secret: ${SECRET}, channel: C0APPROVALS, api_url: "${slack.apiUrl}" }
admin_token: e2e-admin-token-0123456789
rules:
  - { id: prod-destructive, kinds: [destructive], action: review, approvers: [${APPROVER}], timeout: 3s }
  - { id: day-to-day, kinds: [read, write, ddl], action: allow }
default: deny
`);
});
afterAll(async () => {
  await t?.stop();
  await slack?.close();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_e2e_a, jit_e2e_b, jit_e2e_c'));
});

async function post(body: string, headers = signedHeaders(SECRET, body)): Promise<Response> {
  return fetch(`${t.httpUrl}/slack/events`, { method: 'POST', headers, body });
}

const exists = (table: string) => direct(async (c) => (await c.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null);

/** Open a session, create a table, and send its DROP, which policy holds for review. */
async function holdDrop(table: string, build: string) {
  await direct((c) => c.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int)`));
  const c = new pg.Client(t.pgConfig(await t.token({ build })));
  await c.connect();
  const result = c.query(`DROP TABLE ${table}`).then(
    () => ({ ok: true as const }),
    (e: { code: string; message: string }) => ({ ok: false as const, code: e.code, message: e.message }),
  );
  const message = await slack.waitFor('chat.postMessage', (m) => JSON.stringify(m.args['blocks'] ?? '').includes(table));
  const id = (await t.broker.approvals.list({ state: 'pending' })).find((r) => r.sql.includes(table))!.id;
  return { c, result, message, id };
}

describe('a held DROP TABLE, decided in Slack', () => {
  it('is posted with the statement, kinds, rule and buttons; a signed Approve click runs it', async () => {
    const { c, result, message, id } = await holdDrop('jit_e2e_a', 'build-e2e-approve');
    const blocks = JSON.stringify(message.args['blocks']);
    expect(blocks).toContain('DROP TABLE jit_e2e_a');
    expect(blocks).toContain('destructive');
    expect(blocks).toContain('prod-destructive');
    expect(blocks).toContain(ACTION_APPROVE);
    expect(await exists('jit_e2e_a')).toBe(true); // held, not run

    const click = interactionBody(blockAction({ user: APPROVER, actionId: ACTION_APPROVE, value: id, responseUrl: slack.responseUrl('a') }));
    expect((await post(click)).status).toBe(200);
    expect(await result).toEqual({ ok: true });
    expect(await exists('jit_e2e_a')).toBe(false);
    // The update for the decision (an earlier one may have added the blast radius' estimate).
    const update = await slack.waitFor('chat.update', (u) => JSON.stringify(u.args).includes('jit_e2e_a') && JSON.stringify(u.args).includes('Approved'));
    expect(JSON.stringify(update.args['blocks'])).not.toContain(ACTION_APPROVE); // no buttons any more
    await c.end();
  });

  it('a Deny with a reason refuses it with 42501 and the reason; the table stays', async () => {
    const { c, result, id } = await holdDrop('jit_e2e_b', 'build-e2e-deny');
    const click = interactionBody(blockAction({ user: APPROVER, actionId: ACTION_DENY, value: id, responseUrl: slack.responseUrl('b') }));
    expect((await post(click)).status).toBe(200);
    const modal = await slack.waitFor('views.open');
    const view = modal.args['view'] as { private_metadata: string };
    const submit = interactionBody(
      viewSubmission({
        user: APPROVER,
        callbackId: VIEW_DENY,
        privateMetadata: view.private_metadata,
        values: { [REASON_INPUT]: { [REASON_INPUT]: { type: 'plain_text_input', value: 'not during the freeze' } } },
      }),
    );
    expect((await post(submit)).status).toBe(200);
    const r = await result;
    expect(r).toMatchObject({ ok: false, code: '42501' });
    expect(r.ok ? '' : r.message).toContain('not during the freeze');
    expect(await exists('jit_e2e_b')).toBe(true);
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]); // the session goes on
    await c.end();
  });

  it('a forged signature gets 401 and releases nothing; a non-approver is refused ephemerally; a timeout refuses', async () => {
    const { c, result, id } = await holdDrop('jit_e2e_c', 'build-e2e-timeout');
    const click = interactionBody(blockAction({ user: APPROVER, actionId: ACTION_APPROVE, value: id, responseUrl: slack.responseUrl('c') }));
    const forged = await post(click, signedHeaders('not-the-secret', click));
    expect(forged.status).toBe(401);
    const outsider = interactionBody(blockAction({ user: OUTSIDER, actionId: ACTION_APPROVE, value: id, responseUrl: slack.responseUrl('d') }));
    expect((await post(outsider)).status).toBe(200);
    await slack.waitFor('chat.postEphemeral', (e) => e.args['user'] === OUTSIDER);
    const r = await result; // nobody decided: the 3 s timeout refuses it
    expect(r).toMatchObject({ ok: false, code: '42501' });
    expect(r.ok ? '' : r.message).toMatch(/no decision within 3s/);
    expect(await exists('jit_e2e_c')).toBe(true);
    await eventually(async () =>
      slack.callsTo('chat.update').some((u) => JSON.stringify(u.args).includes('jit_e2e_c') && /expired/i.test(JSON.stringify(u.args))),
    );
    await c.end();
  });

  it('/jit revoke: a non-revoker is refused; an approver revokes the build and its live session ends', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-e2e-revoke' })));
    await c.connect();
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    const denied = commandBody({ user: OUTSIDER, text: 'revoke build-e2e-revoke leaked token', responseUrl: slack.responseUrl('rv1') });
    expect((await post(denied)).status).toBe(200);
    expect(JSON.stringify(await slack.waitForResponse('rv1'))).toContain('not allowed to revoke');
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);

    const body = commandBody({ user: APPROVER, text: 'revoke build-e2e-revoke leaked token', responseUrl: slack.responseUrl('rv2') });
    expect((await post(body)).status).toBe(200);
    expect(JSON.stringify(await slack.waitForResponse('rv2'))).toMatch(/Revoked build .*build-e2e-revoke.*1 open session ended/);
    expect((await ended).message).toContain('leaked token');
    const [s] = await t.broker.store.listSessions({ build: 'build-e2e-revoke' });
    expect(s!.endReason).toContain('leaked token');
    const again = new pg.Client(t.pgConfig(await t.token({ build: 'build-e2e-revoke' })));
    await expect(again.connect()).rejects.toMatchObject({ code: '28P01', message: expect.stringMatching(/revoked/) });
  });

  it('/jit sessions build-… answers from the store with the right counts', async () => {
    const body = commandBody({ user: APPROVER, text: 'sessions build-e2e-deny', responseUrl: slack.responseUrl('cmd') });
    expect((await post(body)).status).toBe(200);
    const reply = JSON.stringify(await slack.waitForResponse('cmd'));
    const [s] = await t.broker.store.listSessions({ build: 'build-e2e-deny' });
    expect(reply).toContain(s!.id);
    expect(s).toMatchObject({ statementCount: 2, reviewed: 1, allowed: 1 });
    expect(reply).toMatch(/2 statements|statements[^0-9]*2/);
  });
});
