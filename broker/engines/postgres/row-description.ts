// RowDescription ('T') and the result-format codes of Bind ('B'): what the relay must know to read a DataRow.
import { ProtocolError } from './messages.js';

/** One result column as a RowDescription describes it. */
export interface PgColumn {
  name: string;
  /** OID of the table the column comes from, 0 when it is computed (PostgreSQL's resorigtbl). */
  tableOid: number;
  /** Its attribute number in that table (0: a whole-row reference, or none). */
  attnum: number;
  typeOid: number;
  typlen: number;
  typmod: number;
  /** 0 text, 1 binary: the format the values are sent in. */
  format: number;
}

/** The columns of one result set, formats in effect (a Describe of a statement says text; Bind decides). */
export type RowDescription = readonly PgColumn[];

export const NO_COLUMNS: RowDescription = Object.freeze([]);

export function parseRowDescription(body: Buffer): RowDescription {
  if (body.length < 2) throw new ProtocolError('RowDescription too short');
  const n = body.readInt16BE(0);
  const cols: PgColumn[] = new Array<PgColumn>(n);
  let pos = 2;
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, pos);
    if (end < 0 || end + 19 > body.length) throw new ProtocolError('RowDescription shorter than its fields');
    cols[i] = {
      name: body.toString('utf8', pos, end),
      tableOid: body.readUInt32BE(end + 1),
      attnum: body.readInt16BE(end + 5),
      typeOid: body.readUInt32BE(end + 7),
      typlen: body.readInt16BE(end + 11),
      typmod: body.readInt32BE(end + 13),
      format: body.readInt16BE(end + 17),
    };
    pos = end + 19;
  }
  return cols;
}

/** The result-column format codes of a Bind message: [] all text, [f] all f, else one per column. */
export function bindResultFormats(body: Buffer): number[] {
  let pos = body.indexOf(0) + 1; // portal name
  pos = body.indexOf(0, pos) + 1; // statement name
  if (pos <= 0) throw new ProtocolError('Bind: a name is not terminated');
  const nFormats = body.readInt16BE(pos);
  pos += 2 + 2 * nFormats;
  const nParams = body.readInt16BE(pos);
  pos += 2;
  for (let i = 0; i < nParams; i++) {
    const len = body.readInt32BE(pos);
    pos += 4 + Math.max(0, len);
  }
  const nResults = body.readInt16BE(pos);
  pos += 2;
  const out = new Array<number>(nResults);
  for (let i = 0; i < nResults; i++) out[i] = body.readInt16BE(pos + 2 * i);
  return out;
}

/** A statement's description with the formats a Bind asked for (the same object when nothing changes). */
export function withFormats(desc: RowDescription, formats: readonly number[]): RowDescription {
  const f = (i: number) => (formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0));
  if (desc.every((c, i) => c.format === f(i))) return desc;
  return desc.map((c, i) => ({ ...c, format: f(i) }));
}
