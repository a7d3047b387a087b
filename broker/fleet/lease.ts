// Replicas' leases: each replica refreshes its row in the store every lease/3; a replica whose row is older
// than the lease has died (kill -9, a lost host). Every survivor sweeps: the dead replica's pending approval
// requests end cancelled (each exactly once: a conditional update) and their Slack messages are updated by
// the survivor that cancelled them; its open sessions end with a reason; its row goes.
import type { Approvals } from '../approvals/index.js';
import type { Store } from '../store/types.js';
import type { Log } from './channel.js';

export interface LeaseOptions {
  store: Pick<Store, 'heartbeat' | 'listReplicas' | 'removeReplica' | 'endOpenSessions'>;
  approvals: Approvals;
  replicaId: string;
  /** Seconds without a heartbeat after which a replica counts as dead (`approvals.lease`). */
  leaseSeconds: number;
  log: Log;
}

export class Lease {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date();
  private sweeping: Promise<void> | null = null;

  constructor(private readonly o: LeaseOptions) {}

  /** Says this replica is alive, sweeps once, and then both every lease/3. */
  async start(): Promise<void> {
    await this.beat();
    await this.sweep();
    this.timer = setInterval(
      () => {
        void this.beat()
          .then(() => this.sweep())
          .catch((e: unknown) => this.o.log('fleet: heartbeat failed', { error: String(e) }));
      },
      Math.max(100, (this.o.leaseSeconds * 1000) / 3),
    );
    this.timer.unref();
  }

  private beat(): Promise<void> {
    return this.o.store.heartbeat({ id: this.o.replicaId, startedAt: this.startedAt, lastSeen: new Date() });
  }

  /** Ends what replicas silent for longer than the lease left behind. Returns when done. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      const cutoff = Date.now() - this.o.leaseSeconds * 1000;
      for (const r of await this.o.store.listReplicas()) {
        if (r.id === this.o.replicaId || r.lastSeen.getTime() >= cutoff) continue;
        const why = `the broker replica ${r.id} that held it stopped (no heartbeat since ${r.lastSeen.toISOString()})`;
        const cancelled = await this.o.approvals.cancelReplica(r.id, why);
        const ended = await this.o.store.endOpenSessions(why, r.id);
        await this.o.store.removeReplica(r.id);
        this.o.log('fleet: a replica stopped answering; its requests and sessions were ended', { replica: r.id, approvals: cancelled, sessions: ended });
      }
    })().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  /** Stops refreshing and forgets this replica (a clean stop: its sessions and requests were ended by close). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.o.store.removeReplica(this.o.replicaId).catch(() => {});
  }
}
