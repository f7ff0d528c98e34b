// The built single-page app (web/dist, made by `npm run build:web`). Its shell and assets are
// the only things the daemon serves without a session (Public in api/route-roles.ts): a browser needs the sign-in page
// before it can sign in, and these files are the same for every host and hold no data.
// The app routes with the URL hash (#/vms/web1), so the server needs no catch-all route and
// every other path stays behind authentication.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { httpStatusOf, type ErrorCode } from '../common/index.ts';

export const DEFAULT_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

// Same-origin everything; inline styles because React's style props and noVNC's canvas
// sizing set them; blob:/data: images because noVNC draws its cursor from them.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function registerStaticFiles(app: FastifyInstance, distDir: string): void {
  const send = async (reply: FastifyReply, rel: string, immutable: boolean): Promise<unknown> => {
    const root = resolve(distDir);
    const file = resolve(root, rel);
    if (!file.startsWith(root + sep)) return reply.code(httpStatusOf('NOT_FOUND')).send({ code: 'NOT_FOUND', message: 'No such file' });
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      if (rel === 'index.html') {
        return reply.code(httpStatusOf('NOT_BUILT')).send({ code: 'NOT_BUILT' satisfies ErrorCode, message: `The web console is not built (${root} has no index.html): run npm run build:web` });
      }
      return reply.code(httpStatusOf('NOT_FOUND')).send({ code: 'NOT_FOUND', message: `No file ${rel}` });
    }
    void reply
      .header('content-type', TYPES[extname(file)] ?? 'application/octet-stream')
      .header('content-length', st.size)
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (rel === 'index.html') void reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY');
    return reply.send(createReadStream(file));
  };
  const hide = { schema: { hide: true } };
  app.get('/', hide, async (_req, reply) => send(reply, 'index.html', false));
  app.get('/index.html', hide, async (_req, reply) => send(reply, 'index.html', false));
  app.get('/favicon.svg', hide, async (_req, reply) => send(reply, 'favicon.svg', false));
  // Vite names assets by content hash, so they never change under the same name.
  app.get<{ Params: { '*': string } }>('/assets/*', hide, async (req, reply) => send(reply, join('assets', req.params['*']), true));
}
