// Two (then three) brokers as separate processes on one PostgreSQL store: a statement held on A is
// released by a decision made on B (its HTTP API, `jit approve` pointed at B, a Slack click delivered to
// B); two deciders at once decide once; a revocation on B ends A's session; `jit sessions` on B lists A's
// sessions; a replica killed with a held statement has its request cancelled and its sessions closed by
// a survivor once its lease runs out.
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import { direct, eventually } from '../support/broker.js';
import { blockAction, FakeSlack, interactionBody, signedHeaders } from '../support/fake-slack.js';
import { clientOf, SIGNING_SECRET, startFleet, type Fleet, type Replica } from '../support/fleet.js';

let fleet: Fleet;
let slack: FakeSlack;
let a: Replica;
let b: Replica;

const RULES = `rules:
  - { id: rw, kinds: [read, write, ddl], action: allow }
  - { id: drops, kinds: [destructive], action: review, approvers: [U01ALICE, U02BOB], timeout: 2m }
default: deny`;

beforeAll(async () => {
  slack = await FakeSlack.start();
  slack.users = [
    { id: 'U01ALICE', email: 'alice@example.com' },
    { id: 'U02BOB', email: 'bob@example.com' },
  ];
  fleet = await startFleet({ rules: RULES, slackUrl: slack.apiUrl, lease: '2s' });
  a = await fleet.start('a');
  b = await fleet.start('b');
  await direct((c) =>
    c.query(
      'DROP TABLE IF EXISTS jit_fleet_1, jit_fleet_2, jit_fleet_3, jit_fleet_4; CREATE TABLE jit_fleet_1 (id int); CREATE TABLE jit_fleet_2 (id int); CREATE TABLE jit_fleet_3 (id int); CREATE TABLE jit_fleet_4 (id int)',
    ),
  );
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await slack?.close();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_fleet_1, jit_fleet_2, jit_fleet_3, jit_fleet_4'));
});

const tableExists = (t: string) => direct(async (c) => (await c.query('SELECT to_regclass($1) AS t', [t])).rows[0].t !== null);

/** Starts a DROP on `on` and returns its pending request (as another replica lists it) and the query's promise. */
async function hold(on: Replica, table: string, build: string, seenFrom: Replica) {
  const c = await clientOf(on, await fleet.token(build));
  const result = c.query(`DROP TABLE ${table}`).then(
    () => 'ran' as const,
    (e: Error) => e.message,
  );
  const request = await eventually(async () => {
    const r = await seenFrom.api('GET', '/api/approvals?state=pending');
    return (r.json as { approvals: ApprovalRequest[] }).approvals.find((x) => x.sql === `DROP TABLE ${table}`) ?? null;
  }, 10_000);
  return { c, result, request };
}

describe('a fleet of brokers on one PostgreSQL store', () => {
  it('a statement held on A is released by `jit approve` pointed at B', async () => {
    const { c, result, request } = await hold(a, 'jit_fleet_1', 'fleet/1', b);
    const out = await b.jit('approve', request.id, '--by', 'carol', '--url', b.httpUrl);
    expect(out.code, out.stderr).toBe(0);
    expect(await result).toBe('ran');
    expect(await tableExists('jit_fleet_1')).toBe(false);
    // Both replicas show it decided once, by carol.
    for (const r of [a, b]) expect((await r.api('GET', `/api/approvals/${request.id}`)).json).toMatchObject({ state: 'approved', decidedBy: 'cli:carol' });
    await c.end();
  });

  it('a Slack click delivered to B releases the statement held on A, and B updates the message A posted', async () => {
    const { c, result, request } = await hold(a, 'jit_fleet_2', 'fleet/2', b);
    // A (the holder) posted the request.
    await eventually(async () => slack.calls.some((x) => x.method === 'chat.postMessage' && JSON.stringify(x.args).includes(request.id)));
    const body = interactionBody(blockAction({ user: 'U01ALICE', actionId: 'jit_approve', value: request.id, responseUrl: slack.responseUrl('fleet') }));
    const res = await fetch(`${b.httpUrl}/slack/events`, { method: 'POST', headers: signedHeaders(SIGNING_SECRET, body), body });
    expect(res.status).toBe(200);
    expect(await result).toBe('ran');
    expect(await tableExists('jit_fleet_2')).toBe(false);
    await eventually(async () => slack.calls.some((x) => x.method === 'chat.update' && JSON.stringify(x.args).includes('U01ALICE')));
    await c.end();
  });

  it('an approval on A and a denial on B at the same moment: one decision, the client sees that one', async () => {
    const { c, result, request } = await hold(a, 'jit_fleet_3', 'fleet/3', b);
    const [onA, onB] = await Promise.all([
      a.api('POST', `/api/approvals/${request.id}/approve`, { by: 'dave' }),
      b.api('POST', `/api/approvals/${request.id}/deny`, { by: 'erin', reason: 'not now' }),
    ]);
    const okA = onA.status === 200;
    const okB = onB.status === 200;
    expect(okA !== okB).toBe(true); // exactly one counted
    const outcome = await result;
    const stored = (await b.api('GET', `/api/approvals/${request.id}`)).json as ApprovalRequest;
    if (okA) {
      expect(outcome).toBe('ran');
      expect(stored).toMatchObject({ state: 'approved', decidedBy: 'api:dave' });
    } else {
      expect(outcome).toMatch(/denied by api:erin/);
      expect(stored).toMatchObject({ state: 'denied', decidedBy: 'api:erin' });
    }
    expect(await tableExists('jit_fleet_3')).toBe(!okA);
    await c.end();
  });

  it('`jit revoke --build` on B ends the build`s session on A; `jit sessions` on B lists it, from replica a', async () => {
    const c = await clientOf(a, await fleet.token('fleet/revoke'));
    const ended = new Promise<string>((done) => c.once('error', (e) => done(e.message)));
    await c.query('SELECT 1');
    const listed = await b.jit('sessions', '--build', 'fleet/revoke', '--json');
    expect(JSON.parse(listed.stdout)).toMatchObject([{ build: 'fleet/revoke', replicaId: 'a', endedAt: null }]);
    const out = await b.jit('revoke', '--build', 'fleet/revoke', '--reason', 'leaked', '--url', b.httpUrl);
    expect(out.code, out.stderr).toBe(0);
    expect(await ended).toMatch(/revoked/);
    const after = await eventually(async () => {
      const s = JSON.parse((await b.jit('sessions', '--build', 'fleet/revoke', '--json')).stdout) as { endReason: string | null }[];
      return s[0]?.endReason ? s : null;
    });
    expect(after[0]!.endReason).toMatch(/revoked/);
  });

  it('MySQL through B (the second target): the session is listed from A, as replica b`s', async () => {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: b.mysqlPort,
      user: 'ci',
      password: await fleet.token('fleet/mysql'),
      database: 'shop',
      ssl: { rejectUnauthorized: false },
    });
    const [rows] = await c.query('SELECT 41 + 1 AS answer');
    expect(rows).toEqual([{ answer: 42 }]);
    await c.end();
    const listed = await eventually(async () => {
      const s = JSON.parse((await a.jit('sessions', '--build', 'fleet/mysql', '--json')).stdout) as {
        target: string;
        replicaId: string;
        statementCount: number;
        endedAt: string | null;
      }[];
      return s[0]?.endedAt ? s : null;
    });
    expect(listed).toMatchObject([{ target: 'shop', replicaId: 'b', statementCount: 1 }]);
  });

  it('a replica killed with a held statement: a survivor cancels its request after the lease and closes its sessions', async () => {
    const c3 = await fleet.start('c');
    const { request } = await hold(c3, 'jit_fleet_4', 'fleet/4', b);
    // Once c has posted the request to Slack and recorded where (the survivor updates that message).
    await eventually(async () => ((await b.api('GET', `/api/approvals/${request.id}`)).json as ApprovalRequest).message !== null);
    c3.child.kill('SIGKILL');
    const cancelled = await eventually(async () => {
      const r = (await b.api('GET', `/api/approvals/${request.id}`)).json as ApprovalRequest;
      return r.state === 'cancelled' ? r : null;
    }, 15_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n--- b:\n${b.log()}`);
    });
    expect(cancelled.reason).toMatch(/replica c .*stopped/);
    expect(await tableExists('jit_fleet_4')).toBe(true);
    const sessions = JSON.parse((await b.jit('sessions', '--build', 'fleet/4', '--json')).stdout) as { endReason: string | null }[];
    expect(sessions[0]!.endReason).toMatch(/replica c .*stopped/);
    // Its Slack message was updated by the survivor.
    await eventually(async () => slack.calls.some((x) => x.method === 'chat.update' && JSON.stringify(x.args).includes('stopped')));
  });
});
