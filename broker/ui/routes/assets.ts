// GET /ui/assets/:name: the console's stylesheet, script and images — only the files of the assets folder beside
// this module (broker/ui/assets; dist/broker/ui/assets in a build), read once at start, with their content types.
// No sign-in needed (the sign-in page uses them); cached a day, and revalidated by ETag after that.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The assets folder's files with a known type, by name (subfolders and other files are not served). */
export function loadAssets(dir: URL): Map<string, Asset> {
  const out = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const type = TYPES[name.slice(name.lastIndexOf('.') + 1).toLowerCase()];
    const file = new URL(encodeURIComponent(name), dir);
    if (!type || !/^[A-Za-z0-9._-]+$/.test(name) || !statSync(file).isFile()) continue;
    const body = readFileSync(file);
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return out;
}

export const assetsRoute: FastifyPluginAsync<{ dir: URL }> = async (app, { dir }) => {
  const assets = loadAssets(dir);
  app.get<{ Params: { name: string } }>('/assets/:name', { config: { ui: 'assets' } }, async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
    reply.header('cache-control', 'public, max-age=86400').header('etag', a.etag);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  });
};
