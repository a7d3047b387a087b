// MySQL through the broker, decided in Slack: a held DROP TABLE approved by a signed click, another denied
// with a reason (fake Slack Web API, requests signed as Slack signs them, the real MariaDB).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_APPROVE, ACTION_DENY, REASON_INPUT, VIEW_DENY } from '../../../bot/messages.js';
import { blockAction, FakeSlack, interactionBody, signedHeaders, viewSubmission } from '../../support/fake-slack.js';
import { directMy, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const SECRET = 'mysql-slack-secret';
const APPROVER = 'U0MYAPPROVER';
let slack: FakeSlack;
let t: MysqlTestBroker;

beforeAll(async () => {
  slack = await FakeSlack.start();
  slack.users = [{ id: APPROVER, email: 'dba@example.com' }];
  t = await startMysqlBroker(`
slack: { bot_token: xoxb-my, signing_secret: ${SECRET}, channel: C0MY, api_url: "${slack.apiUrl}" }
admin_token: mysql-slack-admin-0123456789
rules:
  - { id: prod-destructive, kinds: [destructive], action: review, approvers: [${APPROVER}], timeout: 30s }
  - { id: day-to-day, kinds: [read, write, ddl], action: allow }
default: deny
`);
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_mys_a, jit_mys_b; CREATE TABLE jit_mys_a (id INT); CREATE TABLE jit_mys_b (id INT);'));
});
afterAll(async () => {
  await t?.stop();
  await slack?.close();
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_mys_a, jit_mys_b'));
});

const exists = async (table: string) => (await rowsOf(`SHOW TABLES LIKE '${table}'`)).length > 0;
const post = (body: string) => fetch(`${t.httpUrl}/slack/events`, { method: 'POST', headers: signedHeaders(SECRET, body), body });

async function heldRequestId(table: string): Promise<string> {
  await slack.waitFor('chat.postMessage', (m) => JSON.stringify(m.args['blocks'] ?? '').includes(table));
  return (await t.broker.approvals.list({ state: 'pending' })).find((r) => r.sql.includes(table))!.id;
}

describe('MySQL statements held for Slack approval', () => {
  it('a DROP TABLE from mysql2 waits, and runs once approved by a signed click', async () => {
    const c = await t.connect(await t.token({ build: 'build-mys-a' }));
    const dropping = c.query('DROP TABLE jit_mys_a').then(
      () => 'ran',
      (e: Error) => e.message,
    );
    const id = await heldRequestId('jit_mys_a');
    expect(await exists('jit_mys_a')).toBe(true);
    const click = interactionBody(blockAction({ user: APPROVER, actionId: ACTION_APPROVE, value: id, responseUrl: slack.responseUrl('mya') }));
    expect((await post(click)).status).toBe(200);
    expect(await dropping).toBe('ran');
    expect(await exists('jit_mys_a')).toBe(false);
    await c.end();
  });

  it('the mariadb CLI gets the approver’s reason when the DROP is denied; the table stays', async () => {
    const cli = t.cli(await t.token({ build: 'build-mys-b' }), ['app', '-e', 'DROP TABLE jit_mys_b']);
    const id = await heldRequestId('jit_mys_b');
    const deny = interactionBody(blockAction({ user: APPROVER, actionId: ACTION_DENY, value: id, responseUrl: slack.responseUrl('myb') }));
    expect((await post(deny)).status).toBe(200);
    const modal = await slack.waitFor('views.open', (v) => JSON.stringify(v.args).includes(id));
    const submit = interactionBody(
      viewSubmission({
        user: APPROVER,
        callbackId: VIEW_DENY,
        privateMetadata: (modal.args['view'] as { private_metadata: string }).private_metadata,
        values: { [REASON_INPUT]: { [REASON_INPUT]: { type: 'plain_text_input', value: 'use the migration pipeline' } } },
      }),
    );
    expect((await post(submit)).status).toBe(200);
    const r = await cli;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('use the migration pipeline');
    expect(await exists('jit_mys_b')).toBe(true);
  });
});
