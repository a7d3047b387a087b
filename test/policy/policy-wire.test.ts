import pg from 'pg';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';
import { pipelineMessages } from '../support/pg-pipeline.js';

const RULES = `
rules:
  - id: no-admin
    kinds: [admin, privilege]
    action: deny
    message: "admin statements are not allowed through the broker"
  - { id: prod-destructive, targets: [app], kinds: [destructive, unknown], action: review }
  - { id: ci-main-writes, claims: { ref: refs/heads/main }, kinds: [write], action: allow }
  - { id: reads, kinds: [read], tables: ["*"], action: allow }
default: deny
`;

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_w; CREATE TABLE jit_w (id int); INSERT INTO jit_w VALUES (1), (2)'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_w'));
});

const count = () => direct(async (c) => (await c.query('SELECT count(*)::int AS n FROM jit_w')).rows[0].n as number);

describe('psql', () => {
  it('allows what a rule allows, and refuses the rest with 42501 naming the rule and its reason', async () => {
    const env = psqlEnv(t, await t.token({ build: 'build-wire-psql' }));
    const ok = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT count(*) FROM jit_w'], env);
    expect(ok.stdout.trim()).toBe('2');
    const denied = await run('psql', ['-X', '-v', 'VERBOSITY=verbose', '-c', "SELECT pg_read_file('/etc/passwd')"], env);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("ERROR:  42501: jit-broker: admin statements are not allowed through the broker (rule 'no-admin')");
    const review = await run('psql', ['-X', '-c', 'TRUNCATE jit_w'], env);
    expect(review.stderr).toMatch(/destructive statement needs approval under rule 'prod-destructive'/);
    const write = await run('psql', ['-X', '-c', 'INSERT INTO jit_w VALUES (3)'], env);
    expect(write.stderr).toMatch(/write statement is denied by the default policy/);
    expect(await count()).toBe(2);
  });

  it('a claim-scoped rule allows the write for the token that carries the claim', async () => {
    const env = psqlEnv(t, await t.token({ build: 'build-wire-main', claims: { ref: 'refs/heads/main' } }));
    const r = await run('psql', ['-X', '-c', 'INSERT INTO jit_w VALUES (3)'], env);
    expect(r.stderr).toBe('');
    expect(await count()).toBe(3);
    await direct((c) => c.query('DELETE FROM jit_w WHERE id = 3'));
  });

  it('runs none of a multi-statement string when one of them is refused', async () => {
    const env = psqlEnv(t, await t.token({ claims: { ref: 'refs/heads/main' } }));
    const r = await run('psql', ['-X', '-c', 'INSERT INTO jit_w VALUES (9); SELECT 1; DELETE FROM jit_w'], env);
    expect(r.stderr).toMatch(/needs approval under rule 'prod-destructive'/);
    expect(await count()).toBe(2);
  });

  it('a denial inside a transaction block leaves psql and the server agreeing: COMMIT rolls back', async () => {
    const env = psqlEnv(t, await t.token({ claims: { ref: 'refs/heads/main' } }));
    const script = ['BEGIN;', 'INSERT INTO jit_w VALUES (10);', 'DROP TABLE jit_w;', 'SELECT 1;', 'COMMIT;'].join('\n');
    const r = await run('psql', ['-X', '-f', '-'], env, script);
    expect(r.stderr).toMatch(/needs approval/);
    expect(r.stderr).toContain('current transaction is aborted');
    expect(r.stdout).toContain('ROLLBACK');
    expect(await count()).toBe(2);
  });
});

/** Send one pipelined batch of frontend messages over TLS and collect the answers up to ReadyForQuery. */
function pipeline(token: string, batch: Buffer[]): Promise<BackendMessage[]> {
  return pipelineMessages(t, token, batch);
}

describe('extended protocol', () => {
  it('a refused Parse in a pipeline errors at its place; the server discards until Sync, as a server would', async () => {
    const token = await t.token({ build: 'build-pipeline' });
    const out = await pipeline(token, [
      serialize.parse({ name: 'ok', text: 'SELECT count(*) FROM jit_w WHERE id > $1' }),
      serialize.bind({ statement: 'ok', values: ['0'] }),
      serialize.execute(),
      serialize.parse({ name: 'bad', text: 'DELETE FROM jit_w' }),
      serialize.bind({ statement: 'bad' }),
      serialize.execute(),
      serialize.parse({ name: 'after', text: 'SELECT 1' }),
      serialize.sync(),
    ]);
    expect(out.map((m) => m.name)).toEqual(['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'error', 'readyForQuery']);
    const err = out[4] as unknown as { code: string; message: string };
    expect(err.code).toBe('42501');
    expect(err.message).toMatch(/needs approval under rule 'prod-destructive'/);
    expect(await count()).toBe(2);
    const [s] = await t.broker.store.listSessions({ build: 'build-pipeline' });
    const st = await t.broker.store.listStatements(s!.id);
    expect(st.map((x) => [x.protocol, x.decision, x.sql])).toEqual([
      ['execute', 'allow', 'SELECT count(*) FROM jit_w WHERE id > $1'],
      ['parse', 'review', 'DELETE FROM jit_w'],
    ]);
  });

  it('a named statement keeps its classification for every later Bind/Execute (node-postgres)', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-named' })));
    await c.connect();
    try {
      const q = { name: 'count-above', text: 'SELECT count(*)::int AS n FROM jit_w WHERE id > $1' };
      expect((await c.query({ ...q, values: [0] })).rows).toEqual([{ n: 2 }]);
      expect((await c.query({ ...q, values: [1] })).rows).toEqual([{ n: 1 }]);
      await expect(c.query({ name: 'wipe', text: 'DELETE FROM jit_w WHERE $1::int = $1::int', values: [1] })).rejects.toMatchObject({ code: '42501' });
      await expect(c.query({ name: 'wipe', text: 'DELETE FROM jit_w WHERE $1::int = $1::int', values: [1] })).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
    expect(await count()).toBe(2);
  });
});
