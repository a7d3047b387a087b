// Masking for one MySQL session, through the result-row seam (results.ts). A column's origin is what the
// server says in its column definition ({ schema, table: org_table, column: org_name }); a column rule
// naming it masks the column. Detectors look into the values of every string-typed column (an expression,
// `CONCAT(email, '')`, has no origin and is found by them). Policy (which rule, which masker) is in
// broker/masking; this file knows text and binary protocol rows.
//
// Values the maskers cannot write back as the column's type (a column rule on a number or a date) are sent
// as NULL, in both protocols: a masked value is never sent where a client would parse it as something else.
import type { Detection, Masker, SessionMasking } from '../../masking/index.js';
import { lenencInt, PacketReader, ProtocolError } from './protocol.js';
import type { ColumnDefinition, ResultSetContext, ResultSetHook, RowRewriter } from './results.js';
import { binarySize, isStringType, T } from './values.js';

/** What masking does to one column of a result set. */
interface ColumnPlan {
  /** Its column rule's masker; `toNull`: the column's type cannot carry the masked text. */
  masker: Masker | null;
  toNull: boolean;
  /** Run the detectors over its values. */
  detect: boolean;
  json: boolean;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Text of a value: UTF-8 when it is valid UTF-8, else bytes as latin1 (so what is not found comes back byte for byte). */
function decode(v: Buffer): { text: string; enc: 'utf8' | 'latin1' } {
  try {
    return { text: utf8Decoder.decode(v), enc: 'utf8' };
  } catch {
    return { text: v.toString('latin1'), enc: 'latin1' };
  }
}

/** The masked bytes of a string value; undefined: unchanged; null: SQL NULL. */
function maskValue(v: Buffer, p: ColumnPlan, detection: Detection | null): Buffer | null | undefined {
  if (p.toNull) return null;
  if (p.masker) {
    const m = p.masker(v.toString('utf8'));
    return m === null ? null : Buffer.from(m, 'utf8');
  }
  if (p.detect && detection) {
    const { text, enc } = decode(v);
    const m = detection.apply(text, p.json);
    if (m === undefined) return undefined;
    return m === null ? null : Buffer.from(m, enc);
  }
  return undefined;
}

export function planColumns(rules: SessionMasking, columns: readonly ColumnDefinition[]): ColumnPlan[] | null {
  let any = false;
  const plans = columns.map((c): ColumnPlan => {
    const text = isStringType(c.type);
    const hasOrigin = c.orgTable !== '' && c.orgName !== '';
    let masker: Masker | null = null;
    if (hasOrigin) masker = rules.columnMasker([{ schema: c.schema.toLowerCase(), table: c.orgTable.toLowerCase(), column: c.orgName.toLowerCase() }]);
    else if (rules.derived && text) masker = rules.derived;
    const toNull = masker !== null && !text;
    const detect = masker === null && text && rules.detection !== null;
    if (masker || detect) any = true;
    return { masker: toNull ? null : masker, toNull, detect, json: c.type === T.JSON };
  });
  return any ? plans : null;
}

/** Text protocol row: every value a length-encoded string, 0xfb for NULL. */
function textRewriter(plans: readonly ColumnPlan[], detection: Detection | null): RowRewriter {
  return (row) => {
    const r = new PacketReader(row);
    const parts: Buffer[] = [];
    let from = 0;
    let changed = false;
    for (const p of plans) {
      const start = r.pos;
      const n = r.lenenc('row value');
      if (n === null) continue;
      const v = r.bytes(n, 'row value');
      if (!p.masker && !p.toNull && !p.detect) continue;
      const m = maskValue(v, p, detection);
      if (m === undefined) continue;
      changed = true;
      parts.push(row.subarray(from, start), m === null ? Buffer.from([0xfb]) : Buffer.concat([lenencInt(m.length), m]));
      from = r.pos;
    }
    if (!changed) return row;
    parts.push(row.subarray(from));
    return Buffer.concat(parts);
  };
}

/** Binary protocol row: 0x00, the NULL bitmap (bit i + 2 for column i), then the values of the columns not NULL. */
function binaryRewriter(plans: readonly ColumnPlan[], types: readonly number[], detection: Detection | null): RowRewriter {
  const bitmapLen = Math.floor((plans.length + 7 + 2) / 8);
  return (row) => {
    if (row[0] !== 0x00) throw new ProtocolError('a binary result row does not start with 0x00');
    const r = new PacketReader(row);
    r.pos = 1 + bitmapLen;
    if (r.pos > row.length) throw new ProtocolError('truncated packet: the NULL bitmap runs past its end');
    let bitmap: Buffer | null = null;
    const parts: Buffer[] = [];
    let from = r.pos;
    for (let i = 0; i < plans.length; i++) {
      const bit = i + 2;
      if (row[1 + (bit >> 3)]! & (1 << (bit & 7))) continue; // NULL: no value
      const p = plans[i]!;
      const start = r.pos;
      const size = binarySize(types[i]!);
      let v: Buffer | null = null;
      if (size === 'lenenc') v = r.bytes(r.lenenc('row value') ?? 0, 'row value');
      else if (size === 'len1') r.bytes(r.u8('row value'), 'row value');
      else r.bytes(size, 'row value');
      if (!p.masker && !p.toNull && !p.detect) continue;
      const m = p.toNull ? null : v === null ? undefined : maskValue(v, p, detection);
      if (m === undefined) continue;
      parts.push(row.subarray(from, start));
      if (m === null) {
        bitmap ??= Buffer.from(row.subarray(1, 1 + bitmapLen));
        bitmap[bit >> 3]! |= 1 << (bit & 7);
      } else {
        parts.push(lenencInt(m.length), m);
      }
      from = r.pos;
    }
    if (!parts.length) return row;
    parts.push(row.subarray(from));
    return Buffer.concat([Buffer.from([0x00]), bitmap ?? row.subarray(1, 1 + bitmapLen), ...parts]);
  };
}

/** The result-set hook of one session: its masking rules (EngineDeps.masking.forSession) on every result set. */
export function mysqlResultSets(rules: SessionMasking): ResultSetHook {
  return (ctx: ResultSetContext) => {
    // Break-glass: every statement of the text is decided by an `exempt_masking` policy rule.
    if (ctx.decision?.exemptMasking) return null;
    const plans = planColumns(rules, ctx.columns);
    if (!plans) return null;
    return ctx.format === 'text'
      ? textRewriter(plans, rules.detection)
      : binaryRewriter(
          plans,
          ctx.columns.map((c) => c.type),
          rules.detection,
        );
  };
}
