// A password longer than a login may be (the broker reads at most 64 KiB per handshake message): refused
// with ER_ACCESS_DENIED and the broker's reason, in the packet that follows the client's last one, whether
// the password came in the HandshakeResponse, after an AuthSwitch, inside TLS, or split across packets.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAP, handshakeResponsePayload, packet, readErr } from '../../../broker/engines/mysql/protocol.js';
import { startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

let t: MysqlTestBroker;
/** A second broker that allows plaintext logins from loopback (for raw packets). */
let lo: MysqlTestBroker;
beforeAll(async () => {
  t = await startMysqlBroker();
  lo = await startMysqlBroker(undefined, { plaintext: true });
});
afterAll(async () => {
  await t?.stop();
  await lo?.stop();
});

const TOO_LONG = /^jit-broker: the login message is \d+ bytes, more than the 65536 the broker reads: the password must be a jit-broker token/;

interface Packet {
  seq: number;
  payload: Buffer;
}

/** A raw client: whole packets as they come (each one on its own: never a logical message). */
class RawClient {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;
  readonly socket: net.Socket;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    this.socket.on('error', () => undefined);
  }

  async read(): Promise<Packet> {
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3);
        if (this.buf.length >= 4 + len) {
          const p = { seq: this.buf[3]!, payload: this.buf.subarray(4, 4 + len) };
          this.buf = this.buf.subarray(4 + len);
          return p;
        }
      }
      if (this.closed) throw new Error('the broker closed the connection without a whole packet');
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  /** Whether the broker closed the connection once it had answered. */
  async ended(): Promise<boolean> {
    while (!this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.buf.length === 0;
  }
}

const CAPS = CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA | CAP.CONNECT_WITH_DB;
const hello = (plugin: string, authData: Buffer) =>
  packet(1, handshakeResponsePayload({ capabilities: CAPS, collation: 45, user: 'ci', authData, database: 'app', plugin, attrs: {} }));
const password = (n: number) => Buffer.from(`${'x'.repeat(n)}\0`);

function expectRefusal(p: Packet, seq: number): void {
  expect(p.payload[0]).toBe(0xff);
  const err = readErr(p.payload);
  expect({ seq: p.seq, errno: err.errno, sqlstate: err.sqlstate }).toEqual({ seq, errno: 1045, sqlstate: '28000' });
  expect(err.message).toMatch(TOO_LONG);
}

describe('raw packets (plaintext loopback)', () => {
  it('a password in the HandshakeResponse (seq 1): the ERR is seq 2', async () => {
    const c = new RawClient(lo.port);
    await c.read(); // greeting
    c.socket.write(hello('mysql_clear_password', password(70 * 1024)));
    expectRefusal(await c.read(), 2);
    expect(await c.ended()).toBe(true);
  });

  it('a password sent after the AuthSwitch (seq 3): the ERR is seq 4', async () => {
    const c = new RawClient(lo.port);
    await c.read();
    c.socket.write(hello('caching_sha2_password', Buffer.alloc(32, 1)));
    const sw = await c.read();
    expect({ seq: sw.seq, first: sw.payload[0], plugin: sw.payload.toString('latin1', 1, 21) }).toEqual({
      seq: 2,
      first: 0xfe,
      plugin: 'mysql_clear_password',
    });
    c.socket.write(packet(3, password(100 * 1024)));
    expectRefusal(await c.read(), 4);
    expect(await c.ended()).toBe(true);
  });

  it('a password of more than 16 MiB, split into packets 3 and 4: the ERR follows the last one (seq 5)', async () => {
    const c = new RawClient(lo.port);
    await c.read();
    c.socket.write(hello('caching_sha2_password', Buffer.alloc(32, 1)));
    expect((await c.read()).seq).toBe(2);
    const big = packet(3, password(0xffffff + 100));
    expect([big[3], big[4 + 0xffffff + 3]]).toEqual([3, 4]); // two wire packets
    c.socket.write(big);
    expectRefusal(await c.read(), 5);
    expect(await c.ended()).toBe(true);
  });
});

describe('mysql2 over TLS (caching_sha2_password full authentication)', () => {
  type MyError = Error & { errno?: number; sqlState?: string; code?: string; fatal?: boolean };
  const loginError = (b: MysqlTestBroker, token: string) =>
    b.connect(token).then(
      async (c) => (await c.end(), null),
      (e: MyError) => e,
    );

  it('reports the broker refusal, not a packet-order error', async () => {
    const err = await loginError(t, 'x'.repeat(70 * 1024));
    expect(err).toMatchObject({ errno: 1045, sqlState: '28000', code: 'ER_ACCESS_DENIED_ERROR' });
    expect(err?.message).toMatch(TOO_LONG);
  });

  it('the same for a password of more than 16 MiB; the broker goes on serving others', async () => {
    const err = await loginError(t, 'x'.repeat(0xffffff + 100));
    expect(err).toMatchObject({ errno: 1045, code: 'ER_ACCESS_DENIED_ERROR' });
    expect(err?.message).toMatch(TOO_LONG);
    const c = await t.connect(await t.token());
    const [rows] = await c.query('SELECT 1 AS ok');
    expect(rows).toEqual([{ ok: 1 }]);
    await c.end();
  });
});
