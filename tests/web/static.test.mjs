// HTTP test of the static file serving of the web UI: embedded web/ (the
// default) and --web DIR (from disk): types, HEAD, ETag/304, 404 problems,
// 405, no directory traversal, and that /api/ stays authenticated.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync, writeFileSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Lwdm, stopAll, SOURCE_DIR, tempDir } from './helpers.mjs';

let lwdm;
let disk;
let webDir;

before(async () => {
  lwdm = await new Lwdm().start();
  webDir = tempDir('lwdm-webdir-');
  writeFileSync(join(webDir.path, 'index.html'), '<!doctype html><title>from disk</title>');
  writeFileSync(join(webDir.path, 'x.js'), 'export const x = 1;\n');
  symlinkSync('/etc/passwd', join(webDir.path, 'passwd.txt'));
  mkdirSync(join(webDir.path, 'sub'));
  writeFileSync(join(webDir.path, 'sub', 'inner.txt'), 'inner');
  disk = await new Lwdm({ web: webDir.path }).start();
});

after(async () => {
  await stopAll();
  if (webDir) webDir.remove();
});

// A raw request, so paths like /../x reach the server as written.
function raw(port, method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('connect', () => {
      const h = Object.entries({ Host: `127.0.0.1:${port}`, Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      s.write(`${method} ${path} HTTP/1.1\r\n${h}\r\n`);
    });
    s.on('data', (d) => { data += d; });
    s.on('end', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)[1]);
      resolve({ status, head, body: rest.join('\r\n\r\n') });
    });
    s.on('error', reject);
    s.setTimeout(10000, () => { s.destroy(new Error('timeout')); });
  });
}

test('embedded web/: index.html at /, types, cache headers', async () => {
  const r = await fetch(`${lwdm.url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const body = await r.text();
  assert.equal(body, readFileSync(join(SOURCE_DIR, 'web', 'index.html'), 'utf8'), 'the embedded copy is web/index.html');
  for (const [file, type] of [['app.js', 'text/javascript; charset=utf-8'], ['app.css', 'text/css; charset=utf-8'], ['favicon.svg', 'image/svg+xml'], ['index.html', 'text/html; charset=utf-8']]) {
    const x = await fetch(`${lwdm.url}/${file}`);
    assert.equal(x.status, 200, file);
    assert.equal(x.headers.get('content-type'), type, file);
    assert.equal(await x.text(), readFileSync(join(SOURCE_DIR, 'web', file), 'utf8'), file);
  }
});

test('HEAD, ETag and 304', async () => {
  const hd = await fetch(`${lwdm.url}/app.js`, { method: 'HEAD' });
  assert.equal(hd.status, 200);
  assert.equal(Number(hd.headers.get('content-length')), readFileSync(join(SOURCE_DIR, 'web', 'app.js')).length);
  const etag = hd.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = await fetch(`${lwdm.url}/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  const other = await fetch(`${lwdm.url}/app.css`, { headers: { 'If-None-Match': etag } });
  assert.equal(other.status, 200);
});

test('missing files, traversal and odd names are 404 problems; other methods 405', async () => {
  for (const p of ['/nope.js', '/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2fetc%2fpasswd', '/.hidden', '/a/b.js',
    '/index.html/', '//etc/passwd', '/web/index.html', '/CMakeLists.txt']) {
    const r = await raw(lwdm.ports.http, 'GET', p);
    assert.equal(r.status, 404, `${p}: ${r.head}`);
    assert.match(r.head, /Content-Type: application\/problem\+json/i, p);
    assert.equal(JSON.parse(r.body).status, 404, p);
    assert.doesNotMatch(r.body, /root:/, p);
  }
  const post = await raw(lwdm.ports.http, 'POST', '/index.html', { 'Content-Length': '0' });
  assert.equal(post.status, 405);
  assert.match(post.head, /Allow: GET, HEAD/i);
  // the API is not opened by the static files
  const api = await fetch(`${lwdm.url}/api/v1/lwm2m-servers`);
  assert.equal(api.status, 401);
  const unknownApi = await fetch(`${lwdm.url}/api/v1/index.html`);
  assert.equal(unknownApi.status, 401);
  assert.equal((await fetch(`${lwdm.url}/healthz`)).status, 200);
});

test('--web DIR serves from disk, without following symlinks or entering subdirectories', async () => {
  const r = await fetch(`${disk.url}/`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '<!doctype html><title>from disk</title>');
  // edited on disk: the next request sees it (development)
  writeFileSync(join(webDir.path, 'x.js'), 'export const x = 2;\n');
  const x = await fetch(`${disk.url}/x.js`);
  assert.equal(x.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(await x.text(), 'export const x = 2;\n');
  assert.equal((await raw(disk.ports.http, 'GET', '/passwd.txt')).status, 404, 'a symlink is not followed');
  assert.equal((await raw(disk.ports.http, 'GET', '/sub/inner.txt')).status, 404);
  assert.equal((await raw(disk.ports.http, 'GET', '/sub')).status, 404, 'a directory is not a file');
  assert.equal((await raw(disk.ports.http, 'GET', '/../../etc/passwd')).status, 404);
  assert.equal((await raw(disk.ports.http, 'GET', '/app.js')).status, 404, 'only the files of DIR');
});
