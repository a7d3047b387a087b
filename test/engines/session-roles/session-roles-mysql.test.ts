// A database role per session on the real MariaDB: the broker's own account has CREATE USER and each group role
// WITH ADMIN OPTION; each session logs in as a user of its own whose one role (of the same name) holds the granted
// group roles, gone when the session ends. A read-only session cannot write where the broker allows it. A role
// that cannot be created refuses the login. The upstream connection says which session and build it is: the
// program_name / jit_* connect attributes and @jit_session, @jit_build, with or without session roles.
import net from 'node:net';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/broker.js';
import { COM, command } from '../../../broker/engines/mysql/protocol.js';
import { readTextRow } from '../../../broker/engines/mysql/results.js';
import { directMy, MYSQL_RULES, MYSQL_UPSTREAM, rawLogin, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const P = process.pid;
const BROKER = `jit_broker_m${P}`;
const READ = `jit_mread_${P}`;
const WRITE = `jit_mwrite_${P}`;
const TABLE = `jit_my_roles_${P}`;
const PREFIX = `jit_m${P}_`;
const up = new URL(MYSQL_UPSTREAM);
const url = `mysql://${BROKER}:broker-pw@${up.hostname}:${up.port || 3306}${up.pathname}`;

let t: MysqlTestBroker;
/** A TCP relay in front of MariaDB (target `seen`, no TLS): what the broker sends upstream, readable. */
let relay: net.Server;
let sent = Buffer.alloc(0);

const userExists = async (name: string) => (await rowsOf(`SELECT 1 FROM mysql.user WHERE User = '${name}'`)).length > 0;
const sessionUsers = async () =>
  (await rowsOf(`SELECT DISTINCT User AS u FROM mysql.user WHERE User LIKE '${PREFIX.replace(/_/g, '\\_')}%'`)).map((r) => String(r.u));

beforeAll(async () => {
  await directMy((c) =>
    c.query(`
      DROP USER IF EXISTS '${BROKER}'@'%'; DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${WRITE};
      DROP TABLE IF EXISTS ${TABLE};
      CREATE TABLE ${TABLE} (id int AUTO_INCREMENT PRIMARY KEY, v text);
      CREATE ROLE ${READ}; GRANT SELECT ON test.${TABLE} TO ${READ};
      CREATE ROLE ${WRITE}; GRANT SELECT, INSERT, UPDATE, DELETE ON test.${TABLE} TO ${WRITE};
      CREATE USER '${BROKER}'@'%' IDENTIFIED BY 'broker-pw';
      GRANT CREATE USER ON *.* TO '${BROKER}'@'%';
      GRANT SELECT ON test.* TO '${BROKER}'@'%';
      GRANT ${READ} TO '${BROKER}'@'%' WITH ADMIN OPTION;
      GRANT ${WRITE} TO '${BROKER}'@'%' WITH ADMIN OPTION;
    `),
  );
  relay = net.createServer((client) => {
    const server = net.connect(Number(up.port || 3306), up.hostname);
    client.on('data', (d: Buffer) => (sent = Buffer.concat([sent, d])));
    client.pipe(server).pipe(client);
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  });
  await new Promise<void>((done) => relay.listen(0, '127.0.0.1', () => done()));
  const relayed = `mysql://root@127.0.0.1:${(relay.address() as net.AddressInfo).port}${up.pathname}?sslmode=disable`;
  const roles = `session_roles: { prefix: ${PREFIX}, grants: [{ claims: { repository: "acme/*" }, roles: [${READ}, ${WRITE}] }], default: [${READ}] }`;
  t = await startMysqlBroker(
    `  mroles: { engine: mysql, upstream: "${url}", ${roles} }
  mbroken: { engine: mysql, upstream: "${url}", session_roles: { prefix: ${PREFIX}, default: [${READ}, jit_no_such_role_${P}] } }
  seen: { engine: mysql, upstream: "${relayed}" }
${MYSQL_RULES}`,
    { plaintext: true },
  );
});

afterAll(async () => {
  await t?.stop();
  relay?.close();
  await directMy(async (c) => {
    for (const u of await sessionUsers()) await c.query(`DROP USER IF EXISTS '${u}'@'%'; DROP ROLE IF EXISTS ${u}`);
    await c.query(`DROP USER IF EXISTS '${BROKER}'@'%'; DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${WRITE}; DROP TABLE IF EXISTS ${TABLE}`);
  });
});

/** The roles granted to a role (SHOW GRANTS as root), sorted. */
const roleGrants = async (role: string) =>
  (await rowsOf(`SHOW GRANTS FOR ${role}`))
    .map((g) => String(Object.values(g)[0]))
    .filter((g) => g.startsWith('GRANT `'))
    .sort();

async function session(db: string, claims?: Record<string, unknown>, build = 'build-mroles'): Promise<mysql.Connection> {
  return t.connect(await t.token({ build, claims }), { database: db });
}

async function newest(db: string) {
  const [s] = await t.broker.store.listSessions({ target: db, limit: 1 });
  return s!;
}

describe('a role per session (MariaDB)', () => {
  it('logs the session in as its own user with its one role active; the processlist shows it; dropped at the end', async () => {
    const c = await session('mroles');
    const s = await newest('mroles');
    const role = s.dbRole!;
    expect(role).toBe(`${PREFIX}${s.id}`);
    const [rows] = await c.query('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r, DATABASE() AS db, @jit_session AS sid, @jit_build AS build');
    expect((rows as Record<string, unknown>[])[0]).toEqual({ u: `${role}@%`, r: role, db: 'test', sid: s.id, build: 'build-mroles' });
    // Its role holds the read group only.
    expect(await roleGrants(role)).toEqual([`GRANT \`${READ}\` TO \`${role}\``]);
    const processes = (await rowsOf('SELECT USER AS user, DB AS db FROM information_schema.PROCESSLIST')).filter((p) => p.user === role);
    expect(processes).toEqual([{ user: role, db: 'test' }]);
    await c.end();
    await eventually(async () => !(await userExists(role)), 10_000); // the user ('name'@'%') and the role ('name'@'') alike
  });

  it('a read-only session cannot write where the broker allows it: the error reaches the client and the record', async () => {
    const c = await session('mroles', undefined, 'build-mro');
    await c.query(`SELECT count(*) FROM ${TABLE}`);
    await expect(c.query(`INSERT INTO ${TABLE} (v) VALUES ('nope')`)).rejects.toThrow(/INSERT command denied to user/);
    const s = await newest('mroles');
    await c.end();
    const statements = await t.broker.store.listStatements(s.id);
    const insert = statements.find((x) => x.sql.startsWith('INSERT'))!;
    expect(insert.decision).toBe('allow');
    expect(insert.error).toMatch(/INSERT command denied to user/);
    expect(await rowsOf(`SELECT 1 FROM ${TABLE} WHERE v = 'nope'`)).toEqual([]);
  });

  it("grants several group roles by the token's claims (one role of the session's name holds them)", async () => {
    const c = await session('mroles', { repository: 'acme/shop' });
    const s = await newest('mroles');
    await c.query(`INSERT INTO ${TABLE} (v) VALUES ('by acme')`);
    expect(await roleGrants(s.dbRole!)).toEqual([`GRANT \`${READ}\` TO \`${s.dbRole}\``, `GRANT \`${WRITE}\` TO \`${s.dbRole}\``]);
    await c.end();
    await eventually(async () => !(await userExists(s.dbRole!)), 10_000);
  });

  it('comes back to its role after COM_RESET_CONNECTION (the role is the user’s default role; the variables are gone)', async () => {
    const { socket, io } = await rawLogin(t.port, await t.token({ build: 'build-reset' }), 'mroles');
    const s = await newest('mroles');
    const query = async (sql: string) => {
      socket.write(command(COM.QUERY, sql));
      const columns = (await io.read()).payload[0]!;
      for (let i = 0; i <= columns; i++) await io.read(); // definitions and their EOF
      const row = readTextRow((await io.read()).payload, columns).map((v) => v?.toString() ?? null);
      await io.read(); // EOF
      return row;
    };
    expect(await query('SELECT CURRENT_ROLE(), @jit_session')).toEqual([s.dbRole, s.id]);
    socket.write(command(COM.RESET_CONNECTION));
    expect((await io.read()).payload[0]).toBe(0);
    expect(await query('SELECT CURRENT_ROLE(), @jit_session')).toEqual([s.dbRole, null]);
    socket.destroy();
  });

  it('refuses a login whose role cannot be created, saying why, and leaves no user behind', async () => {
    const token = await t.token({ build: 'build-mbroken' });
    await expect(t.connect(token, { database: 'mbroken' })).rejects.toThrow(
      /jit-broker could not create the session's database role on target "mbroken": .*jit_no_such_role_/,
    );
    const s = await newest('mbroken');
    expect(s.endReason).toMatch(/^refused: jit-broker could not create/);
    expect(await userExists(s.dbRole!)).toBe(false);
    expect(await rowsOf(`SELECT 1 FROM mysql.user WHERE User = '${s.dbRole}'`)).toEqual([]);
  });

  it('says which session and build it is in its connect attributes and user variables, without session roles too', async () => {
    sent = Buffer.alloc(0);
    const c = await session('seen', undefined, 'build-seen');
    const s = await newest('seen');
    expect(s.dbRole).toBeNull();
    const text = sent.toString('latin1');
    for (const attr of ['program_name', `jit:${s.id}:build-seen`, 'jit_session', 'jit_subject', 'jit_build']) expect(text).toContain(attr);
    const [rows] = await c.query('SELECT @jit_session AS sid, @jit_build AS build, CURRENT_USER() AS u');
    expect((rows as Record<string, unknown>[])[0]).toEqual({ sid: s.id, build: 'build-seen', u: expect.stringMatching(/^root@/) });
    await c.end();
  });
});
