// The broker's own connection to the real MySQL/MariaDB server, with credentials only the broker holds.
// The broker is the client here: it chooses the capability flags (the client leg's, see CLIENT_RELAYED)
// and authenticates with mysql_native_password, caching_sha2_password (fast path; full authentication
// over TLS or with the server's RSA key), sha256_password, or mysql_clear_password (TLS or loopback only).
import { constants, createHash, publicEncrypt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { PacketFramer, PacketIO } from './framing.js';
import { CAP, COM, command, handshakeResponsePayload, packet, PacketReader, readErr, readOk, sslRequestPayload, UTF8MB4_GENERAL_CI } from './protocol.js';
import { connectTcp, UpstreamError } from '../upstream-net.js';

export { UpstreamError };

export interface MysqlTargetUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: false | 'prefer' | 'require' | 'verify';
}

/** `mysql://user:pass@host:3306/db?sslmode=disable|prefer|require|verify-full` (default prefer). */
export function parseMysqlUrl(url: string): MysqlTargetUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UpstreamError('the target URL is not a URL (expected mysql://user:password@host:3306/database)');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') throw new UpstreamError(`a mysql target needs a mysql:// URL, not ${u.protocol}//`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new UpstreamError('the target URL names no database (mysql://user:password@host:3306/database): clients are confined to it');
  const mode = (u.searchParams.get('sslmode') ?? u.searchParams.get('ssl-mode') ?? (u.searchParams.get('ssl') === 'true' ? 'require' : 'prefer')).toLowerCase();
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database,
    ssl:
      mode === 'disable' || mode === 'disabled' || mode === 'false'
        ? false
        : mode === 'prefer' || mode === 'preferred'
          ? 'prefer'
          : mode.startsWith('verify')
            ? 'verify'
            : 'require',
  };
}

export interface MysqlUpstream {
  socket: net.Socket;
  /** The server's connection id (what KILL takes upstream). */
  threadId: number;
  version: string;
  /** Capability flags in force on this leg. */
  capabilities: number;
  /** Status flags of the final OK (autocommit, …). */
  status: number;
  database: string;
  tls: boolean;
}

/** Flags the broker asks for upstream whatever the client does. */
const BASE =
  CAP.LONG_PASSWORD |
  CAP.LONG_FLAG |
  CAP.PROTOCOL_41 |
  CAP.TRANSACTIONS |
  CAP.SECURE_CONNECTION |
  CAP.PLUGIN_AUTH |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CAP.CONNECT_WITH_DB |
  CAP.CONNECT_ATTRS;
/** Flags taken from what the client negotiated with the broker: they change semantics, never framing the relay does not follow. */
export const CLIENT_RELAYED = CAP.FOUND_ROWS | CAP.LOCAL_FILES | CAP.INTERACTIVE | CAP.MULTI_STATEMENTS | CAP.MULTI_RESULTS | CAP.PS_MULTI_RESULTS;

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest();
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i % b.length]!));

export function nativePasswordToken(password: string, scramble: Buffer): Buffer {
  if (!password) return Buffer.alloc(0);
  const s1 = sha1(password);
  return xor(s1, sha1(Buffer.concat([scramble, sha1(s1)])));
}

export function cachingSha2Token(password: string, scramble: Buffer): Buffer {
  if (!password) return Buffer.alloc(0);
  const s1 = sha256(password);
  return xor(s1, sha256(Buffer.concat([sha256(s1), scramble])));
}

const isLoopbackHost = (h: string) => h === 'localhost' || h === '::1' || h.startsWith('127.');

function upstreamErr(payload: Buffer, what: string): UpstreamError {
  const e = readErr(payload);
  return new UpstreamError(`${what}: ERROR ${e.errno} (${e.sqlstate}): ${e.message}`);
}

/**
 * Open and authenticate a connection to the target. `clientFlags` are the flags the client negotiated with
 * the broker (only CLIENT_RELAYED ones are passed on); `collation` is the client's, already vetted.
 */
export async function connectUpstream(
  url: string,
  opts: { clientFlags?: number; collation?: number; attrs?: Record<string, string>; timeoutMs?: number; noDatabase?: boolean } = {},
): Promise<MysqlUpstream> {
  const t = parseMysqlUrl(url);
  const where = `${t.host}:${t.port}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const io = new PacketIO(await connectTcp(t.host, t.port, timeoutMs), where, 1 << 24);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError(`no answer from ${where} to the broker's login after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([handshake(io, t, where, opts), timeout]);
  } catch (e) {
    io.detach();
    io.socket.destroy();
    throw e instanceof UpstreamError ? e : new UpstreamError((e as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

async function handshake(
  io: PacketIO,
  t: MysqlTargetUrl,
  where: string,
  opts: { clientFlags?: number; collation?: number; attrs?: Record<string, string>; noDatabase?: boolean },
): Promise<MysqlUpstream> {
  const hello = await io.read();
  if (hello.payload[0] === 0xff) throw upstreamErr(hello.payload, `${where} refused the connection`);
  const r = new PacketReader(hello.payload);
  const protocol = r.u8();
  if (protocol !== 10) throw new UpstreamError(`${where} speaks handshake protocol ${protocol}, not 10`);
  const version = r.nulString('server version');
  const threadId = r.u32('connection id');
  const scramble1 = r.bytes(8, 'scramble');
  r.u8();
  let serverCaps = r.u16('capabilities');
  let plugin = 'mysql_native_password';
  let scramble = scramble1;
  if (r.remaining > 0) {
    r.u8('character set');
    r.u16('status');
    serverCaps = (serverCaps | (r.u16('capabilities') << 16)) >>> 0;
    const authLen = r.u8('auth data length');
    r.bytes(10, 'reserved');
    if (serverCaps & CAP.SECURE_CONNECTION) {
      const part2 = r.bytes(Math.max(13, authLen - 8), 'scramble');
      scramble = Buffer.concat([scramble1, part2.subarray(0, part2.length - 1)]);
    }
    if (serverCaps & CAP.PLUGIN_AUTH) plugin = r.nulString('auth plugin', true) || plugin;
  }
  if (!(serverCaps & CAP.PROTOCOL_41)) throw new UpstreamError(`${where} does not speak protocol 4.1`);

  let flags = (BASE | ((opts.clientFlags ?? 0) & CLIENT_RELAYED)) & (serverCaps | CAP.CONNECT_ATTRS);
  if (!(serverCaps & CAP.CONNECT_ATTRS)) flags &= ~CAP.CONNECT_ATTRS;
  // A session role's user may not enter the database until its role is active (session-roles/mysql.ts).
  if (opts.noDatabase) flags &= ~CAP.CONNECT_WITH_DB;
  const collation = opts.collation ?? UTF8MB4_GENERAL_CI;
  let seq = 1;
  if (t.ssl) {
    if (serverCaps & CAP.SSL) {
      flags |= CAP.SSL;
      io.socket.write(packet(seq++, sslRequestPayload(flags, collation)));
      const plain = io.detach();
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, servername: net.isIP(t.host) ? undefined : t.host, rejectUnauthorized: t.ssl === 'verify' });
        s.once('secureConnect', () => resolve(s));
        s.once('error', (e) => reject(new UpstreamError(`TLS to ${where} failed: ${e.message}`)));
      });
      io.attach(secure);
    } else if (t.ssl !== 'prefer') {
      throw new UpstreamError(`${where} does not accept TLS, and the target's URL requires it`);
    }
  }
  const secure = io.socket instanceof tls.TLSSocket;
  const authFor = (name: string, data: Buffer): Buffer => {
    switch (name) {
      case 'mysql_native_password':
        return nativePasswordToken(t.password, data.subarray(0, 20));
      case 'caching_sha2_password':
        return cachingSha2Token(t.password, data.subarray(0, 20));
      case 'sha256_password':
        return secure ? Buffer.from(`${t.password}\0`) : Buffer.from([1]);
      case 'mysql_clear_password':
        if (!secure && !isLoopbackHost(t.host))
          throw new UpstreamError(`${where} asks for the broker's password in clear, and the connection is not TLS: set sslmode=require in the target URL`);
        return Buffer.from(`${t.password}\0`);
      default:
        throw new UpstreamError(
          `${where} asks for auth plugin ${name}, which the broker does not speak (use mysql_native_password or caching_sha2_password for its account)`,
        );
    }
  };
  const attrs = { _client_name: 'jit-broker', program_name: 'jit-broker', ...opts.attrs };
  io.socket.write(
    packet(
      seq,
      handshakeResponsePayload({ capabilities: flags, collation, user: t.user, authData: authFor(plugin, scramble), database: t.database, plugin, attrs }),
    ),
  );
  const rsa = (pem: Buffer) =>
    publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, xor(Buffer.from(`${t.password}\0`), scramble));
  let awaitingKey = false;
  for (;;) {
    const m = await io.read();
    const p = m.payload;
    const reply = (data: Buffer) => io.socket.write(packet(m.lastSeq + 1, data));
    if (p[0] === 0x00) {
      io.detach();
      io.socket.pause(); // the relay resumes it once its own listeners are attached
      return { socket: io.socket, threadId, version, capabilities: flags, status: readOk(p).status, database: t.database, tls: secure };
    }
    if (p[0] === 0xff) throw upstreamErr(p, `${where} refused the broker's login as ${t.user}`);
    if (p[0] === 0xfe) {
      // AuthSwitchRequest: another plugin, with fresh data.
      const sr = new PacketReader(p.subarray(1));
      plugin = sr.nulString('plugin name', true);
      const data = sr.rest();
      scramble = data[data.length - 1] === 0 ? data.subarray(0, data.length - 1) : data;
      reply(authFor(plugin, scramble));
      continue;
    }
    if (p[0] === 0x01) {
      const data = p.subarray(1);
      if (awaitingKey || (plugin === 'sha256_password' && data.length > 1)) {
        reply(rsa(data));
        awaitingKey = false;
      } else if (plugin === 'caching_sha2_password' && data[0] === 0x03) {
        continue; // fast authentication succeeded: the OK follows
      } else if (plugin === 'caching_sha2_password' && data[0] === 0x04) {
        if (secure) reply(Buffer.from(`${t.password}\0`));
        else {
          awaitingKey = true;
          reply(Buffer.from([0x02]));
        }
      } else {
        throw new UpstreamError(`${where} sent unexpected auth data for ${plugin}`);
      }
      continue;
    }
    throw new UpstreamError(`${where} sent an unexpected packet (0x${(p[0] ?? 0).toString(16)}) during the handshake`);
  }
}

/** KILL [QUERY|CONNECTION] a server thread, on a fresh connection with the broker's credentials. */
export async function killUpstream(url: string, threadId: number, scope: 'QUERY' | 'CONNECTION'): Promise<void> {
  const up = await connectUpstream(url, { timeoutMs: 5_000 });
  const s = up.socket;
  try {
    await new Promise<void>((resolve, reject) => {
      const framer = new PacketFramer(1 << 20);
      s.on('data', (d: Buffer) => {
        framer.push(d);
        const m = framer.next();
        if (!m) return;
        if (m.payload[0] === 0xff) reject(upstreamErr(m.payload, 'KILL failed'));
        else resolve();
      });
      s.once('error', reject);
      s.once('close', () => reject(new UpstreamError('the server closed the connection before answering KILL')));
      s.resume();
      s.write(command(COM.QUERY, `KILL ${scope} ${threadId}`));
    });
  } finally {
    if (s.writable) s.end(command(COM.QUIT));
    s.destroySoon();
  }
}

/** The server version from a target's greeting (no login), for the broker's own greeting. */
export async function probeVersion(url: string, timeoutMs = 3_000): Promise<string> {
  const t = parseMysqlUrl(url);
  const io = new PacketIO(await connectTcp(t.host, t.port, timeoutMs), `${t.host}:${t.port}`, 1 << 20);
  try {
    const m = await Promise.race([io.read(), new Promise<never>((_, rej) => setTimeout(() => rej(new UpstreamError('no greeting')), timeoutMs))]);
    if (m.payload[0] !== 10) throw new UpstreamError('no version in the greeting');
    return new PacketReader(m.payload.subarray(1)).nulString('server version');
  } finally {
    io.detach();
    io.socket.destroy();
  }
}
