// The approvals bus: how request changes reach listeners (the Slack bot, metrics, tests). In-process
// for now; a Postgres LISTEN/NOTIFY bus (several brokers sharing one store) would implement the same
// two verbs.
import type { ApprovalEvent } from './types.js';

export type ApprovalListener = (e: ApprovalEvent) => void;

export interface ApprovalBus {
  /** Deliver to every subscriber. Never throws: a failing listener is reported, the others still run. */
  publish(e: ApprovalEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: ApprovalListener): () => void;
}

/** Synchronous fan-out in the publisher's turn, in subscription order. */
export class InProcessBus implements ApprovalBus {
  private readonly listeners = new Set<ApprovalListener>();

  constructor(private readonly onListenerError: (e: unknown, event: ApprovalEvent) => void = () => {}) {}

  publish(e: ApprovalEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError(err, e);
      }
    }
  }

  subscribe(listener: ApprovalListener): () => void {
    // A wrapper per subscription: the same function subscribed twice gets two independent unsubscribes.
    const wrapped: ApprovalListener = (e) => listener(e);
    this.listeners.add(wrapped);
    return () => void this.listeners.delete(wrapped);
  }
}
