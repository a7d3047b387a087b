// The DataRow rewriter: masked values are written into a new message with the right lengths (in-place
// substitution would desynchronise clients). One allocation per row that changes; a row with nothing to
// mask is not copied at all (the caller sends the bytes it received).
import { REDACTED, type Detection, type Masker } from '../../masking/index.js';
import { maskDetected, maskWhole, spliceValues, type Splice, type TypeKinds, type ValueKind } from './pg-values.js';

/** What to do with one result column. */
export interface ColumnPlan {
  /** A column rule's masker: the whole value is replaced (detectors are then not needed). */
  masker: Masker | null;
  /** Without a masker: whether detectors look into the value. */
  detect: boolean;
  kind: ValueKind;
  binary: boolean;
}

/** What to do with the rows of one result set: null columns are left alone. */
export interface RowPlan {
  columns: readonly (ColumnPlan | null)[];
  detection: Detection | null;
  kinds: TypeKinds;
}

/** `msg` (a whole DataRow message) with the plan's columns masked, or null when nothing changed. */
export function rewriteDataRow(plan: RowPlan, msg: Buffer): Buffer | null {
  const n = msg.readInt16BE(5);
  let pos = 7;
  let splices: Splice[] | null = null;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    const end = pos + 4 + Math.max(0, len);
    const c = plan.columns[i];
    if (c && len >= 0) {
      const out = c.masker
        ? maskWhole(c.kind, c.binary, msg, pos + 4, end, c.masker)
        : c.detect && plan.detection
          ? maskDetected(c.kind, c.binary, msg, pos + 4, end, plan.detection, plan.kinds)
          : undefined;
      if (out !== undefined) (splices ??= []).push({ lenPos: pos, end, out });
    }
    pos = end;
  }
  if (!splices) return null;
  const out = spliceValues(msg, splices);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/**
 * A CopyData message of COPY … TO STDOUT (one row, text or CSV) with what the detectors find replaced,
 * or null when they find nothing. A `null` masker has no NULL to write inside a row: it redacts.
 */
export function rewriteCopyData(d: Detection, msg: Buffer): Buffer | null {
  const r = d.apply(msg.toString('utf8', 5), false, REDACTED);
  if (typeof r !== 'string') return null;
  const len = Buffer.byteLength(r, 'utf8');
  const out = Buffer.allocUnsafe(5 + len);
  out[0] = 0x64; // 'd'
  out.writeInt32BE(4 + len, 1);
  out.write(r, 5, 'utf8');
  return out;
}
