// MySQL client/server protocol basics: capability flags, commands, error codes, and the packets the
// broker writes as a server (greeting, OK, ERR, EOF, auth switch) or as a client (handshake response).
// Every packet is a 3-byte little-endian length, a 1-byte sequence id, then the payload; a payload of
// 0xffffff bytes or more continues in the next packet.

export const MAX_PACKET = 0xffffff;

/** Capability flags (the subset the broker names). */
export const CAP = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  NO_SCHEMA: 16,
  COMPRESS: 32,
  LOCAL_FILES: 128,
  IGNORE_SPACE: 256,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  TRANSACTIONS: 8192,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
} as const;

/** Server status flags. */
export const STATUS = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
} as const;

export const COM = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  PROCESS_KILL: 0x0c,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  RESET_CONNECTION: 0x1f,
} as const;

const COMMAND_NAMES: Record<number, string> = {
  0x00: 'COM_SLEEP',
  0x05: 'COM_CREATE_DB',
  0x06: 'COM_DROP_DB',
  0x07: 'COM_REFRESH',
  0x08: 'COM_SHUTDOWN',
  0x09: 'COM_STATISTICS',
  0x0a: 'COM_PROCESS_INFO',
  0x0b: 'COM_CONNECT',
  0x0d: 'COM_DEBUG',
  0x0f: 'COM_TIME',
  0x10: 'COM_DELAYED_INSERT',
  0x12: 'COM_BINLOG_DUMP',
  0x13: 'COM_TABLE_DUMP',
  0x14: 'COM_CONNECT_OUT',
  0x15: 'COM_REGISTER_SLAVE',
  0x1d: 'COM_DAEMON',
  0x1e: 'COM_BINLOG_DUMP_GTID',
  0x20: 'COM_CLONE',
  0xfa: 'COM_STMT_BULK_EXECUTE',
  0xfe: 'COM_MULTI',
};

/** `COM_STATISTICS (0x09)`, for error messages. */
export const commandName = (cmd: number): string => `${COMMAND_NAMES[cmd] ?? 'command'} (0x${cmd.toString(16).padStart(2, '0')})`;

/** Error numbers and their SQLSTATEs, as MySQL sends them. */
export const ER = {
  CON_COUNT_ERROR: [1040, '08004'],
  HANDSHAKE_ERROR: [1043, '08S01'],
  ACCESS_DENIED: [1045, '28000'],
  DBACCESS_DENIED: [1044, '42000'],
  BAD_DB: [1049, '42000'],
  UNKNOWN_COM: [1047, '08S01'],
  SERVER_SHUTDOWN: [1053, '08S01'],
  NO_SUCH_THREAD: [1094, 'HY000'],
  UNKNOWN_ERROR: [1105, 'HY000'],
  NOT_ALLOWED_COMMAND: [1148, '42000'],
  NET_PACKET_TOO_LARGE: [1153, '08S01'],
  NET_PACKETS_OUT_OF_ORDER: [1156, '08S01'],
  SPECIFIC_ACCESS_DENIED: [1227, '42000'],
  UNKNOWN_STMT_HANDLER: [1243, 'HY000'],
  MALFORMED_PACKET: [1835, 'HY000'],
  CONNECTION_KILLED: [1927, '70100'],
  SECURE_TRANSPORT_REQUIRED: [3159, 'HY000'],
} as const satisfies Record<string, readonly [number, string]>;
export type ErrorCode = (typeof ER)[keyof typeof ER];

/** Collation ids of latin1 and binary: their text is decoded byte for byte (latin1), the rest as utf8. */
export const latin1Collation = (id: number): boolean => [5, 8, 15, 31, 47, 48, 49, 94, 63].includes(id);

/** utf8mb4_general_ci: the collation the broker announces (and the one exotic client charsets are replaced by). */
export const UTF8MB4_GENERAL_CI = 45;

/**
 * Collation ids whose character set is one the classifier lexes correctly (utf8mb3, utf8mb4, latin1,
 * ascii, binary: none has a multi-byte character that ends in a backslash or quote byte). The ids a
 * 1-byte handshake field can carry.
 */
export function safeCollation(id: number): boolean {
  return (
    [5, 8, 15, 31, 47, 48, 49, 94, 11, 65, 63, 33, 83, 76, 45, 46, 223, 255].includes(id) ||
    (id >= 192 && id <= 215) || // utf8mb3 unicode collations
    (id >= 224 && id <= 247) // utf8mb4 unicode collations
  );
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    message: string,
    readonly code: ErrorCode = ER.MALFORMED_PACKET,
  ) {
    super(message);
  }
}

/** Frame a payload as one or more packets starting at `seq` (a payload of n·0xffffff bytes ends with an empty packet). */
export function packet(seq: number, payload: Buffer): Buffer {
  if (payload.length < MAX_PACKET) {
    const out = Buffer.allocUnsafe(4 + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, 4);
    return out;
  }
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const n = Math.min(MAX_PACKET, payload.length - off);
    const head = Buffer.allocUnsafe(4);
    head.writeUIntLE(n, 0, 3);
    head[3] = seq++ & 0xff;
    parts.push(head, payload.subarray(off, off + n));
    off += n;
    if (n < MAX_PACKET) break;
  }
  return Buffer.concat(parts);
}

/** How many packets `packet()` makes of a payload of this length. */
export const packetCount = (length: number): number => Math.floor(length / MAX_PACKET) + 1;

export function lenencInt(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(b: Buffer): Buffer {
  return Buffer.concat([lenencInt(b.length), b]);
}

const u16 = (n: number) => {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const nul = (s: string | Buffer) => Buffer.concat([typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from([0])]);

/** Reads a payload front to back; every read past the end is a malformed packet. */
export class PacketReader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new ProtocolError(`truncated packet: ${what} runs past its end`);
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(what = 'a byte'): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what = 'a 2-byte integer'): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what = 'a 4-byte integer'): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number, what = 'a field'): Buffer {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** Length-encoded integer; null for the NULL marker 0xfb. */
  lenenc(what = 'a length-encoded integer'): number | null {
    const first = this.u8(what);
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.u16(what);
    if (first === 0xfd) {
      this.need(3, what);
      const v = this.buf.readUIntLE(this.pos, 3);
      this.pos += 3;
      return v;
    }
    if (first === 0xfe) {
      this.need(8, what);
      const v = Number(this.buf.readBigUInt64LE(this.pos));
      this.pos += 8;
      return v;
    }
    throw new ProtocolError(`invalid length-encoded integer (0x${first.toString(16)}) in ${what}`);
  }
  lenencBytes(what = 'a length-encoded string'): Buffer {
    return this.bytes(this.lenenc(what) ?? 0, what);
  }
  lenencString(what?: string): string {
    return this.lenencBytes(what).toString('utf8');
  }
  /** Bytes up to a NUL (consumed); without one, up to the end when `orEnd`. */
  nulBytes(what = 'a string', orEnd = false): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) {
      if (!orEnd) throw new ProtocolError(`truncated packet: ${what} has no terminating NUL`);
      return this.rest();
    }
    const v = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return v;
  }
  nulString(what?: string, orEnd = false): string {
    return this.nulBytes(what, orEnd).toString('utf8');
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
}

// ---- packets the broker writes as a server ----

export function okPayload(o: { affectedRows?: number; insertId?: number; status: number; warnings?: number; info?: string }): Buffer {
  return Buffer.concat([
    Buffer.from([0x00]),
    lenencInt(o.affectedRows ?? 0),
    lenencInt(o.insertId ?? 0),
    u16(o.status),
    u16(o.warnings ?? 0),
    Buffer.from(o.info ?? '', 'utf8'),
  ]);
}

export function errPayload(code: ErrorCode, message: string): Buffer {
  const [errno, sqlstate] = code;
  return Buffer.concat([Buffer.from([0xff]), u16(errno), Buffer.from(`#${sqlstate}`, 'latin1'), Buffer.from(message, 'utf8')]);
}

export const errPacket = (seq: number, code: ErrorCode, message: string): Buffer => packet(seq, errPayload(code, message));

export function readErr(payload: Buffer): { errno: number; sqlstate: string; message: string } {
  const r = new PacketReader(payload);
  r.u8();
  const errno = r.remaining >= 2 ? r.u16() : 0;
  let sqlstate = 'HY000';
  if (r.remaining >= 6 && payload[r.pos] === 0x23) {
    r.u8();
    sqlstate = r.bytes(5).toString('latin1');
  }
  return { errno, sqlstate, message: r.rest().toString('utf8') };
}

export interface OkInfo {
  affectedRows: number;
  insertId: number;
  status: number;
  warnings: number;
}

export function readOk(payload: Buffer): OkInfo {
  const r = new PacketReader(payload);
  r.u8();
  const affectedRows = r.lenenc('affected rows') ?? 0;
  const insertId = r.lenenc('last insert id') ?? 0;
  const status = r.remaining >= 2 ? r.u16() : 0;
  const warnings = r.remaining >= 2 ? r.u16() : 0;
  return { affectedRows, insertId, status, warnings };
}

/** Status flags of an EOF packet (0xfe, warnings, status). */
export const eofStatus = (payload: Buffer): number => (payload.length >= 5 ? payload.readUInt16LE(3) : 0);

/** An EOF packet (as opposed to a row or a long length-encoded string starting with 0xfe). */
export const isEof = (payload: Buffer): boolean => payload[0] === 0xfe && payload.length < 9;

/** Protocol::HandshakeV10. `scramble` is 20 bytes. */
export function greetingPayload(o: {
  version: string;
  connectionId: number;
  scramble: Buffer;
  capabilities: number;
  collation: number;
  status: number;
  plugin: string;
}): Buffer {
  const caps = o.capabilities >>> 0;
  return Buffer.concat([
    Buffer.from([10]),
    nul(o.version),
    u32(o.connectionId),
    o.scramble.subarray(0, 8),
    Buffer.from([0]),
    u16(caps & 0xffff),
    Buffer.from([o.collation]),
    u16(o.status),
    u16(caps >>> 16),
    Buffer.from([o.scramble.length + 1]),
    Buffer.alloc(10),
    nul(o.scramble.subarray(8)),
    nul(o.plugin),
  ]);
}

export const authSwitchPayload = (plugin: string, data: Buffer): Buffer => Buffer.concat([Buffer.from([0xfe]), nul(plugin), nul(data)]);
export const authMoreDataPayload = (data: Buffer): Buffer => Buffer.concat([Buffer.from([0x01]), data]);

// ---- packets the broker writes as a client ----

export function sslRequestPayload(capabilities: number, collation: number): Buffer {
  return Buffer.concat([u32(capabilities), u32(MAX_PACKET + 1), Buffer.from([collation]), Buffer.alloc(23)]);
}

export function handshakeResponsePayload(o: {
  capabilities: number;
  collation: number;
  user: string;
  authData: Buffer;
  database: string;
  plugin: string;
  attrs: Record<string, string>;
}): Buffer {
  const parts = [sslRequestPayload(o.capabilities, o.collation), nul(o.user)];
  if (o.capabilities & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) parts.push(lenencBytes(o.authData));
  else parts.push(Buffer.from([o.authData.length]), o.authData);
  if (o.capabilities & CAP.CONNECT_WITH_DB) parts.push(nul(o.database));
  if (o.capabilities & CAP.PLUGIN_AUTH) parts.push(nul(o.plugin));
  if (o.capabilities & CAP.CONNECT_ATTRS) {
    const kv = Buffer.concat(Object.entries(o.attrs).flatMap(([k, v]) => [lenencBytes(Buffer.from(k)), lenencBytes(Buffer.from(v))]));
    parts.push(lenencBytes(kv));
  }
  return Buffer.concat(parts);
}

/** A command packet (sequence 0). */
export const command = (cmd: number, body: Buffer | string = Buffer.alloc(0)): Buffer =>
  packet(0, Buffer.concat([Buffer.from([cmd]), typeof body === 'string' ? Buffer.from(body, 'utf8') : body]));
