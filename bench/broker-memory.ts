// A broker's memory seen from outside, for bench/idle-sessions.ts: its inspector (collect garbage, read
// process.memoryUsage(), take a heap snapshot), and what grew between two heap snapshots, by type.
import { createWriteStream, readFileSync } from 'node:fs';

export class Inspector {
  private id = 0;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  chunk: ((s: string) => void) | null = null;
  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; method?: string; params?: { chunk: string } };
      if (m.id !== undefined) {
        this.waiting.get(m.id)?.(m.result);
        this.waiting.delete(m.id);
      } else if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.chunk?.(m.params!.chunk);
    });
  }
  static open(url: string): Promise<Inspector> {
    const ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      ws.addEventListener('open', () => resolve(new Inspector(ws)));
      ws.addEventListener('error', () => reject(new Error(`inspector ${url} unreachable`)));
    });
  }
  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
  async memory(gc = true): Promise<Memory> {
    for (let i = 0; gc && i < 3; i++) await this.call('HeapProfiler.collectGarbage');
    const r = (await this.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
      result: { value: string };
    };
    return JSON.parse(r.result.value) as Memory;
  }
  async snapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.chunk = (s) => out.write(s);
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    this.chunk = null;
    await new Promise<void>((r) => out.end(r));
  }
  close(): void {
    this.ws.close();
  }
}

export interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

// ---------------------------------------------------------------- heap snapshot: what grew, by type
interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}
function bySelfSize(file: string): Map<string, { count: number; size: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const [ti, ni, si] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + ti]!]!;
    let name = s.strings[s.nodes[i + ni]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(strings)';
    else if (type === 'code') name = '(code)';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += s.nodes[i + si]!;
    out.set(key, e);
  }
  return out;
}
export function printGrowth(before: string, after: string, n: number): void {
  const a = bySelfSize(before);
  const b = bySelfSize(after);
  const rows: { key: string; count: number; size: number }[] = [];
  for (const [key, e] of b) {
    const o = a.get(key) ?? { count: 0, size: 0 };
    if (e.size - o.size > 0) rows.push({ key, count: e.count - o.count, size: e.size - o.size });
  }
  rows.sort((x, y) => y.size - x.size);
  const total = rows.reduce((t, r) => t + r.size, 0);
  console.log(`  heap snapshot: grew ${(total / n / 1024).toFixed(1)} KB per session (self sizes); the largest, per session:`);
  for (const r of rows.slice(0, 25)) {
    console.log(`    ${(r.size / n).toFixed(0).padStart(7)} B  ${(r.count / n).toFixed(1).padStart(6)} objects  ${r.key}`);
  }
}
