// The wire side of the result sample: each row of a statement's result sets, as sent to the client (after
// masking), decoded into the session's ResultRecorder of the statement (broker/audit) — text-protocol rows
// (COM_QUERY) and binary-protocol rows (COM_STMT_EXECUTE) alike, as the text protocol would show them.
// Responses (responses.ts) holds one tap per recorded statement and gives its sample to the session at the end.
import type { ResultRecorder, ResultSample, SampleColumn, SampleValue } from '../../audit/types.js';
import { PacketReader } from './protocol.js';
import type { ColumnDefinition } from './results.js';
import { binarySize, isStringType, T } from './values.js';

/** Column flag: an integer column is unsigned. */
const UNSIGNED = 0x20;
/** Collation id of binary strings (BLOB, VARBINARY, BINARY) — and of numbers and dates. */
const BINARY_COLLATION = 63;

/** One statement's sample: its rows, as the client received them, into the session's recorder. */
export class MysqlResultTap {
  private columns: readonly ColumnDefinition[] = [];
  private format: 'text' | 'binary' = 'text';

  constructor(
    private readonly rec: ResultRecorder,
    /** How the client's text is encoded (its handshake character set). */
    private readonly encoding: 'utf8' | 'latin1',
  ) {}

  /** Whether rows are still of use: false once the sample is complete and known to be truncated. */
  get wants(): boolean {
    return this.rec.wants;
  }

  /** A result set starts (after rows were kept, a later one is only counted). */
  begin(columns: readonly ColumnDefinition[], format: 'text' | 'binary'): void {
    this.columns = columns;
    this.format = format;
    this.rec.columns(columns.map(sampleColumn));
  }

  /** One row's payload as sent to the client. A row the broker cannot read is left out of the sample. */
  row(payload: Buffer): void {
    // Past a bound the recorder only counts: the row is not looked into.
    if (!this.rec.accepting) return this.rec.row(null);
    let values: SampleValue[];
    try {
      values = this.format === 'text' ? textRowValues(payload, this.columns, this.encoding) : binaryRowValues(payload, this.columns, this.encoding);
    } catch {
      return;
    }
    this.rec.row(values);
  }

  /** The statement has finished: its sample (null: no rows). */
  done(): ResultSample | null {
    return this.rec.done();
  }
}

const TYPE_NAMES: Record<number, string> = {
  [T.DECIMAL]: 'decimal',
  [T.TINY]: 'tinyint',
  [T.SHORT]: 'smallint',
  [T.LONG]: 'int',
  [T.FLOAT]: 'float',
  [T.DOUBLE]: 'double',
  [T.NULL]: 'null',
  [T.TIMESTAMP]: 'timestamp',
  [T.LONGLONG]: 'bigint',
  [T.INT24]: 'mediumint',
  [T.DATE]: 'date',
  [T.TIME]: 'time',
  [T.DATETIME]: 'datetime',
  [T.YEAR]: 'year',
  [T.NEWDATE]: 'date',
  [T.VARCHAR]: 'varchar',
  [T.BIT]: 'bit',
  [T.TIMESTAMP2]: 'timestamp',
  [T.DATETIME2]: 'datetime',
  [T.TIME2]: 'time',
  [T.JSON]: 'json',
  [T.NEWDECIMAL]: 'decimal',
  [T.ENUM]: 'enum',
  [T.SET]: 'set',
  [T.TINY_BLOB]: 'text',
  [T.MEDIUM_BLOB]: 'text',
  [T.LONG_BLOB]: 'text',
  [T.BLOB]: 'text',
  [T.VAR_STRING]: 'varchar',
  [T.STRING]: 'char',
  [T.GEOMETRY]: 'geometry',
};

/** Whether a column's values are bytes rather than text (binary strings, BIT, GEOMETRY): a sample shows them in hex. */
function isBytes(c: ColumnDefinition): boolean {
  return c.type === T.BIT || c.type === T.GEOMETRY || (isStringType(c.type) && c.type !== T.JSON && c.characterSet === BINARY_COLLATION);
}

/** A result column as a sample names it: its name as the client sees it, and its type (`varbinary`, `blob`: binary strings). */
export function sampleColumn(c: ColumnDefinition): SampleColumn {
  let type = TYPE_NAMES[c.type] ?? String(c.type);
  if (isBytes(c) && isStringType(c.type)) type = type === 'text' ? 'blob' : type === 'char' ? 'binary' : 'varbinary';
  return { name: c.name, type };
}

/**
 * The values of a text-protocol row (every value a length-encoded string, 0xfb for NULL): text as it came (UTF-8
 * bytes, or decoded from latin1), binary strings in hex. Throws on a malformed row.
 */
export function textRowValues(row: Buffer, columns: readonly ColumnDefinition[], encoding: 'utf8' | 'latin1'): SampleValue[] {
  const r = new PacketReader(row);
  return columns.map((c) => {
    const n = r.lenenc('row value');
    if (n === null) return null;
    const v = r.bytes(n, 'row value');
    if (isBytes(c)) return { hex: v };
    return encoding === 'utf8' ? v : v.toString('latin1');
  });
}

/**
 * The values of a binary-protocol row (0x00, the NULL bitmap, then typed values), as the text protocol would have
 * shown them: numbers, dates and times as text, strings as in textRowValues. Throws on a malformed row.
 */
export function binaryRowValues(row: Buffer, columns: readonly ColumnDefinition[], encoding: 'utf8' | 'latin1'): SampleValue[] {
  const bitmapLen = Math.floor((columns.length + 7 + 2) / 8);
  const r = new PacketReader(row);
  r.pos = 1 + bitmapLen;
  return columns.map((c, i) => {
    const bit = i + 2;
    if (row[1 + (bit >> 3)]! & (1 << (bit & 7))) return null;
    const size = binarySize(c.type);
    if (size === 'lenenc') {
      const v = r.bytes(r.lenenc('row value') ?? 0, 'row value');
      if (isBytes(c)) return { hex: v };
      return encoding === 'utf8' ? v : v.toString('latin1');
    }
    if (size === 'len1') return temporal(c, r.bytes(r.u8('row value'), 'row value'));
    return number(c, r.bytes(size, 'row value'));
  });
}

function number(c: ColumnDefinition, b: Buffer): string | null {
  const unsigned = (c.flags & UNSIGNED) !== 0;
  switch (c.type) {
    case T.TINY:
      return String(unsigned ? b.readUInt8(0) : b.readInt8(0));
    case T.SHORT:
      return String(unsigned ? b.readUInt16LE(0) : b.readInt16LE(0));
    case T.YEAR:
      return String(b.readUInt16LE(0)).padStart(4, '0');
    case T.LONG:
    case T.INT24:
      return String(unsigned ? b.readUInt32LE(0) : b.readInt32LE(0));
    case T.LONGLONG:
      return String(unsigned ? b.readBigUInt64LE(0) : b.readBigInt64LE(0));
    // FLOAT carries about 7 significant digits: shown as the server shows it, not as the nearest double.
    case T.FLOAT:
      return real(Number(b.readFloatLE(0).toPrecision(6)));
    case T.DOUBLE:
      return real(b.readDoubleLE(0));
    default:
      return null; // MYSQL_TYPE_NULL
  }
}

/** A float as the server writes it: the shortest text that reads back the same, exponents without `+` (2.5e100). */
const real = (n: number) => String(n).replace('e+', 'e');

const two = (n: number) => String(n).padStart(2, '0');

/** DATE, DATETIME, TIMESTAMP (year, month, day[, hour, minute, second[, microseconds]]) and TIME (sign, days, hours, …). */
function temporal(c: ColumnDefinition, b: Buffer): string {
  const fraction = (micro: number) => (c.decimals > 0 && c.decimals <= 6 ? `.${String(micro).padStart(6, '0').slice(0, c.decimals)}` : '');
  if (c.type === T.TIME || c.type === T.TIME2) {
    if (b.length < 8) return `00:00:00${fraction(0)}`;
    const hours = b.readUInt32LE(1) * 24 + b[5]!;
    return `${b[0] ? '-' : ''}${two(hours)}:${two(b[6]!)}:${two(b[7]!)}${fraction(b.length >= 12 ? b.readUInt32LE(8) : 0)}`;
  }
  const [y, mo, d] = b.length >= 4 ? [b.readUInt16LE(0), b[2]!, b[3]!] : [0, 0, 0];
  const date = `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}`;
  if (c.type === T.DATE || c.type === T.NEWDATE) return date;
  const [h, mi, s] = b.length >= 7 ? [b[4]!, b[5]!, b[6]!] : [0, 0, 0];
  return `${date} ${two(h)}:${two(mi)}:${two(s)}${fraction(b.length >= 11 ? b.readUInt32LE(7) : 0)}`;
}
