// The broker's own login to MySQL/MariaDB servers: mysql_native_password with a real password against the
// real MariaDB, and caching_sha2_password (fast path; full authentication with the server's RSA key) against
// a small fake MySQL 8 server, since MariaDB has no caching_sha2_password.
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacketIO } from '../../../broker/engines/mysql/framing.js';
import { CAP, greetingPayload, okPayload, packet, PacketReader } from '../../../broker/engines/mysql/protocol.js';
import { cachingSha2Token, connectUpstream, parseMysqlUrl } from '../../../broker/engines/mysql/upstream.js';
import { directMy } from '../../support/mysql.js';

describe('mysql_native_password against the real MariaDB', () => {
  beforeAll(async () => {
    await directMy((c) =>
      c.query(
        "DROP USER IF EXISTS 'jit_up'@'127.0.0.1'; CREATE USER 'jit_up'@'127.0.0.1' IDENTIFIED BY 's3cret/!'; GRANT SELECT ON test.* TO 'jit_up'@'127.0.0.1'",
      ),
    );
  });
  afterAll(async () => {
    await directMy((c) => c.query("DROP USER IF EXISTS 'jit_up'@'127.0.0.1'"));
  });

  it('logs in with the password from the URL, and a wrong one names the server error', async () => {
    const up = await connectUpstream('mysql://jit_up:s3cret%2F%21@127.0.0.1:3306/test?sslmode=disable');
    expect(up).toMatchObject({ database: 'test', tls: false });
    expect(up.threadId).toBeGreaterThan(0);
    expect(up.version).toMatch(/MariaDB/);
    up.socket.destroy();
    await expect(connectUpstream('mysql://jit_up:wrong@127.0.0.1:3306/test')).rejects.toThrow(/refused the broker's login as jit_up: ERROR 1045 \(28000\)/);
  });

  it('target URLs: the database is required, sslmode is read', () => {
    expect(parseMysqlUrl('mysql://u:p%40ss@db.internal/shop?sslmode=verify-full')).toEqual({
      host: 'db.internal',
      port: 3306,
      user: 'u',
      password: 'p@ss',
      database: 'shop',
      ssl: 'verify',
    });
    expect(parseMysqlUrl('mysql://u@h:3307/d').ssl).toBe('prefer');
    expect(() => parseMysqlUrl('mysql://u@h:3306')).toThrow(/names no database/);
    expect(() => parseMysqlUrl('postgres://u@h/d')).toThrow(/mysql:\/\//);
  });
});

describe('caching_sha2_password against a fake MySQL 8', () => {
  const PASSWORD = 'hunter2-but-longer';
  const scramble = Buffer.from('0123456789abcdefghij');
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let server: net.Server;
  let port = 0;
  let mode: 'fast' | 'full' = 'fast';
  const log: string[] = [];

  beforeAll(async () => {
    server = net.createServer((s) => {
      void (async () => {
        const io = new PacketIO(s, 'broker', 1 << 20);
        const caps =
          CAP.LONG_PASSWORD |
          CAP.PROTOCOL_41 |
          CAP.SECURE_CONNECTION |
          CAP.PLUGIN_AUTH |
          CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
          CAP.CONNECT_WITH_DB |
          CAP.TRANSACTIONS;
        s.write(
          packet(
            0,
            greetingPayload({
              version: '8.0.36-fake',
              connectionId: 77,
              scramble,
              capabilities: caps,
              collation: 255,
              status: 2,
              plugin: 'caching_sha2_password',
            }),
          ),
        );
        const hello = await io.read();
        const r = new PacketReader(hello.payload);
        r.bytes(32);
        const user = r.nulString();
        const token = r.lenencBytes();
        const db = r.nulString();
        const plugin = r.nulString();
        log.push(`${user}@${db} ${plugin} token ${token.equals(cachingSha2Token(PASSWORD, scramble)) ? 'ok' : 'bad'}`);
        if (mode === 'fast') {
          s.write(Buffer.concat([packet(2, Buffer.from([0x01, 0x03])), packet(3, okPayload({ status: 2 }))]));
          return;
        }
        s.write(packet(2, Buffer.from([0x01, 0x04])));
        const ask = await io.read();
        log.push(`asked ${ask.payload.toString('hex')}`);
        s.write(packet(4, Buffer.concat([Buffer.from([0x01]), Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }))])));
        const sealed = await io.read();
        const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, sealed.payload);
        const password = Buffer.from(plain.map((b, i) => b ^ scramble[i % scramble.length]!)).toString();
        log.push(`rsa password ${password === `${PASSWORD}\0` ? 'ok' : 'bad'}`);
        s.write(packet(6, okPayload({ status: 2 })));
      })().catch(() => s.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fast path: the scramble answer is accepted at once', async () => {
    mode = 'fast';
    log.length = 0;
    const up = await connectUpstream(`mysql://app:${PASSWORD}@127.0.0.1:${port}/shop?sslmode=disable`);
    up.socket.destroy();
    expect(up).toMatchObject({ threadId: 77, version: '8.0.36-fake', database: 'shop' });
    expect(log).toEqual(['app@shop caching_sha2_password token ok']);
  });

  it('full authentication without TLS: the password goes RSA-encrypted with the server key', async () => {
    mode = 'full';
    log.length = 0;
    const up = await connectUpstream(`mysql://app:${PASSWORD}@127.0.0.1:${port}/shop?sslmode=disable`);
    up.socket.destroy();
    expect(log).toEqual(['app@shop caching_sha2_password token ok', 'asked 02', 'rsa password ok']);
  });
});
