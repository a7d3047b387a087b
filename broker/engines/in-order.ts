// How both relays handle a client's messages: strictly in order, a statement awaiting its decision
// holding the ones after it, with writes batched (corked) while answers come within the same turn.
import type net from 'node:net';

/**
 * While a statement waits for a slow answer (held for review), the client is still read, so that a
 * client hanging up is noticed (its session then cancels the request), up to this many bytes buffered.
 */
export const HOLD_BACKLOG = 1024 * 1024;

export interface InOrderHost<M> {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** The next whole client message, or null. */
  next(): M | null;
  ended(): boolean;
  /** Client bytes received and not yet handled. */
  buffered(): number;
  /** Handle one message; a promise when it must wait (its audit record, or a decision). */
  handle(m: M): Promise<void> | null;
  /** Told when a wait turns out slow (true) and when it ends (false). */
  holding(h: boolean): void;
  /** Also flush the client while holding (an engine that answers the client itself). */
  flushClientWhileHolding: boolean;
}

/**
 * Run the host's messages until none is left. Usually an audit write commits within this turn of the
 * event loop, so batching goes on; only a slow answer (a statement held for review) flushes what came
 * before, and reading goes on (to notice a hang-up) only until HOLD_BACKLOG bytes wait behind it.
 * Throws what handle() throws; the caller uncorks in its own `finally`.
 */
export async function runInOrder<M>(h: InOrderHost<M>): Promise<void> {
  for (let m = h.next(); m && !h.ended(); m = h.next()) {
    const wait = h.handle(m);
    if (!wait) continue;
    let slow = false;
    const timer = setImmediate(() => {
      slow = true;
      h.holding(true);
      h.upstream.uncork();
      if (h.flushClientWhileHolding) h.client.uncork();
      if (h.buffered() > HOLD_BACKLOG) h.client.pause();
    });
    await wait;
    clearImmediate(timer);
    if (slow) {
      h.holding(false);
      if (!h.upstream.writableNeedDrain) h.client.resume();
      h.upstream.cork();
      if (h.flushClientWhileHolding) h.client.cork();
    }
  }
}
