// Helpers of the browser tests: a real `lwdm serve` on free 127.0.0.1 ports
// with a temporary database, lwdm-sim runs, and headless Debian Chromium
// driven by playwright-core. Every process started here is stopped by
// stopAll() (SIGTERM, then SIGKILL), which each test file calls in after().
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.LWDM_SOURCE_DIR || resolve(here, '..', '..');
export const BUILD_DIR = process.env.LWDM_BUILD_DIR || join(SOURCE_DIR, 'build');
export const LWDM = join(BUILD_DIR, 'lwdm');
export const LWDM_SIM = join(BUILD_DIR, 'lwdm-sim');
export const ARTIFACTS = join(BUILD_DIR, 'web-artifacts');
export const CHROMIUM = process.env.LWDM_CHROMIUM || '/usr/bin/chromium';
export const ADMIN_PASSWORD = 'web-Adm1n-pw-Xy7q';

const procs = new Set();

export async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is not installed: run \`npm ci --prefix ${join(SOURCE_DIR, 'tests/web')}\` (scripts/test.sh does) — ${e.message}`);
  }
}

// ------------------------------------------------------------------ ports
function freeTcp() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}
function freeUdp() {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    s.once('error', rej);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}
function tcpFree(port) {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}
function udpFree(port) {
  return new Promise((res) => {
    const s = createSocket('udp4');
    s.once('error', () => res(false));
    s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}
// The first port of the kernel's ephemeral range (32768 by default).
function ephemeralLow() {
  try {
    return parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0], 10) || 32768;
  } catch {
    return 32768;
  }
}
// Ports are drawn at random below the ephemeral range (as tests/e2e/lwdm_e2e.py
// does): a port from bind(0) is an ephemeral one, which another test's socket
// (a client's source port) may be handed before lwdm binds it. CoAP ports must
// be free for UDP and for TCP: lwdm also listens for CoAP over TCP/TLS on the
// same numbers (--tcp on) and will not start if one is taken.
export async function freePorts() {
  const low = 10000, high = ephemeralLow();
  const seen = new Set();
  const pick = async (udp) => {
    for (let i = 0; high - low > 1000 && i < 200; i++) {
      const p = low + Math.floor(Math.random() * (high - low));
      if (seen.has(p) || !(await tcpFree(p)) || (udp && !(await udpFree(p)))) continue;
      return p;
    }
    for (;;) { /* no room below the ephemeral range: bind(0) */
      const p = udp ? await freeUdp() : await freeTcp();
      if (!seen.has(p) && (await tcpFree(p))) return p;
    }
  };
  const out = {};
  for (const [k, udp] of [['http', false], ['coap', true], ['coaps', true], ['bsCoap', true], ['bsCoaps', true]]) {
    out[k] = await pick(udp);
    seen.add(out[k]);
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(150);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last && last.message ? last.message : last})`);
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LWDM_')) env[k] = v;
  return { ...env, ...extra };
}

// ------------------------------------------------------------------ lwdm
export class Lwdm {
  constructor({ args = [], web = null } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'lwdm-web-'));
    this.db = join(this.dir, 'lwdm.db');
    this.args = args;
    this.web = web;
    this.token = null;
  }

  async start() {
    for (const p of [LWDM, LWDM_SIM]) assert.ok(existsSync(p), `binary not built: ${p} (LWDM_BUILD_DIR=${BUILD_DIR})`);
    this.ports = await freePorts();
    const p = this.ports;
    const cmd = ['serve', '--db', this.db, '--http', `127.0.0.1:${p.http}`, '--coap-addr', '127.0.0.1',
      '--coap', String(p.coap), '--coaps', String(p.coaps), '--bs-coap', String(p.bsCoap), '--bs-coaps', String(p.bsCoaps),
      '--public-host', '127.0.0.1', '--log-level', 'debug', ...(this.web ? ['--web', this.web] : []), ...this.args];
    this.logPath = join(this.dir, 'lwdm.log');
    const fd = openSync(this.logPath, 'w');
    this.proc = spawn(LWDM, cmd, { cwd: this.dir, stdio: ['ignore', fd, fd], env: cleanEnv({ LWDM_ADMIN_PASSWORD: ADMIN_PASSWORD }) });
    closeSync(fd);
    procs.add(this.proc);
    this.proc.on('exit', () => procs.delete(this.proc));
    this.url = `http://127.0.0.1:${p.http}`;
    await waitUntil(async () => {
      if (this.proc.exitCode !== null) throw new Error(`lwdm exited with ${this.proc.exitCode}:\n${this.log().slice(-3000)}`);
      const r = await fetch(`${this.url}/healthz`).catch(() => null);
      return r && r.status === 200;
    }, 20000, 'lwdm /healthz');
    return this;
  }

  log() { try { return readFileSync(this.logPath, 'utf8'); } catch { return ''; } }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    await stopProc(this.proc);
  }

  async login() {
    const r = await fetch(`${this.url}/api/v1/auth/token`, { method: 'POST', body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    assert.equal(r.status, 200, 'login through the API');
    this.token = (await r.json()).token;
  }

  // REST call with the admin token; returns {status, body}.
  async api(method, path, body) {
    if (!this.token) await this.login();
    const r = await fetch(`${this.url}/api/v1${path}`, {
      method, headers: { Authorization: `Bearer ${this.token}` }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: r.status, body: json };
  }
}

async function stopProc(p) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, 10000);
  await exited;
  clearTimeout(t);
}

// Runs `lwdm-sim bootstrap` to completion (bounded); {code, stdout, stderr}.
export function runSim(lwdm, { count = 1, prefix = 'web-', extra = [], timeoutMs = 60000 } = {}) {
  return new Promise((resolvePromise) => {
    const args = ['bootstrap', '--server', `coap://127.0.0.1:${lwdm.ports.bsCoap}`, '--count', String(count), '--prefix', prefix, ...extra];
    const p = spawn(LWDM_SIM, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv({}) });
    procs.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => { clearTimeout(t); procs.delete(p); resolvePromise({ code, stdout: out, stderr: err }); });
  });
}

export async function stopAll() {
  await Promise.all([...procs].map(stopProc));
}

// --------------------------------------------------------------- browser
// A browser page that records console errors and uncaught page errors.
// API answers with 4xx/5xx status are logged by Chromium as "Failed to load
// resource" errors; those are expected (the UI shows them in words, and the
// tests check the words) and are kept apart in `apiErrors`. Anything else
// fails the test through assertNoErrors().
export async function openBrowser() {
  const { chromium } = await loadPlaywright();
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (Debian package chromium)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
  return browser;
}

export async function newPage(browser, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.errors = [];
  page.apiErrors = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    if (/^Failed to load resource: the server responded with a status of [45]\d\d/.test(m.text()) && /\/api\/v1\//.test(url)) {
      page.apiErrors.push(`${m.text()} ${url}`);
      return;
    }
    page.errors.push(`console.error: ${m.text()} ${url}`);
  });
  page.on('pageerror', (e) => page.errors.push(`uncaught: ${e.message}\n${e.stack || ''}`));
  page.setDefaultTimeout(15000);
  return page;
}

export function assertNoErrors(page) {
  assert.deepEqual(page.errors, [], `console or page errors:\n${page.errors.join('\n')}`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export async function uiLogin(page, lwdm) {
  await page.goto(`${lwdm.url}/`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
}

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  return { path: d, remove: () => rmSync(d, { recursive: true, force: true }) };
}
