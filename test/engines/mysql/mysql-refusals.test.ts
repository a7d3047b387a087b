// What the MySQL engine refuses, as clients see it: tokens, plaintext, policy (inside a transaction too),
// LOCAL INFILE, COM_CHANGE_USER, unknown commands, and malformed packets (which end only their connection).
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacketIO } from '../../../broker/engines/mysql/framing.js';
import { CAP, packet, readErr } from '../../../broker/engines/mysql/protocol.js';
import { run } from '../../support/broker.js';
import { directMy, greetingCapabilities, MYSQL_RULES, rawLogin as rawLoginTo, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

let t: MysqlTestBroker;
/** A second broker that allows plaintext logins from loopback. */
let lo: MysqlTestBroker;
const RULES = `
rules:
  - { id: loads, tables: ["jit_my_load"], kinds: [admin], action: allow }
${MYSQL_RULES.replace('rules:\n', '')}`;

beforeAll(async () => {
  t = await startMysqlBroker(RULES);
  lo = await startMysqlBroker(RULES, { plaintext: true });
  await directMy((c) =>
    c.query(
      ['jit_my_load', 'jit_my_other', 'jit_mx_tx']
        .map((n) => `DROP TABLE IF EXISTS ${n}; CREATE TABLE ${n} (id INT, v VARCHAR(20)); INSERT INTO ${n} VALUES (1, 'a'), (2, 'b');`)
        .join('\n'),
    ),
  );
});
afterAll(async () => {
  await t?.stop();
  await lo?.stop();
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_load, jit_my_other, jit_mx_tx'));
});

const now = () => Math.floor(Date.now() / 1000);
async function signWithBrokerKey(claims: Record<string, unknown>): Promise<string> {
  const jwk = JSON.parse(readFileSync(join(t.dir, '.jit', 'issuer.jwk'), 'utf8')) as JWK;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).sign(await importJWK(jwk, 'ES256'));
}

type MyError = Error & { errno?: number; sqlState?: string; code?: string };
const loginError = (b: MysqlTestBroker, password: string, extra = {}) =>
  b.connect(password, extra).then(
    async (c) => {
      await c.end();
      return null;
    },
    (e: MyError) => e,
  );

describe('token refusals: ERR 1045 (28000) saying which check failed', () => {
  const base = () => ({ iss: t.broker.issuer!.issuer, aud: 'jit-broker', sub: 'ci:test', iat: now(), exp: now() + 300 });
  it.each([
    ['garbage', async () => 'hunter2', /malformed/],
    ['expired', async () => signWithBrokerKey({ ...base(), iat: now() - 600, exp: now() - 300 }), /expired/],
    ['wrong audience', async () => t.token({ audience: 'someone-else' }), /audience/],
  ])('%s', async (_name, make, why) => {
    const token = await make();
    const err = await loginError(t, token);
    expect(err).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(err!.message).toMatch(/^jit-broker: token refused: /);
    expect(err!.message).toMatch(why);
    expect(err!.message).not.toContain(token);
  });

  it('the mariadb CLI shows the reason, and no session is recorded', async () => {
    const r = await t.cli('not-a-token', ['app', '-e', 'SELECT 1']);
    expect(r.stderr).toMatch(/ERROR 1045 \(28000\): jit-broker: token refused: malformed/);
    expect((await t.broker.store.listSessions({})).filter((s) => s.engine === 'mysql')).toEqual([]);
  });
});

describe('TLS', () => {
  it('is required unless loopback plaintext is configured: the token is never taken in clear', async () => {
    const token = await t.token();
    const cli = await t.cli(token, ['--skip-ssl', 'app', '-e', 'SELECT 1']);
    expect(cli.stderr).toMatch(/ERROR 3159 \(HY000\): jit-broker requires TLS/);
    expect(await loginError(t, token, { ssl: undefined, enableCleartextPlugin: true })).toMatchObject({ errno: 3159 });
  });

  it('loopback plaintext: the CLI switches to mysql_clear_password by itself; mysql2 needs enableCleartextPlugin', async () => {
    const token = await lo.token();
    const cli = await lo.cli(token, ['--skip-ssl', '-N', 'app', '-e', 'SELECT 1']);
    expect(cli).toMatchObject({ stdout: '1\n', stderr: '' });
    expect(await loginError(lo, token, { ssl: undefined, enableCleartextPlugin: true })).toBeNull();
    expect(await loginError(lo, token, { ssl: undefined })).toMatchObject({ code: 'MYSQL_CLEAR_PASSWORD_NOT_ENABLED' });
    expect(await loginError(lo, token)).toBeNull(); // TLS still works there
    const [s] = await lo.broker.store.listSessions({ limit: 1 });
    expect(s).toMatchObject({ engine: 'mysql', tls: true });
  });
});

describe('policy', () => {
  it('a refusal inside a transaction changes nothing upstream: COMMIT commits the earlier writes, as MySQL would', async () => {
    const token = await t.token({ build: 'build-my-txr' });
    const script = ['BEGIN;', "INSERT INTO jit_mx_tx VALUES (3, 'c');", 'DELETE FROM jit_mx_tx;', 'SELECT COUNT(*) FROM jit_mx_tx;', 'COMMIT;'].join('\n');
    const r = await t.cli(token, ['-N', '--force', 'app'], script);
    expect(r.stderr).toContain('ERROR 1227 (42000) at line 3: jit-broker: a destructive statement is denied by the default policy');
    expect(r.stdout).toBe('3\n');
    expect(await rowsOf('SELECT id FROM jit_mx_tx ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);

    const c = await t.connect(token);
    try {
      await c.beginTransaction();
      await c.execute('UPDATE jit_mx_tx SET v = ? WHERE id = ?', ['z', 1]);
      await expect(c.execute('TRUNCATE jit_mx_tx')).rejects.toMatchObject({ errno: 1227, sqlState: '42000' });
      await c.commit();
    } finally {
      await c.end();
    }
    expect(await rowsOf('SELECT v FROM jit_mx_tx WHERE id = 1')).toEqual([{ v: 'z' }]);
    const sessions = await t.broker.store.listSessions({ build: 'build-my-txr' });
    const denied = (await Promise.all(sessions.map((s) => t.broker.store.listStatements(s.id)))).flat().filter((s) => s.decision === 'deny');
    expect(denied.map((s) => [s.sql, s.protocol])).toEqual(
      expect.arrayContaining([
        ['DELETE FROM jit_mx_tx', 'simple'],
        ['TRUNCATE jit_mx_tx', 'parse'],
      ]),
    );
  });

  it('a client character set the classifier cannot lex is replaced by utf8mb4 upstream; SET NAMES to one is refused', async () => {
    const c = await t.connect(await t.token(), { charset: 'SJIS_JAPANESE_CI' });
    try {
      expect((await c.query('SELECT @@character_set_client AS cs'))[0]).toEqual([{ cs: 'utf8mb4' }]);
      await expect(c.query('SET NAMES sjis')).rejects.toMatchObject({ errno: 1227, message: expect.stringContaining('unknown') });
      await c.query('SET NAMES latin1');
      expect((await c.query('SELECT @@character_set_client AS cs'))[0]).toEqual([{ cs: 'latin1' }]);
    } finally {
      await c.end();
    }
  });

  it('LOAD DATA LOCAL INFILE: refused unless a rule allows it (as admin) for its table', async () => {
    const file = join(t.dir, 'rows.csv');
    writeFileSync(file, '7,x\n8,y\n');
    expect((await greetingCapabilities(t.port)) & CAP.LOCAL_FILES).toBe(CAP.LOCAL_FILES); // a rule may allow it here
    const token = await t.token();
    const allowed = await t.cli(token, ['--local-infile=1', 'app', '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE jit_my_load FIELDS TERMINATED BY ','`]);
    expect(allowed).toMatchObject({ code: 0, stderr: '' });
    expect(await rowsOf('SELECT id FROM jit_my_load ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 7 }, { id: 8 }]);
    const refused = await t.cli(token, ['--local-infile=1', 'app', '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE jit_my_other`]);
    expect(refused.stderr).toMatch(/ERROR 1227 \(42000\) at line 1: jit-broker: an admin statement is denied by the default policy/);
    expect(await rowsOf('SELECT COUNT(*) AS n FROM jit_my_other')).toEqual([{ n: 2 }]);
  });
});

describe('commands', () => {
  it('COM_CHANGE_USER is refused with a clear error', async () => {
    const c = await t.connect(await t.token());
    c.on('error', () => {});
    try {
      await expect(c.changeUser({ user: 'root', password: '' })).rejects.toMatchObject({
        errno: 1227,
        message: expect.stringContaining('COM_CHANGE_USER is not supported'),
      });
    } finally {
      c.destroy();
    }
  });

  it('commands the broker does not relay are refused by name (mariadb-admin status: COM_STATISTICS); COM_PING is relayed', async () => {
    const token = await t.token();
    const args = ['-h', t.host, '-P', String(t.port), '-u', 'ci', `-p${token}`];
    expect((await run('mariadb-admin', [...args, 'ping'])).stdout).toContain('mysqld is alive');
    const status = await run('mariadb-admin', [...args, 'status']);
    expect(status.stderr + status.stdout).toContain('jit-broker: COM_STATISTICS (0x09) is not relayed by the broker');
  });
});

describe('malformed packets end only their own connection, with an ERR', () => {
  const rawLogin = async () => rawLoginTo(lo.port, await lo.token());

  it.each([
    ['a truncated COM_STMT_EXECUTE', packet(0, Buffer.from([0x17, 1, 0])), 1835, /truncated COM_STMT_EXECUTE/],
    ['an empty command packet', packet(0, Buffer.alloc(0)), 1835, /empty command packet/],
    ['a command with sequence id 5', packet(5, Buffer.from('\x03SELECT 1')), 1156, /sequence id 5/],
  ])('%s', async (_name, bytes, errno, why) => {
    const bystander = await lo.connect(await lo.token());
    const r = await rawLogin();
    r.socket.write(bytes);
    const answer = readErr((await r.io.read()).payload);
    expect(answer.errno).toBe(errno);
    expect(answer.message).toMatch(why);
    await r.closed;
    expect((await bystander.query('SELECT 1 AS ok'))[0]).toEqual([{ ok: 1 }]);
    await bystander.end();
  });

  it('a truncated handshake response is refused with an ERR', async () => {
    const socket = net.connect(lo.port, lo.host);
    const io = new PacketIO(socket, 'broker', 1 << 24);
    await io.read();
    socket.write(packet(1, Buffer.from([0x00, 0x02, 0x00, 0x00, 1, 2])));
    const e = readErr((await io.read()).payload);
    expect(e.errno).toBe(1835);
    expect(e.message).toMatch(/truncated packet/);
    socket.destroy();
  });
});
