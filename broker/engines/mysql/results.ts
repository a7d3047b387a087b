// Result sets as they pass from the server to the client: column definitions parsed, and THE MASKING SEAM.
//
// Masking plugs in here: each connection builds its session's `ResultSetHook` from `deps.masking.forSession(identity,
// target)` (masking.ts), as the Postgres engine builds its own. The hook sees every result set's parsed columns
// (schema, table, org_table, org_name, type, …; a column's origin is { schema, table: orgTable, column: orgName })
// with the statement and its decision (an `exemptMasking` one is left alone), and may return a
// `RowRewriter`; each row of that result set (text protocol rows of COM_QUERY, binary protocol rows of
// COM_STMT_EXECUTE and COM_STMT_FETCH) is then handed to it as one whole logical payload, and what it
// returns is re-framed (lengths, and sequence ids of every later packet of the response) by `Responses`
// (responses.ts). Without a rewriter rows are forwarded as the server sent them, large ones streamed once the
// statement's result sample (sample.ts) has what it keeps.
import type { Decision } from '../../types.js';
import { lenencInt, PacketReader } from './protocol.js';

export interface ColumnDefinition {
  catalog: string;
  /** Database the column's table is in (`schema`), as the server names it. */
  schema: string;
  /** Table alias as written in the query. */
  table: string;
  /** The real table. */
  orgTable: string;
  /** Column alias as written in the query. */
  name: string;
  /** The real column. */
  orgName: string;
  /** Collation id of the column's values. */
  characterSet: number;
  columnLength: number;
  /** MYSQL_TYPE_* (0xfd VAR_STRING, 0xfe STRING, 0xfc BLOB, 3 LONG, …). */
  type: number;
  flags: number;
  decimals: number;
}

/** Protocol::ColumnDefinition41. */
export function parseColumnDefinition(payload: Buffer): ColumnDefinition {
  const r = new PacketReader(payload);
  const catalog = r.lenencString('catalog');
  const schema = r.lenencString('schema');
  const table = r.lenencString('table');
  const orgTable = r.lenencString('org_table');
  const name = r.lenencString('name');
  const orgName = r.lenencString('org_name');
  r.lenenc('fixed-length fields length');
  const characterSet = r.u16('character set');
  const columnLength = r.u32('column length');
  const type = r.u8('column type');
  const flags = r.u16('column flags');
  const decimals = r.u8('decimals');
  return { catalog, schema, table, orgTable, name, orgName, characterSet, columnLength, type, flags, decimals };
}

export interface ResultSetContext {
  /** The statement whose result this is (the prepared SQL for an EXECUTE or a FETCH). */
  sql: string;
  /** The decision it ran under (`exemptMasking`: its result is not masked). */
  decision: Decision | null;
  /** `text`: COM_QUERY rows (length-encoded strings, 0xfb for NULL); `binary`: prepared-statement rows (0x00, NULL bitmap, typed values). */
  format: 'text' | 'binary';
  columns: ColumnDefinition[];
}

/** Rewrites one row's logical payload (without packet headers); returns the new payload. */
export type RowRewriter = (row: Buffer) => Buffer;

/** Called once per result set; null leaves its rows untouched. */
export type ResultSetHook = (ctx: ResultSetContext) => RowRewriter | null;

/** Reads the values of a text-protocol row: strings, or null for SQL NULL. A helper for row rewriters. */
export function readTextRow(row: Buffer, columns: number): (Buffer | null)[] {
  const r = new PacketReader(row);
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < columns; i++) {
    const n = r.lenenc('row value');
    out.push(n === null ? null : r.bytes(n, 'row value'));
  }
  return out;
}

/** Encodes a text-protocol row (the inverse of readTextRow). */
export function writeTextRow(values: readonly (Buffer | null)[]): Buffer {
  return Buffer.concat(values.flatMap((v) => (v === null ? [Buffer.from([0xfb])] : [lenencInt(v.length), v])));
}
