// `jit replay SESSION_ID`: a recorded session as it happened, from the store (or, with --url, through the
// running broker's HTTP API): who connected, each statement with its decision, approval, timing and
// result with the sample of what the client saw. `--speed N` paces it, `--json` prints the events.
import { InvalidArgumentError, type Command } from 'commander';
import type { ReplayEvent } from '../audit/replay.js';
import type { Config } from '../config.js';
import { ApiError, call, target } from './api.js';

function nonNegative(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a number ≥ 0, got '${v}'`);
    return n;
  };
}

async function fromStore(c: Config, id: string): Promise<ReplayEvent[]> {
  const { openStore } = await import('../store/index.js');
  const { loadReplay, replayEvents } = await import('../audit/replay.js');
  const store = await openStore(c.store);
  try {
    const r = await loadReplay(store, id);
    if (!r) throw new InvalidArgumentError(`no session '${id}'`);
    return replayEvents(r);
  } finally {
    await store.close();
  }
}

async function fromApi(c: Config, url: string, id: string): Promise<ReplayEvent[]> {
  const { status, data } = await call<ReplayEvent[] | { error?: string }>(target(c, url), 'GET', `/api/sessions/${encodeURIComponent(id)}/events`);
  if (status === 404) throw new InvalidArgumentError(`no session '${id}'`);
  if (status !== 200 || !Array.isArray(data)) throw new ApiError(`the broker answered ${status}: ${(data as { error?: string }).error ?? 'unexpected answer'}`);
  return data;
}

export function registerReplayCommand(program: Command, config: () => Config): void {
  program
    .command('replay')
    .description('replay a recorded session: who connected, each statement with its decision, approval, timing and result (with what the client saw)')
    .argument('<id>', 'session id (a unique prefix is enough)')
    .option('--speed <n>', 'wait between statements as they did, their gaps divided by n (0 or absent: no waiting)', nonNegative('--speed'), 0)
    .option('--json', 'the replay events, one JSON object per line (session-start, statement, approval, result, session-end)')
    .option('--width <n>', 'widest a result cell is shown, in characters', nonNegative('--width'), 40)
    .option('--url <url>', "read through the running broker's HTTP API (admin_token) instead of opening the store")
    .action(async (id: string, o: { speed: number; json?: boolean; width: number; url?: string }) => {
      const c = config();
      const events = o.url ? await fromApi(c, o.url, id) : await fromStore(c, id);
      const { playEvents } = await import('../audit/replay.js');
      const { ReplayRenderer } = await import('../audit/render.js');
      const renderer = new ReplayRenderer({ maxCell: Math.max(4, Math.floor(o.width)) });
      await playEvents(events, o.speed, (e) => void process.stdout.write(o.json ? `${JSON.stringify(e)}\n` : renderer.render(e)));
      if (!o.json) process.stdout.write(renderer.end());
    });
}
