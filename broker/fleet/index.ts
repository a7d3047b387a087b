// The fleet: several brokers on one PostgreSQL store. Each replica has an id (recorded on its sessions),
// a lease it refreshes in the store, and a LISTEN/NOTIFY channel on which approvals and revocations made
// on one replica reach the others at once. On SQLite (one broker) none of it runs.
import { hostname } from 'node:os';
import type { ApprovalFleet } from '../approvals/index.js';
import type { FleetChannel } from './channel.js';

export { PgChannel, type FleetChannel } from './channel.js';
export { Lease } from './lease.js';

/** `replica_id` when the config gives none: the host name and the process id (unique while it runs). */
export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`;
}

/** Whether a store URL is one a fleet can share (PostgreSQL). */
export function isFleetStore(url: string): boolean {
  return /^postgres(ql)?:/i.test(url);
}

export function approvalFleet(ch: FleetChannel): ApprovalFleet {
  return { changed: (id) => ch.notify('jit_approvals', id), onChanged: (l) => ch.listen('jit_approvals', l) };
}

export function revocationFleet(ch: FleetChannel): { changed(): void; onChanged(listener: () => void): () => void } {
  return { changed: () => ch.notify('jit_revocations', ''), onChanged: (l) => ch.listen('jit_revocations', () => l()) };
}
