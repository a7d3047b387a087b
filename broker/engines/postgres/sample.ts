// The wire side of the result sample: the relay hands the tap each DataRow exactly as it sends it to the
// client (after masking) with the RowDescription that describes it; the tap decodes it into the session's
// ResultRecorder of the statement (broker/audit), and gives the sample back when the statement finishes.
// One tap per relay: rows always belong to the statement at the head of its queue.
//
//   this.sample = new PgResultTap(() => session.recorder());
//   this.sample.row(row, desc);            // each DataRow as sent, while `this.sample.wants`
//   const sample = this.sample.take();     // finish(p), first line (before the record check)
//   this.session.complete(p.record, { durationMs, tag, rows, error }, sample);
//
// With sampling off (`audit.sample_rows: 0`) the session gives no recorder and the tap does nothing; past the
// bounds rows are only counted, never decoded.
import type { ResultRecorder, ResultSample, SampleColumn, SampleValue } from '../../audit/types.js';

/** A column as a RowDescription describes it: parsed by the caller (pg-protocol's Field fits), or raw bytes. */
export interface PgColumnDescription {
  name: string;
  /** Type OID (pg-protocol names it dataTypeID). */
  typeOid?: number;
  dataTypeID?: number;
  /** 0 / 'text' or 1 / 'binary'. */
  format?: number | 'text' | 'binary';
}

/** A RowDescription: its body (or whole message), or its columns already parsed. */
export type PgRowDescription = Buffer | readonly PgColumnDescription[];

const DATA_ROW = 0x44; // 'D'
const ROW_DESCRIPTION = 0x54; // 'T'

export class PgResultTap {
  /** The recorder of the statement whose rows are coming (asked for at its first row). */
  private rec: ResultRecorder | null;
  /** Whether samples are taken at all (`audit` bounds above 0): the relay then shows the tap its rows. */
  readonly enabled: boolean;
  /** The description the current result set's rows came with (compared by reference, then by content). */
  private desc: PgRowDescription | null = null;
  private formats: readonly number[] = [];

  /** `recorder`: the session's, one per statement (null: sampling is off). */
  constructor(private readonly recorder: () => ResultRecorder | null) {
    this.rec = recorder();
    this.enabled = this.rec !== null;
  }

  /**
   * Whether the next DataRow of the current statement is still of use. False once the sample is complete
   * and a row past it was seen (so it is known to be truncated): the relay may then forward the rest of
   * the statement's rows without looking at them. True again after take().
   */
  get wants(): boolean {
    return this.enabled && (this.rec?.wants ?? true);
  }

  /**
   * One DataRow as sent to the client: its body, or the whole message ('D' + length + body).
   * `formats`: the result-format codes of the Bind that ran it, when the description's own codes
   * are not the ones in effect (a RowDescription answering Describe of a statement says text for all).
   */
  row(dataRow: Buffer, desc: PgRowDescription, formats?: readonly number[]): void {
    if (!this.enabled) return;
    const r = (this.rec ??= this.recorder());
    if (!r) return;
    if (desc !== this.desc) this.describe(r, desc, formats);
    // Past a bound the recorder only counts: the row is not looked into.
    if (!r.accepting) return r.row(null);
    const values = dataRowValues(isMessage(dataRow, DATA_ROW) ? dataRow.subarray(5) : dataRow, this.formats);
    if (values) r.row(values);
  }

  /** The sample of the statement that just finished (null: no rows, or sampling off); the next one starts afresh. */
  take(): ResultSample | null {
    const r = this.rec;
    this.rec = null;
    this.desc = null;
    this.formats = [];
    return r?.done() ?? null;
  }

  private describe(r: ResultRecorder, desc: PgRowDescription, formats: readonly number[] | undefined): void {
    const previous = this.desc;
    this.desc = desc;
    // The same description again (a caller that re-parses it per row): the same result set.
    if (previous !== null && sameDescription(previous, desc)) return;
    const columns = describeColumns(desc);
    this.formats = formats ?? columns.map((c) => c.format);
    r.columns(columns);
  }
}

/**
 * The values of a DataRow body (what follows its 5-byte header) in the formats the client asked for (Bind's
 * result-format codes: none = all text, one = for every column, else one per column): text values as their
 * UTF-8 bytes, binary ones as bytes shown in hex, left undecoded for the recorder. Null: a malformed row.
 */
export function dataRowValues(body: Buffer, formats: readonly number[]): SampleValue[] | null {
  if (body.length < 2) return null;
  const n = body.readInt16BE(0);
  if (n < 0) return null;
  const values = new Array<SampleValue>(n);
  let pos = 2;
  for (let i = 0; i < n; i++) {
    if (pos + 4 > body.length) return null;
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      values[i] = null;
      continue;
    }
    if (pos + len > body.length) return null;
    const v = body.subarray(pos, pos + len);
    values[i] = (formats.length === 1 ? formats[0] : formats[i]) === 1 ? { hex: v } : v;
    pos += len;
  }
  return values;
}

function isMessage(buf: Buffer, type: number): boolean {
  // A body starts with an int16 count of at most 1664 columns, never with 'D'/'T' (≥ 0x4400): no ambiguity.
  return buf.length >= 5 && buf[0] === type && buf.readInt32BE(1) === buf.length - 1;
}

function sameDescription(a: PgRowDescription, b: PgRowDescription): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return a.length === b.length && a.every((c, i) => c.name === b[i]!.name && typeOid(c) === typeOid(b[i]!) && format(c) === format(b[i]!));
}

const typeOid = (c: PgColumnDescription) => c.typeOid ?? c.dataTypeID ?? 0;
const format = (c: PgColumnDescription) => (c.format === 'binary' || c.format === 1 ? 1 : 0);

/** Columns of a RowDescription; a malformed one yields the columns read before the fault. */
export function describeColumns(desc: PgRowDescription): (SampleColumn & { format: number })[] {
  if (!Buffer.isBuffer(desc)) return desc.map((c) => ({ name: c.name, type: pgTypeName(typeOid(c)), format: format(c) }));
  const body = isMessage(desc, ROW_DESCRIPTION) ? desc.subarray(5) : desc;
  const out: (SampleColumn & { format: number })[] = [];
  if (body.length < 2) return out;
  const n = body.readInt16BE(0);
  let pos = 2;
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, pos);
    if (end < 0 || end + 19 > body.length) break;
    const name = body.toString('utf8', pos, end);
    // table OID (4), column attnum (2), type OID (4), type size (2), type modifier (4), format (2)
    const oid = body.readUInt32BE(end + 7);
    const fmt = body.readInt16BE(end + 17);
    out.push({ name, type: pgTypeName(oid), format: fmt === 1 ? 1 : 0 });
    pos = end + 19;
  }
  return out;
}

// The built-in types a replay is most likely to show; any other type is recorded by its OID.
const PG_TYPES: Record<number, string> = {
  16: 'bool',
  17: 'bytea',
  18: 'char',
  19: 'name',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  26: 'oid',
  114: 'json',
  142: 'xml',
  700: 'float4',
  701: 'float8',
  790: 'money',
  869: 'inet',
  650: 'cidr',
  829: 'macaddr',
  1042: 'bpchar',
  1043: 'varchar',
  1082: 'date',
  1083: 'time',
  1114: 'timestamp',
  1184: 'timestamptz',
  1186: 'interval',
  1266: 'timetz',
  1560: 'bit',
  1562: 'varbit',
  1700: 'numeric',
  2950: 'uuid',
  3802: 'jsonb',
  3614: 'tsvector',
  1000: '_bool',
  1005: '_int2',
  1007: '_int4',
  1016: '_int8',
  1009: '_text',
  1015: '_varchar',
  2951: '_uuid',
  3807: '_jsonb',
};

export function pgTypeName(oid: number): string {
  return PG_TYPES[oid] ?? String(oid);
}
