// identity.single_use: a token's jti opens one session; a second login with it is refused (28P01,
// "token already used"), whatever the client. Exchanging a token does not use it up.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournaledStore } from '../../broker/audit/journal/index.js';
import type { SqliteStore } from '../../broker/store/sqlite.js';
import { psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(undefined, { identity: 'single_use: true' });
});
afterAll(async () => t?.stop());

const jtiOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

describe('identity.single_use', () => {
  it('a token opens one session; the second login with its jti is refused (node-postgres, psql)', async () => {
    const token = await t.token({ build: 'single/1' });
    const c = new pg.Client(t.pgConfig(token));
    await c.connect();
    await c.query('SELECT 1');
    await expect(new pg.Client(t.pgConfig(token)).connect()).rejects.toMatchObject({
      code: '28P01',
      message: expect.stringMatching(/^token refused: token already used \(jti [0-9a-f-]{36}\): identity\.single_use allows one session per token/),
    });
    await c.end();
    const again = await run('psql', ['-X', '-c', 'SELECT 1'], psqlEnv(t, token));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('token already used');
    // The use is linked to the session it opened.
    const [session] = await t.broker.store.listSessions({ build: 'single/1' });
    const row = ((t.broker.store as JournaledStore).inner as SqliteStore).client
      .prepare('SELECT session_id, issuer FROM token_uses WHERE jti = ?')
      .get(jtiOf(token));
    expect(row).toEqual({ session_id: session!.id, issuer: t.broker.issuer!.issuer });
    expect(await t.broker.store.listSessions({ build: 'single/1' })).toHaveLength(1);
  });

  it('exchanging a token does not use it up; each child is single-use too', async () => {
    const parent = await t.token({ build: 'single/2' });
    const children: string[] = [];
    for (const actor of ['a', 'b']) {
      const res = await fetch(`${t.httpUrl}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: parent,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          actor,
        }),
      });
      children.push(((await res.json()) as { access_token: string }).access_token);
    }
    for (const token of [parent, ...children]) {
      const c = new pg.Client(t.pgConfig(token));
      await c.connect();
      await c.end();
      await expect(new pg.Client(t.pgConfig(token)).connect()).rejects.toMatchObject({ code: '28P01', message: expect.stringMatching(/token already used/) });
    }
  });
});
