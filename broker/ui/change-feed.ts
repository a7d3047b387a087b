// What the console's live pages listen to: a `changed` notice whenever an approval request is made, decided,
// expires or is cancelled (the approvals bus: decisions from Slack, the CLI, this console, and other replicas'
// decisions on requests held here), and — by a light poll while someone watches — requests and sessions that
// started or ended on other replicas, and sessions opening and closing here. Nothing on the statement path
// changes: the bus already publishes, and the poll reads the store only while a page is open.
import type { Approvals } from '../approvals/index.js';
import type { Store } from '../store/index.js';

export interface Change {
  kind: 'approval' | 'session';
  /** The request's id when known (a poll only knows that something changed). */
  id: string | null;
}

export type ChangeListener = (c: Change) => void;

export interface ChangeFeedOptions {
  approvals: Pick<Approvals, 'on'>;
  store: Pick<Store, 'listApprovals' | 'listSessions'>;
  /** How often the store is read while someone listens. Default 2 s. */
  pollMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private fingerprint: string | null = null;
  private polling = false;

  constructor(private readonly o: ChangeFeedOptions) {}

  /** Listen; the bus subscription and the poll run only while someone does. Returns the unsubscribe function. */
  subscribe(l: ChangeListener): () => void {
    this.listeners.add(l);
    if (this.listeners.size === 1) this.startWatching();
    return () => {
      if (this.listeners.delete(l) && this.listeners.size === 0) this.stopWatching();
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  close(): void {
    this.listeners.clear();
    this.stopWatching();
  }

  private emit(c: Change): void {
    for (const l of [...this.listeners]) {
      try {
        l(c);
      } catch (e) {
        this.o.log?.('console: a live-update listener failed', { error: String(e) });
      }
    }
  }

  private startWatching(): void {
    this.unsubscribe = this.o.approvals.on((e) => this.emit({ kind: 'approval', id: e.request.id }));
    this.fingerprint = null;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? 2000);
    this.timer.unref();
  }

  private stopWatching(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Pending requests and open sessions as the store has them: a change there is announced (the first read only sets it). */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const [pending, open] = await Promise.all([this.o.store.listApprovals({ state: 'pending' }), this.o.store.listSessions({ open: true, limit: 1000 })]);
      const approvals = pending.map((r) => `${r.id}:${r.approvals.length}`).join(',');
      const sessions = open.map((s) => s.id).join(',');
      const fp = `${approvals}|${sessions}`;
      const before = this.fingerprint;
      this.fingerprint = fp;
      if (before === null || before === fp || this.listeners.size === 0) return;
      this.emit({ kind: before.split('|')[0] === approvals ? 'session' : 'approval', id: null });
    } catch (e) {
      this.o.log?.('console: could not read the store for live updates', { error: String(e) });
    } finally {
      this.polling = false;
    }
  }
}
