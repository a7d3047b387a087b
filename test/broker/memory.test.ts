// The idle reducer: after a busy stretch, the first quiet one gets one full collection; quiet stretches after
// that get none until the broker is busy again. Driven with a fake CPU clock and a counting collector.
import { afterEach, describe, expect, it } from 'vitest';
import { startIdleReducer } from '../../broker/memory.js';

let stop: (() => void) | undefined;
afterEach(() => stop?.());

/** `shrinksAfter`: how many collections of a quiet period it takes V8 to give memory back. */
function reducer(shrinksAfter = 1) {
  let cpu = 0;
  let collections = 0;
  let inPeriod = 0;
  const r = startIdleReducer({
    intervalMs: 1000, // quiet: under 50 ms of CPU (50,000 µs) per stretch
    tries: 3,
    cpuMicros: () => cpu,
    collect: () => {
      collections++;
      cpu += 30_000; // a collection costs CPU; it must not make the next stretch look busy
      return ++inPeriod >= shrinksAfter;
    },
  });
  stop = r.stop;
  return {
    stretch(usedMicros: number) {
      cpu += usedMicros;
      if (usedMicros >= 50_000) inPeriod = 0;
      return r.tick();
    },
    collections: () => collections,
  };
}

describe('idle reducer', () => {
  it('collects once when the broker goes quiet after starting, not again while it stays quiet', () => {
    const r = reducer();
    expect(r.stretch(10_000)).toBe(true);
    expect(r.stretch(0)).toBe(false);
    expect(r.stretch(20_000)).toBe(false);
    expect(r.collections()).toBe(1);
  });

  it('waits out a busy stretch, then collects at the first quiet one after it', () => {
    const r = reducer();
    expect(r.stretch(10_000)).toBe(true);
    expect(r.stretch(400_000)).toBe(false); // serving statements: no collection in the way
    expect(r.stretch(300_000)).toBe(false);
    expect(r.collections()).toBe(1);
    expect(r.stretch(1_000)).toBe(true);
    expect(r.collections()).toBe(2);
  });

  it('collects at each quiet stretch until memory is given back, at most `tries` times', () => {
    const r = reducer(2);
    expect(r.stretch(0)).toBe(true); // V8 keeps its young generation this time
    expect(r.stretch(0)).toBe(true); // and gives it back now
    expect(r.stretch(0)).toBe(false);
    expect(r.collections()).toBe(2);
    const never = reducer(99);
    for (let i = 0; i < 5; i++) never.stretch(0);
    expect(never.collections()).toBe(3);
  });

  it('reaches V8 collection without --expose-gc on the command line', () => {
    const r = startIdleReducer({ intervalMs: 60_000, cpuMicros: () => 0 });
    stop = r.stop;
    expect(r.tick()).toBe(true);
  });
});
