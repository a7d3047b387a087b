// The MySQL / MariaDB engine: a listener that speaks the client/server protocol to clients and relays to targets.
//
// KILL: each client connection gets its own id from the broker (the connection id of the greeting, what
// mysql_thread_id() returns and what the mysql/mariadb CLIs' Ctrl-C sends as `KILL QUERY <id>` on a new
// connection). The engine handles `KILL [QUERY|CONNECTION] <id>` itself, before policy: a client may kill
// the connections (or their running statement) of its own build — same `build` claim, or the same subject
// and issuer when the token has no build — mapped to the upstream connection; a held statement is withdrawn.
// Any other id answers ER_NO_SUCH_THREAD. Both are recorded. A KILL never reaches the server with a
// client's id (it would name an unrelated server thread).
import type { Engine } from '../engine.js';
import { listenTcp } from '../listener.js';
import type { Identity } from '../../types.js';
import { MysqlConnection, type ConnectionHooks, type MysqlEngineDeps } from './connection.js';
import { ER, errPacket } from './protocol.js';
import type { KillPlan } from './relay.js';
import { probeVersion } from './upstream.js';

export type { MysqlEngineDeps } from './connection.js';
export type { ColumnDefinition, ResultSetContext, ResultSetHook, RowRewriter } from './results.js';
export { checkMysqlTarget, MysqlConnection, mysqlTargetNameWarning } from './connection.js';
export { ER as MYSQL_ER } from './protocol.js';

export type MysqlEngine = Engine<MysqlConnection>;

/** Whether `a` may KILL connections of `b`. */
export function sameBuild(a: Identity, b: Identity): boolean {
  if (a.build !== null && b.build !== null) return a.build === b.build;
  return a.build === b.build && a.subject === b.subject && a.issuer === b.issuer;
}

const SUFFIX = '-jit-broker';

export async function startMysqlEngine(deps: MysqlEngineDeps, listen: { host: string; port: number }): Promise<MysqlEngine> {
  const live = new Set<MysqlConnection>();
  const byId = new Map<number, MysqlConnection>();
  const starting = new Set<MysqlConnection>();
  let lastId = 0;
  // The version clients see: the servers' own (learned from a target's greeting), marked as the broker's.
  let version = '8.0.36';
  const first = [...deps.targets.values()][0];
  if (first) {
    probeVersion(first.upstream)
      .then((v) => (version = v))
      .catch((e: unknown) => deps.log('could not read the version of a mysql target', { target: first.name, error: String(e) }));
  }

  const nextId = (): number => {
    do lastId = lastId >= 0xfffffffe ? 1 : lastId + 1;
    while (byId.has(lastId));
    return lastId;
  };

  const hooks: ConnectionHooks = {
    register: (c) => {
      starting.delete(c);
      live.add(c);
    },
    unregister: (c) => {
      starting.delete(c);
      live.delete(c);
      byId.delete(c.id);
    },
    kill: (requester, scope, id): KillPlan => {
      const victim = byId.get(id);
      const a = requester.identity;
      const b = victim && live.has(victim) ? victim.identity : null;
      if (!victim || !a || !b || !sameBuild(a, b)) {
        return {
          allowed: false,
          message: `Unknown thread id: ${id} (KILL takes the id the broker gave a connection of the same build; this broker has no such connection for this build)`,
        };
      }
      const by = `KILL ${scope} from connection ${requester.id}`;
      return { allowed: true, self: victim === requester, run: () => (scope === 'QUERY' ? victim.cancelQuery(by) : victim.kill(`killed by ${by}`)) };
    },
    version: () => `${version}${SUFFIX}`,
    learned: (v) => {
      version = v;
    },
  };

  const listener = await listenTcp(listen, deps, {
    accept: (socket, login) => {
      const id = nextId();
      const c = new MysqlConnection(socket, id, deps, hooks, login);
      byId.set(id, c);
      starting.add(c);
      return c;
    },
    // In place of the greeting, as a server at max_connections answers.
    refusal: (message) => errPacket(0, ER.CON_COUNT_ERROR, message),
  });

  return {
    address: listener.address,
    connections: live,
    async close(reason = 'the broker is shutting down') {
      await listener.close(() => Promise.all([...live, ...starting].map((c) => c.terminate(ER.SERVER_SHUTDOWN, `jit-broker: ${reason}`))));
    },
  };
}
