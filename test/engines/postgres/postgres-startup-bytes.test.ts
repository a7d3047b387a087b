// A client may send its startup packet, its password and its first query in one write, in plaintext or
// inside TLS: the broker keeps every byte (what follows an SSLRequest before the TLS handshake is still refused).
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';

let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker(undefined, { plaintext: true });
});
afterAll(async () => t?.stop());

const cstr = (s: string) => Buffer.from(`${s}\0`);

function startupPacket(params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, body]);
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const startup = startupPacket({ user: 'ci', database: 'app', application_name: 'raw-startup' });
const password = (token: string) => message('p', cstr(token));
const query = (sql: string) => message('Q', cstr(sql));

interface Msg {
  type: string;
  body: Buffer;
}

/** Backend messages as they arrive, until `readyCount` ReadyForQuery messages (or an error, or the close). */
function readMessages(socket: net.Socket, readyCount: number): Promise<Msg[]> {
  return new Promise((resolve) => {
    const out: Msg[] = [];
    let buf = Buffer.alloc(0);
    let ready = 0;
    const finish = () => {
      socket.removeListener('data', onData);
      resolve(out);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const len = buf.readInt32BE(1);
        const m = { type: String.fromCharCode(buf[0]!), body: buf.subarray(5, 1 + len) };
        buf = buf.subarray(1 + len);
        out.push(m);
        if (m.type === 'E' || (m.type === 'Z' && ++ready === readyCount)) return finish();
      }
    };
    socket.on('data', onData);
    socket.once('close', finish);
  });
}

/** The login exchange as the types a client sees, authentication requests with their code. */
const shape = (ms: Msg[]) => ms.map((m) => (m.type === 'R' ? `R${m.body.readInt32BE(0)}` : m.type)).filter((s) => s !== 'S');
const dataRows = (ms: Msg[]) => ms.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6));

function connectPlain(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(t.port, t.host, () => resolve(s));
    s.once('error', reject);
  });
}

/** SSLRequest, its `S`, then the TLS handshake on the same connection. */
async function connectTls(): Promise<tls.TLSSocket> {
  const raw = await connectPlain();
  raw.write(SSL_REQUEST);
  const answer = await new Promise<Buffer>((resolve) => raw.once('data', resolve));
  expect(answer.toString('latin1')).toBe('S');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('bytes sent with the startup packet', () => {
  it('startup and password in one write: AuthenticationOk … ReadyForQuery, and the session answers queries', async () => {
    const s = await connectPlain();
    try {
      const login = readMessages(s, 1);
      s.write(Buffer.concat([startup, password(await t.token({ build: 'build-startup-one-write' }))]));
      const hello = await login;
      expect(shape(hello)).toEqual(['R3', 'R0', 'K', 'Z']);
      const answer = readMessages(s, 1);
      s.write(query('SELECT 40 + 2'));
      expect(dataRows(await answer)).toEqual(['42']);
    } finally {
      s.destroy();
    }
  });

  it('startup, password and a Query in one write: the query runs', async () => {
    const s = await connectPlain();
    try {
      const all = readMessages(s, 2);
      s.write(Buffer.concat([startup, password(await t.token()), query("SELECT 'pipelined' AS x")]));
      const ms = await all;
      expect(shape(ms)).toEqual(['R3', 'R0', 'K', 'Z', 'T', 'D', 'C', 'Z']);
      expect(dataRows(ms)).toEqual(['pipelined']);
    } finally {
      s.destroy();
    }
  });

  it('the same split anywhere: a write that ends inside the password, the rest with the query', async () => {
    const s = await connectPlain();
    try {
      const bytes = Buffer.concat([startup, password(await t.token()), query('SELECT 7')]);
      const all = readMessages(s, 2);
      s.write(bytes.subarray(0, startup.length + 9));
      s.write(bytes.subarray(startup.length + 9));
      const ms = await all;
      expect(shape(ms)).toEqual(['R3', 'R0', 'K', 'Z', 'T', 'D', 'C', 'Z']);
      expect(dataRows(ms)).toEqual(['7']);
    } finally {
      s.destroy();
    }
  });

  it('inside TLS, startup and password in one write, then startup, password and a Query in one write', async () => {
    const a = await connectTls();
    try {
      const login = readMessages(a, 1);
      a.write(Buffer.concat([startup, password(await t.token())]));
      expect(shape(await login)).toEqual(['R3', 'R0', 'K', 'Z']);
    } finally {
      a.destroy();
    }
    const b = await connectTls();
    try {
      const all = readMessages(b, 2);
      b.write(Buffer.concat([startup, password(await t.token({ build: 'build-startup-tls' })), query("SELECT 'inside TLS'")]));
      const ms = await all;
      expect(shape(ms)).toEqual(['R3', 'R0', 'K', 'Z', 'T', 'D', 'C', 'Z']);
      expect(dataRows(ms)).toEqual(['inside TLS']);
    } finally {
      b.destroy();
    }
    const [session] = await t.broker.store.listSessions({ build: 'build-startup-tls' });
    expect(session).toMatchObject({ tls: true, clientApplication: 'raw-startup', statementCount: 1 });
  });

  it('still refuses plaintext bytes sent after SSLRequest before the TLS handshake', async () => {
    const s = await connectPlain();
    const answer = new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
    });
    s.write(Buffer.concat([SSL_REQUEST, startup, password(await t.token())]));
    const got = await answer;
    expect(got[0]).toBe('E'); // neither `S` nor a password request: the smuggled startup was not read
    expect(got).toMatch(/08P01.*before the TLS handshake/s);
  });
});
