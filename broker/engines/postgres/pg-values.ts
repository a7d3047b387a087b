// PostgreSQL values under masking: which types can carry text, and how a masked value is written back so
// that it is still valid for its type and format (text, or binary where the broker can read it).
//
//   text-like (text, varchar, bpchar, name, char, unknown, xml, enums, citext & other string types):
//              text and binary are the same UTF-8 bytes: masked as text in both formats.
//   json:      masked text is written as a JSON string (`"a***@e***.com"`); jsonb binary has its version byte.
//   bytea:     detectors look into the bytes (hex `\x…` in text format, raw in binary); `email::bytea` is caught.
//   arrays, records (composite types, row()): detectors look at the text form, or walk the binary form.
//   anything else (numbers, dates, uuid, …): never looked into by detectors; a column rule makes it NULL.
//   unknown (a user type the catalog could not classify): text format is treated as text; in binary the
//              broker cannot read it, so when anything must be looked for in it, it is NULL (fail closed).
import type { Detection, Masker } from '../../masking/index.js';

export type ValueKind = 'text' | 'json' | 'jsonb' | 'bytea' | 'array' | 'record' | 'opaque' | 'unknown';

/** OIDs below this are built in (FirstNormalObjectId); user types are classified through the catalog. */
export const FIRST_NORMAL_OID = 16384;

const BUILTIN = new Map<number, ValueKind>([
  [25, 'text'],
  [1043, 'text'],
  [1042, 'text'],
  [19, 'text'],
  [18, 'text'],
  [705, 'text'],
  [142, 'text'],
  [114, 'json'],
  [3802, 'jsonb'],
  [17, 'bytea'],
  [2249, 'record'],
  // arrays of the above: _text _varchar _bpchar _name _char _xml _json _jsonb _bytea _record
  [1009, 'array'],
  [1015, 'array'],
  [1014, 'array'],
  [1003, 'array'],
  [1002, 'array'],
  [143, 'array'],
  [199, 'array'],
  [3807, 'array'],
  [1001, 'array'],
  [2287, 'array'],
]);

/** The kind of a built-in type; undefined for a user-defined one (ask the catalog). */
export function builtinKind(oid: number): ValueKind | undefined {
  return BUILTIN.get(oid) ?? (oid < FIRST_NORMAL_OID ? 'opaque' : undefined);
}

/** Whether values of this kind can carry text (what detectors and `derived` rules look at). */
export const carriesText = (kind: ValueKind): boolean => kind !== 'opaque';

export type TypeKinds = (oid: number) => ValueKind;

/** A field's replacement: text (written as UTF-8) or bytes; null: SQL NULL; undefined: unchanged. */
export type FieldOut = string | Buffer | null | undefined;

const JSONB_VERSION = '\u0001';

function jsonInner(s: string): string {
  if (s.trimStart().startsWith('"')) {
    try {
      const v: unknown = JSON.parse(s);
      if (typeof v === 'string') return v;
    } catch {
      // not a JSON string after all: mask the text as it is
    }
  }
  return s;
}

/** A column rule's masker over a value (bytes start–end of buf). Types that cannot hold the masked text become NULL. */
export function maskWhole(kind: ValueKind, binary: boolean, buf: Buffer, start: number, end: number, m: Masker): FieldOut {
  switch (kind) {
    case 'text':
      return m(buf.toString('utf8', start, end));
    case 'json':
    case 'jsonb': {
      const jsonbBinary = kind === 'jsonb' && binary;
      const r = m(jsonInner(buf.toString('utf8', jsonbBinary ? start + 1 : start, end)));
      if (r === null) return null;
      return jsonbBinary ? JSONB_VERSION + JSON.stringify(r) : JSON.stringify(r);
    }
    default:
      return null;
  }
}

/** Detectors over a value (bytes start–end of buf): what they found replaced, or undefined when nothing was found. */
export function maskDetected(kind: ValueKind, binary: boolean, buf: Buffer, start: number, end: number, d: Detection, kinds: TypeKinds, depth = 0): FieldOut {
  if (depth > 8) return null; // nested deeper than any real schema: fail closed
  switch (kind) {
    case 'text':
      return d.apply(buf.toString('utf8', start, end));
    case 'unknown':
      return binary ? null : d.apply(buf.toString('utf8', start, end));
    case 'json':
      return d.apply(buf.toString('utf8', start, end), true);
    case 'jsonb': {
      if (!binary) return d.apply(buf.toString('utf8', start, end), true);
      if (buf[start] !== 1) return null; // a jsonb binary version this broker does not know
      const r = d.apply(buf.toString('utf8', start + 1, end), true);
      return typeof r === 'string' ? JSONB_VERSION + r : r;
    }
    case 'bytea': {
      // Detected values are ASCII: look at the bytes one character each, write the replacement back the same way.
      if (binary) {
        const r = d.apply(buf.toString('latin1', start, end));
        return typeof r === 'string' ? Buffer.from(r, 'latin1') : r;
      }
      if (buf[start] === 0x5c && buf[start + 1] === 0x78) {
        const r = d.apply(Buffer.from(buf.toString('latin1', start + 2, end), 'hex').toString('latin1'));
        return typeof r === 'string' ? `\\x${Buffer.from(r, 'latin1').toString('hex')}` : r;
      }
      return d.apply(buf.toString('latin1', start, end)); // bytea_output = escape: printable ASCII as is
    }
    case 'array':
      return binary ? walkArray(buf.subarray(start, end), d, kinds, depth) : d.apply(buf.toString('utf8', start, end));
    case 'record':
      return binary ? walkRecord(buf.subarray(start, end), d, kinds, depth) : d.apply(buf.toString('utf8', start, end));
    case 'opaque':
      return undefined;
  }
}

/** A value replaced inside a buffer of length-prefixed values: `lenPos` is where its int32 length is. */
export interface Splice {
  lenPos: number;
  /** End of the old value's bytes. */
  end: number;
  out: string | Buffer | null;
}

/** Bytes src[from, to) into dst at `at`; short runs by hand (Buffer#copy costs more than it moves there). */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > 48) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return n;
}

/** `s` (of UTF-8 length `len`) into dst at `at`; short ASCII by hand. */
function writeText(s: string, len: number, dst: Buffer, at: number): void {
  if (len !== s.length || len > 48) {
    dst.write(s, at, 'utf8');
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = s.charCodeAt(i);
}

/** `buf` with the splices applied (in order, non-overlapping), in one allocation; each new length written. */
export function spliceValues(buf: Buffer, splices: readonly Splice[]): Buffer {
  let size = buf.length;
  const sizes = new Array<number>(splices.length);
  for (let i = 0; i < splices.length; i++) {
    const s = splices[i]!;
    const o = s.out;
    const n = o === null ? 0 : typeof o === 'string' ? Buffer.byteLength(o, 'utf8') : o.length;
    sizes[i] = n;
    size += n - (s.end - s.lenPos - 4);
  }
  const out = Buffer.allocUnsafe(size);
  let src = 0;
  let dst = 0;
  for (let i = 0; i < splices.length; i++) {
    const s = splices[i]!;
    dst += copyBytes(buf, src, s.lenPos, out, dst);
    if (s.out === null) {
      dst = out.writeInt32BE(-1, dst);
    } else {
      const n = sizes[i]!;
      dst = out.writeInt32BE(n, dst);
      if (typeof s.out === 'string') writeText(s.out, n, out, dst);
      else s.out.copy(out, dst);
      dst += n;
    }
    src = s.end;
  }
  copyBytes(buf, src, buf.length, out, dst);
  return out;
}

/** Binary array: ndim, has-null flag, element OID, (size, lower bound) per dimension, then length-prefixed elements. */
function walkArray(buf: Buffer, d: Detection, kinds: TypeKinds, depth: number): FieldOut {
  if (buf.length < 12) return undefined;
  const ndim = buf.readInt32BE(0);
  const elemKind = kinds(buf.readUInt32BE(8));
  if (!carriesText(elemKind) || ndim <= 0) return undefined;
  let count = 1;
  for (let i = 0; i < ndim; i++) count *= buf.readInt32BE(12 + 8 * i);
  let pos = 12 + 8 * ndim;
  const splices: Splice[] = [];
  for (let i = 0; i < count; i++) {
    const len = buf.readInt32BE(pos);
    const start = pos + 4;
    pos = start + Math.max(0, len);
    if (len < 0) continue;
    const r = maskDetected(elemKind, true, buf, start, pos, d, kinds, depth + 1);
    if (r !== undefined) splices.push({ lenPos: start - 4, end: pos, out: r });
  }
  if (!splices.length) return undefined;
  const out = spliceValues(buf, splices);
  if (splices.some((s) => s.out === null)) out.writeInt32BE(1, 4); // the array now has NULLs
  return out;
}

/** Binary record (composite types, row()): field count, then (type OID, length-prefixed value) per field. */
function walkRecord(buf: Buffer, d: Detection, kinds: TypeKinds, depth: number): FieldOut {
  if (buf.length < 4) return undefined;
  const n = buf.readInt32BE(0);
  let pos = 4;
  const splices: Splice[] = [];
  for (let i = 0; i < n; i++) {
    const kind = kinds(buf.readUInt32BE(pos));
    const len = buf.readInt32BE(pos + 4);
    const start = pos + 8;
    pos = start + Math.max(0, len);
    if (len < 0 || !carriesText(kind)) continue;
    const r = maskDetected(kind, true, buf, start, pos, d, kinds, depth + 1);
    if (r !== undefined) splices.push({ lenPos: start - 4, end: pos, out: r });
  }
  return splices.length ? spliceValues(buf, splices) : undefined;
}
