// How both relays handle a client's messages: strictly in order, a statement awaiting its decision
// holding the ones after it. What goes upstream is held (writer.ts) until the messages at hand are all handled:
// a pipelined batch leaves in one write, even when its statements wait a turn each for their audit records.
// What goes to the client leaves at the end of each turn: nothing of it waits behind a statement's decision.
import type net from 'node:net';
import type { Wire } from './writer.js';

/**
 * While a statement waits for a slow answer (held for review), the client is still read, so that a
 * client hanging up is noticed (its session then cancels the request), up to this many bytes buffered.
 */
export const HOLD_BACKLOG = 1024 * 1024;

export interface InOrderHost<M> {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** The relay's outboxes to the client and to the upstream. */
  readonly wire: Wire;
  /** The next whole client message, or null. */
  next(): M | null;
  ended(): boolean;
  /** Client bytes received and not yet handled. */
  buffered(): number;
  /** Handle one message; a promise when it must wait (its audit record, or a decision). */
  handle(m: M): Promise<void> | null;
  /** What handle() threw: the connection ends. */
  fail(e: Error): void;
}

export class InOrder<M> {
  private busy = false;
  private holding = false;

  constructor(private readonly h: InOrderHost<M>) {}

  /** Client bytes arrived: stop reading if too much waits behind a held statement, and handle what is whole. */
  received(): void {
    if (this.holding && this.h.buffered() > HOLD_BACKLOG) this.h.client.pause();
    void this.pump();
  }

  /**
   * Handle messages until none is left. Usually an audit write commits within this turn of the event
   * loop, so batching goes on; only a slow answer (a statement held for review) flushes what came before,
   * and reading goes on (to notice a hang-up) only until HOLD_BACKLOG bytes wait behind it.
   */
  async pump(): Promise<void> {
    const h = this.h;
    if (this.busy || h.ended()) return;
    this.busy = true;
    const { client, upstream } = h.wire;
    upstream.hold();
    client.hold();
    try {
      for (let m = h.next(); m && !h.ended(); m = h.next()) {
        const wait = h.handle(m);
        if (wait) {
          client.release(); // the turn ends here: what answers earlier messages goes now
          try {
            await this.hold(wait);
          } finally {
            client.hold();
          }
        }
      }
    } catch (e) {
      h.fail(e as Error);
    } finally {
      this.busy = false;
      upstream.release();
      client.release();
    }
  }

  private async hold(wait: Promise<void>): Promise<void> {
    const h = this.h;
    let slow = false;
    const timer = setImmediate(() => {
      slow = true;
      this.holding = true;
      h.wire.upstream.release();
      if (h.buffered() > HOLD_BACKLOG) h.client.pause();
    });
    try {
      await wait;
    } finally {
      clearImmediate(timer);
      if (slow) {
        this.holding = false;
        if (!h.upstream.writableNeedDrain) h.client.resume();
        h.wire.upstream.hold();
      }
    }
  }
}
