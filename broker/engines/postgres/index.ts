// The PostgreSQL engine: a listener that speaks the wire protocol to clients and relays to targets.
import type { Target } from '../../types.js';
import type { Engine } from '../engine.js';
import { listenTcp } from '../listener.js';
import { PgCatalog } from './catalog.js';
import { PostgresConnection, type CancelKey, type PostgresEngineDeps } from './connection.js';
import { errorResponse } from './messages.js';
import { cancelUpstream } from './upstream.js';

export type { PostgresEngineDeps } from './connection.js';

export type PostgresEngine = Engine<PostgresConnection>;

export async function startPostgresEngine(deps: PostgresEngineDeps, listen: { host: string; port: number }): Promise<PostgresEngine> {
  const live = new Set<PostgresConnection>();
  /** Accepted and not yet logged in (or refused): ended too at shutdown. */
  const starting = new Set<PostgresConnection>();
  const byKey = new Map<string, PostgresConnection>();
  const keyOf = (k: CancelKey) => `${k.pid}:${k.secret}`;
  const catalogs = new Map<string, PgCatalog>();

  const hooks = {
    catalog: (t: Target) => {
      let c = catalogs.get(t.name);
      if (!c) catalogs.set(t.name, (c = new PgCatalog(() => t.upstream))); // the current URL at each reconnect
      return c;
    },
    register: (c: PostgresConnection) => {
      starting.delete(c);
      live.add(c);
      byKey.set(keyOf(c.key), c);
    },
    unregister: (c: PostgresConnection) => {
      starting.delete(c);
      live.delete(c);
      byKey.delete(keyOf(c.key));
    },
    cancel: (k: CancelKey) => {
      const c = byKey.get(keyOf(k));
      const up = c?.upstreamKey;
      const target = c?.target;
      if (!c || !up || !target) return; // unknown keys are ignored, as a server does
      if (c.cancelHeld()) return; // it was waiting for approval, not running upstream
      cancelUpstream(target.upstream, up.processId, up.secretKey).catch((e: unknown) => deps.log('cancel request could not be relayed', { error: String(e) }));
    },
  };

  const listener = await listenTcp(listen, deps, {
    accept: (socket, login) => {
      const c = new PostgresConnection(socket, deps, hooks, login);
      starting.add(c);
      return c;
    },
    // 53300 too_many_connections, as the server says it (libpq, asked for TLS, reports only "an error response during SSL exchange").
    refusal: (message) => errorResponse({ severity: 'FATAL', code: '53300', message }),
  });

  return {
    address: listener.address,
    connections: live,
    async close(reason = 'the broker is shutting down') {
      // Clients still logging in are told too, not left to finish against a closing broker.
      await listener.close(() => Promise.all([...live, ...starting].map((c) => c.terminate('57P01', `jit-broker: ${reason}`))));
      for (const c of catalogs.values()) c.close();
    },
  };
}
