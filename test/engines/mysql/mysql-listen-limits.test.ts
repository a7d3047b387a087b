// The MySQL listener obeys the same `listen.login_timeout`, `max_logins` and `max_clients` as the Postgres
// one (postgres-listen-limits.test.ts): a silent client gets ER_HANDSHAKE_ERROR at the deadline, one past a
// cap gets ER_CON_COUNT_ERROR (1040) in place of the greeting, and logged-in clients carry on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { CAP, packet, sslRequestPayload } from '../../../broker/engines/mysql/protocol.js';
import { eventually } from '../../support/broker.js';
import { MYSQL_RULES, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';
import { probe, type Probe } from '../../support/probe.js';

/** The packets in `bytes`: sequence id and, for an ERR packet, its error number, SQLSTATE and message. */
function packets(bytes: Buffer): { seq: number; kind: string; code?: number; state?: string; message?: string }[] {
  const out: { seq: number; kind: string; code?: number; state?: string; message?: string }[] = [];
  for (let i = 0; i + 4 <= bytes.length; ) {
    const len = bytes.readUIntLE(i, 3);
    const p = bytes.subarray(i + 4, i + 4 + len);
    const seq = bytes[i + 3]!;
    i += 4 + len;
    if (p[0] === 0xff) out.push({ seq, kind: 'err', code: p.readUInt16LE(1), state: p.toString('latin1', 4, 9), message: p.toString('utf8', 9) });
    else out.push({ seq, kind: p[0] === 10 ? 'greeting' : `0x${p[0]!.toString(16)}` });
  }
  return out;
}

const SSL_REQUEST = packet(1, sslRequestPayload(CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.SSL, 45));
/** A packet header announcing 100 bytes that never come. */
const HALF_PACKET = Buffer.from([100, 0, 0, 1]);

describe('the MySQL login deadline', () => {
  let t: MysqlTestBroker;
  beforeAll(async () => {
    t = await startMysqlBroker(MYSQL_RULES, { listen: 'login_timeout: 1s' });
  });
  afterAll(async () => t?.stop());

  it('closes connections that send nothing, half a packet, or only an SSL request, while clients log in and query', async () => {
    const kinds = ['nothing', 'half', 'ssl'] as const;
    const flood = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const kind = kinds[i % 3]!;
        return { kind, p: await probe(t.port, kind === 'half' ? HALF_PACKET : kind === 'ssl' ? SSL_REQUEST : undefined) };
      }),
    );
    const cli = t.cli(await t.token(), ['app', '-N', '-e', 'SELECT 6 * 7']);
    const expired = { seq: 1, kind: 'err', code: 1043, state: '08S01', message: 'jit-broker: the login did not complete within 1s' };
    for (const { kind, p } of flood) {
      const got = packets(await p.closed);
      // Inside a TLS handshake that never finished nothing can be said: greeting, then the close.
      expect(got).toEqual(kind === 'ssl' ? [{ seq: 0, kind: 'greeting' }] : [{ seq: 0, kind: 'greeting' }, expired]);
    }
    const r = await cli;
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('42');
  });
});

describe('MySQL max_logins and max_clients', () => {
  let t: MysqlTestBroker;
  const open: Probe[] = [];
  const conns: mysql.Connection[] = [];
  beforeAll(async () => {
    t = await startMysqlBroker(MYSQL_RULES, { listen: 'login_timeout: 10m, max_logins: 2, max_clients: 3' });
  });
  afterAll(async () => {
    for (const p of open) p.socket.destroy();
    await Promise.all(conns.map((c) => c.end().catch(() => {})));
    await t?.stop();
  });

  const tooMany = (message: string) => [{ seq: 0, kind: 'err', code: 1040, state: '08004', message }];
  /** Log in with mysql2 once the broker takes logins again (a refused attempt is retried). */
  const loginWhenFree = async () =>
    eventually(async () => {
      try {
        const c = await t.connect(await t.token());
        conns.push(c);
        return c;
      } catch {
        return null;
      }
    });

  it('past max_logins: ER_CON_COUNT_ERROR "too many connections still logging in" in place of the greeting, for the CLI too', async () => {
    open.push(await probe(t.port), await probe(t.port));
    const third = await probe(t.port);
    expect(packets(await third.closed)).toEqual(tooMany('jit-broker: too many connections still logging in; try again shortly'));
    const cli = await t.cli(await t.token(), ['app', '-e', 'SELECT 1']);
    expect(cli.code).not.toBe(0);
    // The mariadb CLI shows it, as an error it cannot authenticate (no TLS yet): "… 1040 - jit-broker: too many …".
    expect(cli.stderr).toMatch(/1040.*too many connections still logging in/);
  });

  it('past max_clients, logged-in clients included: "too many clients"; those in are served', async () => {
    for (const p of open.splice(0)) p.socket.destroy();
    const a = await loginWhenFree();
    const b = await loginWhenFree();
    open.push(await probe(t.port));
    const fourth = await probe(t.port);
    expect(packets(await fourth.closed)).toEqual(tooMany('jit-broker: too many clients connected to the broker; try again later'));
    const [rows] = await a.query('SELECT 1 + 1 AS x');
    expect(rows).toEqual([{ x: 2 }]);
    await b.end();
    const c = await loginWhenFree();
    const [again] = await c.query('SELECT 3 AS x');
    expect(again).toEqual([{ x: 3 }]);
  });
});
