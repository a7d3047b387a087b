// The client leg's connection phase, the broker being the server: greeting, optional TLS, the client's
// HandshakeResponse, then getting the token (the password) in clear:
//   - over TLS, caching_sha2_password "full authentication" (what MySQL 8 clients do without any flag:
//     AuthMoreData 0x04, then the client sends the password inside TLS);
//   - mysql_clear_password when the client starts with it, or (plaintext loopback) after an AuthSwitchRequest.
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import { MessageTooLarge, type Message, type PacketIO } from './framing.js';
import {
  authMoreDataPayload,
  authSwitchPayload,
  CAP,
  ER,
  greetingPayload,
  packet,
  PacketReader,
  ProtocolError,
  STATUS,
  UTF8MB4_GENERAL_CI,
  type ErrorCode,
} from './protocol.js';

/**
 * What the broker offers clients. Not offered, so never in force on either leg: COMPRESS, SESSION_TRACK,
 * DEPRECATE_EOF (result sets end with EOF packets on both legs), QUERY_ATTRIBUTES, OPTIONAL_RESULTSET_METADATA,
 * IGNORE_SPACE (it changes how the server reads SQL), and MariaDB's extended capabilities (bit 0 set: the
 * broker looks like a MySQL server, so none are negotiated). SSL is added when TLS is configured, and
 * LOCAL_FILES when the policy has a rule that could let a LOAD DATA LOCAL INFILE (an `admin` statement) run.
 */
export const ADVERTISED =
  CAP.LONG_PASSWORD |
  CAP.FOUND_ROWS |
  CAP.LONG_FLAG |
  CAP.CONNECT_WITH_DB |
  CAP.PROTOCOL_41 |
  CAP.INTERACTIVE |
  CAP.TRANSACTIONS |
  CAP.SECURE_CONNECTION |
  CAP.MULTI_STATEMENTS |
  CAP.MULTI_RESULTS |
  CAP.PS_MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA;

export class HandshakeRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ClientHello {
  /** The client's flags, limited to what the broker offered. */
  capabilities: number;
  collation: number;
  user: string;
  database: string;
  plugin: string;
  authData: Buffer;
  attrs: Map<string, string>;
}

/** A 20-byte scramble without NUL bytes (some clients treat the scramble as a C string). */
export function makeScramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = (b[i]! % 94) + 33;
  return b;
}

export function greeting(o: { version: string; connectionId: number; scramble: Buffer; capabilities: number }): Buffer {
  return packet(
    0,
    greetingPayload({
      version: o.version,
      connectionId: o.connectionId,
      scramble: o.scramble,
      capabilities: o.capabilities,
      collation: UTF8MB4_GENERAL_CI,
      status: STATUS.AUTOCOMMIT,
      plugin: 'caching_sha2_password',
    }),
  );
}

function parseResponse(payload: Buffer, offered: number): ClientHello {
  const r = new PacketReader(payload);
  const flags = r.u32('capability flags');
  if (!(flags & CAP.PROTOCOL_41)) throw new HandshakeRefusal(ER.UNKNOWN_ERROR, 'jit-broker needs a client that speaks protocol 4.1');
  r.u32('max packet size');
  const collation = r.u8('character set');
  r.bytes(23, 'filler');
  const user = r.nulString('user name');
  let authData: Buffer;
  if (flags & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) authData = r.lenencBytes('auth response');
  else if (flags & CAP.SECURE_CONNECTION) authData = r.bytes(r.u8('auth response length'), 'auth response');
  else authData = r.nulBytes('auth response');
  const database = flags & CAP.CONNECT_WITH_DB ? r.nulString('database', true) : '';
  const plugin = flags & CAP.PLUGIN_AUTH ? r.nulString('auth plugin', true) : '';
  const attrs = new Map<string, string>();
  if (flags & CAP.CONNECT_ATTRS && r.remaining > 0) {
    const a = new PacketReader(r.lenencBytes('connection attributes'));
    while (a.remaining > 0) attrs.set(a.lenencString('attribute name'), a.lenencString('attribute value'));
  }
  return { capabilities: (flags & offered) >>> 0, collation, user, database, plugin, authData, attrs };
}

export interface ConnectionPhase {
  io: PacketIO;
  /** Sequence id of the last packet of the exchange (the client's, or the broker's own): the next one the broker sends is lastSeq + 1. */
  lastSeq: number;
  secure: boolean;
}

/**
 * The client's next message. One larger than a login may be (a password that is no token) is refused
 * with ER_ACCESS_DENIED, answered after its last packet: the refusal is sent at phase.lastSeq + 1.
 */
async function read(phase: ConnectionPhase): Promise<Message> {
  try {
    return await phase.io.read();
  } catch (e) {
    if (!(e instanceof MessageTooLarge)) throw e;
    phase.lastSeq = e.lastSeq;
    throw new HandshakeRefusal(
      ER.ACCESS_DENIED,
      `jit-broker: the login message is ${e.size} bytes, more than the ${e.limit} the broker reads: the password must be a jit-broker token`,
    );
  }
}

/**
 * Read the client's answer to the greeting; on an SSLRequest, switch to TLS and read the real one.
 * `upgrade` wraps the socket (with any bytes already read after the SSLRequest) into a TLS server socket.
 */
export async function readHello(phase: ConnectionPhase, offered: number, upgrade: ((early: Buffer) => tls.TLSSocket) | null): Promise<ClientHello> {
  let m = await read(phase);
  phase.lastSeq = m.lastSeq;
  if (m.seq !== 1) throw new ProtocolError(`the handshake response has sequence id ${m.seq}, not 1`, ER.NET_PACKETS_OUT_OF_ORDER);
  const flags = m.payload.length >= 4 ? m.payload.readUInt32LE(0) : 0;
  if (m.payload.length === 32 && flags & CAP.SSL) {
    if (!upgrade) throw new HandshakeRefusal(ER.UNKNOWN_ERROR, 'jit-broker has no TLS configured but the client sent an SSL request');
    phase.io.detach();
    phase.io.attach(upgrade(phase.io.buffered()));
    phase.secure = true;
    m = await read(phase);
    phase.lastSeq = m.lastSeq;
    if (m.seq !== 2) throw new ProtocolError(`the handshake response has sequence id ${m.seq}, not 2`, ER.NET_PACKETS_OUT_OF_ORDER);
  }
  return parseResponse(m.payload, offered);
}

async function exchange(phase: ConnectionPhase, payload: Buffer): Promise<Message> {
  const sent = phase.lastSeq + 1;
  phase.io.socket.write(packet(sent, payload));
  phase.lastSeq = sent;
  const m = await read(phase);
  phase.lastSeq = m.lastSeq;
  if (m.seq !== ((sent + 1) & 0xff)) throw new ProtocolError(`auth packet with sequence id ${m.seq}, not ${(sent + 1) & 0xff}`, ER.NET_PACKETS_OUT_OF_ORDER);
  return m;
}

const cleartext = (b: Buffer): string => {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
};

const NO_RSA =
  'jit-broker: the password is a token, too long to travel RSA-encrypted: connect with TLS (the default of the mariadb and mysql clients; mysql2: ssl option), ' +
  'or on loopback without TLS allow the cleartext plugin (mariadb: --default-auth=mysql_clear_password; mysql: --enable-cleartext-plugin; mysql2: enableCleartextPlugin)';

/** Get the token in clear, by whichever plugin the client can use on this transport. */
export async function readPassword(phase: ConnectionPhase, hello: ClientHello, scramble: Buffer): Promise<string> {
  if (!(hello.capabilities & CAP.PLUGIN_AUTH)) {
    throw new HandshakeRefusal(
      ER.ACCESS_DENIED,
      'jit-broker needs a client with pluggable authentication (the password is a token sent with mysql_clear_password or caching_sha2_password)',
    );
  }
  const scrambleData = Buffer.concat([scramble, Buffer.from([0])]);
  if (hello.plugin === 'mysql_clear_password') return cleartext(hello.authData);
  if (phase.secure) {
    if (hello.plugin === 'sha256_password' && hello.authData.length > 1) return cleartext(hello.authData);
    if (hello.plugin !== 'caching_sha2_password') {
      const switched = await exchange(phase, authSwitchPayload('caching_sha2_password', scrambleData));
      if (switched.payload.length === 1 && switched.payload[0] === 0x02) throw new HandshakeRefusal(ER.ACCESS_DENIED, NO_RSA);
    }
    // Whatever the client's scramble answer, the broker cannot check it: ask for the password itself (inside TLS).
    const full = await exchange(phase, authMoreDataPayload(Buffer.from([0x04])));
    if (full.payload.length === 1 && full.payload[0] === 0x02) throw new HandshakeRefusal(ER.ACCESS_DENIED, NO_RSA);
    return cleartext(full.payload);
  }
  const clear = await exchange(phase, authSwitchPayload('mysql_clear_password', scrambleData));
  return cleartext(clear.payload);
}
