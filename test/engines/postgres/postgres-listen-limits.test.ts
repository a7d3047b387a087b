// The database listeners' login deadline and caps (`listen.login_timeout`, `max_logins`, `max_clients`):
// connections that never finish logging in are closed, a flood of them is turned away at once with a
// clear error, and clients that do log in carry on. Postgres here; the MySQL listener in mysql-listen-limits.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_RULES, eventually, psqlEnv, run, startTestBroker, type TestBroker } from '../../support/broker.js';
import { probe, type Probe } from '../../support/probe.js';

/** Backend messages in `bytes`: type, and for an ErrorResponse its SQLSTATE and message. */
function pgMessages(bytes: Buffer): { type: string; code?: string; message?: string; auth?: number }[] {
  const out: { type: string; code?: string; message?: string; auth?: number }[] = [];
  let i = 0;
  if (bytes[0] === 0x53 && (bytes.length === 1 || bytes[1] !== 0)) {
    out.push({ type: 'SSL:S' }); // the one-byte answer to an SSLRequest
    i = 1;
  }
  while (i + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[i]!);
    const body = bytes.subarray(i + 5, i + 1 + bytes.readInt32BE(i + 1));
    i += 1 + bytes.readInt32BE(i + 1);
    if (type === 'E') {
      const fields = new Map<string, string>();
      for (let j = 0; j < body.length && body[j] !== 0; ) {
        const end = body.indexOf(0, j + 1);
        fields.set(String.fromCharCode(body[j]!), body.toString('utf8', j + 1, end));
        j = end + 1;
      }
      out.push({ type, code: fields.get('C'), message: fields.get('M') });
    } else if (type === 'R') out.push({ type, auth: body.readInt32BE(0) });
    else out.push({ type });
  }
  return out;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const STARTUP = (() => {
  const b = Buffer.from('\0\0\0\0\0\x03\0\0user\0ci\0database\0app\0\0', 'latin1');
  b.writeInt32BE(b.length, 0);
  return b;
})();

describe('the login deadline', () => {
  let t: TestBroker;
  beforeAll(async () => {
    // Plaintext from loopback, so a bare startup packet is answered with a password request, not refused.
    t = await startTestBroker(BASE_RULES, { plaintext: true, listen: 'login_timeout: 1s, max_logins: 1000' });
  });
  afterAll(async () => t?.stop());

  it('closes 300 connections that send nothing, only a startup packet, or only SSLRequest, while pgbench through the broker keeps working', async () => {
    const kinds = ['nothing', 'startup', 'ssl'] as const;
    const flood = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const kind = kinds[i % 3]!;
        return { kind, p: await probe(t.port, kind === 'startup' ? STARTUP : kind === 'ssl' ? SSL_REQUEST : undefined) };
      }),
    );
    // pgbench logs in anew for every transaction (-C) while the flood is held.
    const script = join(t.dir, 'select.sql');
    writeFileSync(script, 'SELECT 1;\n');
    const bench = run('pgbench', ['-n', '-C', '-f', script, '-c', '4', '-j', '2', '-t', '50'], psqlEnv(t, await t.token({ build: 'build-flood' })));

    const answers = await Promise.all(flood.map(async ({ kind, p }) => ({ kind, got: pgMessages(await p.closed) })));
    const expired = { type: 'E', code: '57014', message: 'jit-broker: the login did not complete within 1s' };
    for (const { kind, got } of answers) {
      if (kind === 'nothing') expect(got).toEqual([expired]);
      if (kind === 'startup') expect(got).toEqual([{ type: 'R', auth: 3 }, expired]);
      // The TLS handshake never started: the broker said `S` and closed.
      if (kind === 'ssl') expect(got).toEqual([{ type: 'SSL:S' }]);
    }

    const r = await bench;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('number of transactions actually processed: 200/200');
    expect(r.stdout).toContain('number of failed transactions: 0');
    expect(r.stdout).toMatch(/tps = \d+(\.\d+)?/);
    const sessions = await t.broker.store.listSessions({ build: 'build-flood' });
    expect(sessions.length).toBeGreaterThanOrEqual(200); // one per transaction, and pgbench's own first connection
  });

  it('a client that logs in in time is not affected by the deadline afterwards', async () => {
    const c = new pg.Client(t.pgConfig(await t.token()));
    await c.connect();
    try {
      // Idle well past the login deadline, then still served.
      await c.query('SELECT pg_sleep(1.5)');
      expect((await c.query('SELECT 42 AS x')).rows).toEqual([{ x: 42 }]);
    } finally {
      await c.end();
    }
  });
});

describe('max_logins and max_clients', () => {
  let t: TestBroker;
  const open: Probe[] = [];
  beforeAll(async () => {
    // A deadline far beyond the test: connections logging in hold their slot until closed.
    t = await startTestBroker(BASE_RULES, { plaintext: true, listen: 'login_timeout: 10m, max_logins: 2, max_clients: 4' });
  });
  afterAll(async () => {
    for (const p of open) p.socket.destroy();
    await t?.stop();
  });

  /** Log in with node-postgres once the broker takes logins again (a refused attempt is retried). */
  const loginWhenFree = async () =>
    eventually(async () => {
      const c = new pg.Client(t.pgConfig(await t.token()));
      c.on('error', () => {});
      try {
        await c.connect();
        return c;
      } catch {
        return null;
      }
    });

  it('past max_logins a new connection gets 53300 "too many connections still logging in" at once; a freed slot takes logins again', async () => {
    open.push(await probe(t.port), await probe(t.port, STARTUP));
    const third = await probe(t.port);
    expect(pgMessages(await third.closed)).toEqual([
      { type: 'E', code: '53300', message: 'jit-broker: too many connections still logging in; try again shortly' },
    ]);
    // psql shows the message; with sslmode=require it came in answer to its SSLRequest, and libpq
    // (since the CVE-2024-10977 fixes) does not show text from a server not yet authenticated by TLS.
    const plain = await run('psql', ['-X', '-c', 'SELECT 1'], { ...psqlEnv(t, await t.token()), PGSSLMODE: 'disable' });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('too many connections still logging in');
    const secure = await run('psql', ['-X', '-c', 'SELECT 1'], psqlEnv(t, await t.token()));
    expect(secure.code).not.toBe(0);
    expect(secure.stderr).toMatch(/too many connections still logging in|error response during SSL exchange/);

    open.shift()!.socket.destroy();
    const c = await loginWhenFree();
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await c.end();
  });

  it('past max_clients (logged-in clients count too) a new connection gets 53300 "too many clients" at once', async () => {
    // One probe still logging in from before, plus two logged-in clients and one more probe: four clients.
    const a = await loginWhenFree();
    const b = await loginWhenFree();
    open.push(await probe(t.port));
    const fifth = await probe(t.port, STARTUP);
    expect(pgMessages(await fifth.closed)).toEqual([
      { type: 'E', code: '53300', message: 'jit-broker: too many clients connected to the broker; try again later' },
    ]);
    const psql = await run('psql', ['-X', '-c', 'SELECT 1'], { ...psqlEnv(t, await t.token()), PGSSLMODE: 'disable' });
    expect(psql.stderr).toContain('too many clients connected to the broker');
    // Those already in are served as before; once some leave, logins are taken again.
    expect((await a.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    for (const p of open.splice(0)) p.socket.destroy();
    await a.end();
    const c = await loginWhenFree();
    expect((await c.query('SELECT 3 AS x')).rows).toEqual([{ x: 3 }]);
    await Promise.all([b.end(), c.end()]);
  });
});
