// The config's building blocks shared by its sections (config-sections.ts) and the file's schema (config.ts):
// host:port, durations, glob maps, statement kinds and rule actions.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { KINDS } from './types.js';

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:6432')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    const host = s.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(s.slice(i + 1));
    return { host, port };
  })
  .refine((hp) => hp.port <= 65535, 'port must be at most 65535');
export type HostPort = { host: string; port: number };

/** Durations as `30s`, `5m`, `1h`, `2d`, or a number of seconds. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const seconds = parseDuration(v);
  if (seconds === null) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a duration (e.g. 30s, 5m, 1h)` });
    return z.NEVER;
  }
  return seconds;
});

export const globMap = z.record(z.string(), z.string());
export const kind = z.enum(KINDS);
export const action = z.enum(['allow', 'deny', 'review']);
