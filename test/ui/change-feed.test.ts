// What tells the console's live pages to reload: every approvals-bus event (this broker's requests and decisions,
// Slack's, another replica's decision on a request held here), and — by a poll of the store while someone listens —
// pending requests and open sessions that changed elsewhere (another replica). Nothing runs while nobody listens.
import { describe, expect, it } from 'vitest';
import type { ApprovalEvent, ApprovalRequest } from '../../broker/approvals/types.js';
import type { SessionSummary } from '../../broker/store/types.js';
import { type Change, ChangeFeed } from '../../broker/ui/change-feed.js';

function fakes() {
  const listeners = new Set<(e: ApprovalEvent) => void>();
  const state = { pending: [] as Pick<ApprovalRequest, 'id' | 'approvals'>[], open: [] as Pick<SessionSummary, 'id'>[], reads: 0 };
  const approvals = {
    on(l: (e: ApprovalEvent) => void) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
  const store = {
    listApprovals: async () => {
      state.reads++;
      return state.pending as ApprovalRequest[];
    },
    listSessions: async () => state.open as SessionSummary[],
  };
  const publish = (id: string) => {
    for (const l of listeners) l({ type: 'updated', request: { id } as ApprovalRequest, remote: true });
  };
  return { approvals, store, state, publish, listeners };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ChangeFeed', () => {
  it('passes on approvals-bus events (a remote decision included) while someone listens, and unsubscribes after', async () => {
    const f = fakes();
    const feed = new ChangeFeed({ approvals: f.approvals, store: f.store, pollMs: 10_000 });
    const seen: Change[] = [];
    const off = feed.subscribe((c) => seen.push(c));
    f.publish('a_1');
    expect(seen).toEqual([{ kind: 'approval', id: 'a_1' }]);
    off();
    expect(f.listeners.size).toBe(0);
    f.publish('a_2');
    expect(seen).toHaveLength(1);
    feed.close();
  });

  it('announces pending requests and open sessions that changed in the store (other replicas), not the first read', async () => {
    const f = fakes();
    const feed = new ChangeFeed({ approvals: f.approvals, store: f.store, pollMs: 20 });
    const seen: Change[] = [];
    const off = feed.subscribe((c) => seen.push(c));
    await tick(60);
    expect(seen).toEqual([]);
    f.state.pending = [{ id: 'a_9', approvals: [] }];
    await expect.poll(() => seen).toEqual([{ kind: 'approval', id: null }]);
    f.state.open = [{ id: 's_1' }];
    await expect.poll(() => seen.at(-1)).toEqual({ kind: 'session', id: null });
    off();
    const reads = f.state.reads;
    await tick(80);
    expect(f.state.reads).toBe(reads); // no poll while nobody listens
    feed.close();
  });
});
