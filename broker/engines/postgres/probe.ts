// The broker's own queries on a session's upstream connection (the blast-radius estimate, estimate.ts), sent while
// the client has nothing in flight: the relay hands every answer up to the probe's last ReadyForQuery here instead
// of to the client (a notification or a parameter change still goes to the client, as it would anyway), then goes
// back to relaying. What the client sends meanwhile goes upstream after the probe, so its answers follow the
// probe's: the order of the wire keeps the two apart.
//
// A step is one answer group, ending in ReadyForQuery: a simple Query, or an extended-protocol
// Parse/Bind/Execute/Sync of one statement under the broker's own names (one statement only, with its
// parameters; the client's unnamed statement and portal are left alone), or a Close of that name and a Sync.
import { serialize } from 'pg-protocol';
import { readErrorFields } from './messages.js';

/** The broker's own statement and portal name (the client's names are never touched). */
export const PROBE_NAME = 'jitbroker_estimate';

export type ProbeStep = { query: string } | { statement: string; params?: string[] } | { close: true };

/** One step's answer: its rows (text), or the error that ended it. */
export interface ProbeAnswer {
  rows: (string | null)[][];
  error: string | null;
}

export class UpstreamProbe {
  readonly bytes: Buffer;
  private readonly answers: ProbeAnswer[] = [];
  private current: ProbeAnswer = { rows: [], error: null };
  private resolve!: (a: ProbeAnswer[] | null) => void;
  /** Every step's answer, in order; null when the connection ended first. */
  readonly done = new Promise<ProbeAnswer[] | null>((r) => (this.resolve = r));

  constructor(private readonly steps: readonly ProbeStep[]) {
    this.bytes = Buffer.concat(steps.map(encode));
  }

  /** Whether an upstream message belongs to the probe (anything but a notification or a parameter change). */
  wants(type: string): boolean {
    return type !== 'A' && type !== 'S';
  }

  /** One of the probe's messages; true once its last answer came (what follows is the client's). */
  take(type: string, msg: Buffer): boolean {
    if (type === 'D') this.current.rows.push(dataRow(msg));
    else if (type === 'E') this.current.error ??= readErrorFields(msg.subarray(5)).get('M') ?? 'error';
    else if (type === 'Z') {
      this.answers.push(this.current);
      this.current = { rows: [], error: null };
      if (this.answers.length === this.steps.length) {
        this.resolve(this.answers);
        return true;
      }
    }
    return false;
  }

  /** The connection ended: no answers. */
  cancel(): void {
    this.resolve(null);
  }
}

function encode(step: ProbeStep): Buffer {
  if ('query' in step) return serialize.query(step.query);
  if ('close' in step) return Buffer.concat([serialize.close({ type: 'S', name: PROBE_NAME }), serialize.sync()]);
  return Buffer.concat([
    serialize.parse({ name: PROBE_NAME, text: step.statement }),
    serialize.bind({ portal: PROBE_NAME, statement: PROBE_NAME, values: step.params ?? [] }),
    serialize.execute({ portal: PROBE_NAME }),
    serialize.close({ type: 'P', name: PROBE_NAME }),
    serialize.close({ type: 'S', name: PROBE_NAME }),
    serialize.sync(),
  ]);
}

/** A DataRow's values as text (the probe binds with text results). */
function dataRow(msg: Buffer): (string | null)[] {
  const n = msg.readInt16BE(5);
  const out: (string | null)[] = [];
  let at = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(at);
    at += 4;
    if (len < 0) out.push(null);
    else {
      out.push(msg.toString('utf8', at, at + len));
      at += len;
    }
  }
  return out;
}
