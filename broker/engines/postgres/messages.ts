// Backend messages the broker writes as a server, and readers for the frontend messages it must look into.
// pg-protocol serializes only frontend messages and parses only backend ones, so the server side is here.

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}

export const authenticationCleartextPassword = (): Buffer => message('R', int32(3));
export const authenticationOk = (): Buffer => message('R', int32(0));
export const parameterStatus = (name: string, value: string): Buffer => message('S', Buffer.concat([cstr(name), cstr(value)]));
export const backendKeyData = (pid: number, secret: number): Buffer => message('K', Buffer.concat([int32(pid), int32(secret)]));
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => message('Z', Buffer.from(status));

export function negotiateProtocolVersion(minor: number, unsupported: string[]): Buffer {
  return message('v', Buffer.concat([int32(minor), int32(unsupported.length), ...unsupported.map(cstr)]));
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse ('E'). */
export function errorResponse(f: ErrorFields): Buffer {
  const parts = [Buffer.from('S'), cstr(f.severity), Buffer.from('V'), cstr(f.severity), Buffer.from('C'), cstr(f.code), Buffer.from('M'), cstr(f.message)];
  if (f.detail) parts.push(Buffer.from('D'), cstr(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstr(f.hint));
  parts.push(Buffer.from([0]));
  return message('E', Buffer.concat(parts));
}

/** Fields of an ErrorResponse or NoticeResponse body, by field code. */
export function readErrorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', i + 1, end));
    i = end + 1;
  }
  return fields;
}

/** A cursor over a message body for reading the frontend messages the broker inspects. */
export class BodyReader {
  private pos = 0;
  constructor(private readonly body: Buffer) {}

  cstring(): string {
    const end = this.body.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError('a string in the message is not terminated');
    const s = this.body.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  int32(): number {
    if (this.pos + 4 > this.body.length) throw new ProtocolError('the message is shorter than its fields');
    const n = this.body.readInt32BE(this.pos);
    this.pos += 4;
    return n;
  }

  byte(): string {
    if (this.pos >= this.body.length) throw new ProtocolError('the message is shorter than its fields');
    return String.fromCharCode(this.body[this.pos++]!);
  }
}

/** Raised for bytes that are not the protocol: closes that one connection with a clear error. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** StartupMessage parameters: pairs of C strings ending in an empty one (any name, `__proto__` too, is a key). */
export function readStartupParams(body: Buffer): Record<string, string> {
  const r = new BodyReader(body);
  const params = Object.create(null) as Record<string, string>;
  for (let guard = 0; guard < 64; guard++) {
    const key = r.cstring();
    if (key === '') return params;
    params[key] = r.cstring();
  }
  throw new ProtocolError('too many startup parameters');
}
