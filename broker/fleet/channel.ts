// How the replicas of a fleet tell each other that something changed in their shared PostgreSQL store:
// LISTEN/NOTIFY on one dedicated connection per replica. A notice carries the sender's replica id and a
// short payload (an approval id, a revocation id); the receiver reads the store for the rest. Notices are
// hints, the store is the truth: a notice missed while reconnecting is covered by each side's polling.
import type pg from 'pg';

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface FleetChannel {
  readonly replicaId: string;
  /** Tells the other replicas (never this one) `payload` on `topic`. Never throws: a failure is logged. */
  notify(topic: string, payload: string): void;
  /** Calls `listener` with each payload another replica sent on `topic`; returns the unsubscribe function. */
  listen(topic: string, listener: (payload: string) => void): () => void;
  close(): Promise<void>;
}

/** Channel names are identifiers: `jit_` and lowercase letters only. */
const TOPIC = /^jit_[a-z_]+$/;
const SEP = '\u001f';

export class PgChannel implements FleetChannel {
  private client: pg.Client | null = null;
  private readonly listeners = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private connecting: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;

  private constructor(
    private readonly url: string,
    readonly replicaId: string,
    private readonly log: Log,
  ) {}

  /** Connects (and LISTENs) now, so that a broker that cannot reach its fleet's store does not start. */
  static async open(url: string, replicaId: string, log: Log): Promise<PgChannel> {
    const c = new PgChannel(url, replicaId, log);
    await c.connect();
    return c;
  }

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const { default: pg } = await import('pg'); // a fleet's store is PostgreSQL: loaded with it, not by every broker
      const client = new pg.Client({ connectionString: this.url, application_name: `jit-broker fleet ${this.replicaId}`.slice(0, 63) });
      client.on('notification', (n) => this.deliver(n.channel, n.payload ?? ''));
      client.on('error', (e) => {
        this.log('fleet channel: connection lost; reconnecting', { error: e.message });
        this.lost(client);
      });
      client.on('end', () => this.lost(client));
      await client.connect();
      for (const topic of this.listeners.keys()) await client.query(`LISTEN ${topic}`);
      this.client = client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect().catch((e: unknown) => {
        this.log('fleet channel: cannot reconnect yet', { error: String(e) });
        if (!this.closed) this.retry = setTimeout(() => void this.connect().catch(() => {}), 1000);
      });
    }, 200);
  }

  private deliver(topic: string, raw: string): void {
    const at = raw.indexOf(SEP);
    if (at < 0 || raw.slice(0, at) === this.replicaId) return; // a notice of our own
    const payload = raw.slice(at + 1);
    for (const l of this.listeners.get(topic) ?? []) {
      try {
        l(payload);
      } catch (e) {
        this.log('fleet channel: a listener failed', { topic, error: String(e) });
      }
    }
  }

  notify(topic: string, payload: string): void {
    if (!TOPIC.test(topic)) throw new Error(`fleet channel: bad topic ${topic}`);
    const client = this.client;
    if (!client) {
      this.log('fleet channel: not connected; the other replicas learn of this by polling', { topic });
      return;
    }
    client.query('SELECT pg_notify($1, $2)', [topic, `${this.replicaId}${SEP}${payload}`]).catch((e: unknown) => {
      this.log('fleet channel: notify failed', { topic, error: String(e) });
    });
  }

  listen(topic: string, listener: (payload: string) => void): () => void {
    if (!TOPIC.test(topic)) throw new Error(`fleet channel: bad topic ${topic}`);
    let set = this.listeners.get(topic);
    if (!set) {
      set = new Set();
      this.listeners.set(topic, set);
      this.client?.query(`LISTEN ${topic}`).catch((e: unknown) => this.log('fleet channel: LISTEN failed', { topic, error: String(e) }));
    }
    const wrapped = (p: string) => listener(p);
    set.add(wrapped);
    return () => void set.delete(wrapped);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
