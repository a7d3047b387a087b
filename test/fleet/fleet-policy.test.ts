// Policy versions on a fleet (issue 15, point 3): two brokers as separate processes on one PostgreSQL store; a
// version applied on B (`jit policy apply` pointed at B) refuses the next statement of a session open on A within
// a second, without a restart; both replicas list the same history; a rollback on A frees B's sessions again.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/broker.js';
import { clientOf, startFleet, type Fleet, type Replica } from '../support/fleet.js';

let fleet: Fleet;
let a: Replica;
let b: Replica;

const RULES = `rules:
  - { id: rw, kinds: [read, write], action: allow }
default: deny`;

beforeAll(async () => {
  fleet = await startFleet({ rules: RULES });
  a = await fleet.start('a');
  b = await fleet.start('b');
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

/** The outcome of one statement: 'ran', or the refusal's message. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'ran',
    (e: Error) => e.message,
  );

describe('policy versions across replicas', () => {
  it('apply on B: a session open on A is refused within 1 s, naming the new version; rollback on A frees a session on B', async () => {
    const onA = await clientOf(a, await fleet.token('fleet-policy-a'));
    const onB = await clientOf(b, await fleet.token('fleet-policy-b', 'b'));
    expect(await outcome(onA.query('SELECT 1'))).toBe('ran');
    expect(await outcome(onB.query('SELECT 1'))).toBe('ran');
    const file = join(fleet.dir, 'no-reads.yaml');
    writeFileSync(file, 'rules:\n  - { id: no-reads, kinds: [read], action: deny }\ndefault: deny\n');

    const applied = await b.jit('policy', 'apply', file, '--message', 'freeze reads');
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain(`policy version 2 applied to the broker at ${b.httpUrl} (was version 1)`);
    // B applied it: its own sessions are refused at once.
    expect(await outcome(onB.query('SELECT 2'))).toContain('policy version 2');
    // A learns it from the fleet channel (or its poll): within a second.
    const refused = await eventually(async () => {
      const r = await outcome(onA.query('SELECT 3'));
      return r === 'ran' ? null : r;
    }, 1000);
    expect(refused).toBe("jit-broker: a read statement is denied by rule 'no-reads' (policy version 2, applied after this session began)");

    const history = JSON.parse((await a.jit('policy', 'history', '--json')).stdout) as { version: number; message: string | null }[];
    expect(history.map((v) => [v.version, v.message])).toEqual([
      [1, expect.stringMatching(/^bootstrap from /)],
      [2, 'freeze reads'],
    ]);

    const back = await a.jit('policy', 'rollback', '1');
    expect(back.stdout).toContain(`policy version 3 applied to the broker at ${a.httpUrl}`);
    await eventually(async () => (await outcome(onB.query('SELECT 4'))) === 'ran', 1000);
    await onA.end();
    await onB.end();
  });
});
