// The REST client of the UI: a fetch wrapper that attaches the bearer token,
// turns problem+json answers into ApiError, and a reader for the SSE stream.
const TOKEN_KEY = 'lwdm.session';
const BASE = '/api/v1';

export const session = {
  get() {
    try {
      const s = JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
      if (!s || !s.token) return null;
      if (s.expiresAt && Date.parse(s.expiresAt) < Date.now()) return null;
      return s;
    } catch {
      return null;
    }
  },
  set(s) { localStorage.setItem(TOKEN_KEY, JSON.stringify(s)); },
  clear() { localStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || fallback || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
    this.errors = Array.isArray(p.errors) ? p.errors : [];
  }
}

const STATUS_WORDS = {
  0: 'lwdm could not be reached',
  400: 'The request was refused',
  401: 'You are not logged in (or your session has expired)',
  403: 'Not allowed in this domain',
  404: 'Not found',
  405: 'Not supported',
  409: 'Conflict',
  413: 'Too large',
  422: 'Some values are not valid',
  500: 'lwdm had an internal error',
  502: 'The device answered with an error',
  503: 'Unavailable',
  504: 'The device did not answer',
};

// One sentence (or two) for any error, for banners and toasts.
export function errorText(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  const head = (err.problem && err.problem.title) || STATUS_WORDS[err.status] || `Error ${err.status}`;
  const detail = err.problem && err.problem.detail;
  if (err.status === 0) return `${STATUS_WORDS[0]}: ${err.message}`;
  return detail ? `${head} (${err.status}): ${detail}` : `${head} (${err.status}).`;
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export async function api(method, path, body, opts = {}) {
  const s = session.get();
  const headers = { Accept: 'application/json, application/problem+json' };
  if (s && !opts.anonymous) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, (e && e.message) || 'network error');
  }
  const ctype = res.headers.get('Content-Type') || '';
  let data = null;
  if (res.status !== 204 && /json/.test(ctype)) {
    try { data = await res.json(); } catch { data = null; }
  } else if (res.status !== 204) {
    data = await res.text();
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && typeof data === 'object' ? data : { detail: typeof data === 'string' && data ? data.slice(0, 300) : undefined });
    if (res.status === 401 && !opts.anonymous) onUnauthorized(err);
    throw err;
  }
  if (opts.withResponse) return { data, res };
  return data;
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b ?? {}, o);
export const put = (p, b, o) => api('PUT', p, b, o);
export const patch = (p, b, o) => api('PATCH', p, b, o);
export const del = (p, o) => api('DELETE', p, undefined, o);

// Every item of a paged collection (bounded: at most `max`).
export async function getAll(path, max = 5000) {
  const sep = path.includes('?') ? '&' : '?';
  let items = [];
  for (let offset = 0; offset < max;) {
    const page = await get(`${path}${sep}limit=1000&offset=${offset}`);
    items = items.concat(page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) break;
  }
  return items;
}

export async function login(username, password) {
  const r = await api('POST', '/auth/token', { username, password }, { anonymous: true });
  session.set({ token: r.token, expiresAt: r.expiresAt, username });
  return r;
}

export async function logout() {
  const s = session.get();
  if (s) {
    try { await api('DELETE', '/auth/token'); } catch { /* revoked or expired already */ }
  }
  session.clear();
}

// ---------------------------------------------------------------- events
// One live connection to GET /api/v1/events (server-sent events), read with
// fetch() so the bearer header can be sent. Views add listeners; the hub
// reconnects with ?since= after a drop.
export const events = {
  state: 'idle',            // idle | connecting | live | reconnecting | unavailable
  detail: '',
  lastSeq: null,
  listeners: new Set(),
  stateListeners: new Set(),
  ctrl: null,

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); },
  onState(fn) { this.stateListeners.add(fn); fn(this.state, this.detail); return () => this.stateListeners.delete(fn); },
  setState(st, detail = '') {
    this.state = st;
    this.detail = detail;
    for (const fn of this.stateListeners) fn(st, detail);
  },

  start() {
    if (this.ctrl) return;
    this.ctrl = new AbortController();
    this.loop(this.ctrl.signal);
  },
  stop() {
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
    this.setState('idle');
  },

  async loop(signal) {
    let delay = 1000;
    while (!signal.aborted) {
      const s = session.get();
      if (!s) { this.setState('idle'); return; }
      this.setState(this.state === 'live' ? 'reconnecting' : 'connecting');
      try {
        const q = this.lastSeq != null ? `?since=${this.lastSeq}` : '';
        const res = await fetch(`${BASE}/events${q}`, {
          headers: { Authorization: `Bearer ${s.token}`, Accept: 'text/event-stream' },
          signal,
          cache: 'no-store',
        });
        if (res.status === 404 || res.status === 405 || res.status === 501) {
          this.setState('unavailable', `this lwdm does not offer live events (GET /api/v1/events answered ${res.status})`);
          await res.body?.cancel().catch(() => {});
          return;
        }
        if (res.status === 401) { onUnauthorized(new ApiError(401, null)); return; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        this.setState('live');
        delay = 1000;
        await this.read(res.body, signal);
      } catch (e) {
        if (signal.aborted) return;
        this.setState('reconnecting', (e && e.message) || '');
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  },

  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { data: [] };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || signal.aborted) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          let line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            if (ev.data.length) this.dispatch(ev);
            ev = { data: [] };
          } else if (!line.startsWith(':')) {
            const i = line.indexOf(':');
            const k = i < 0 ? line : line.slice(0, i);
            let v = i < 0 ? '' : line.slice(i + 1);
            if (v.startsWith(' ')) v = v.slice(1);
            if (k === 'data') ev.data.push(v);
            else if (k === 'event') ev.event = v;
            else if (k === 'id') ev.id = v;
          }
        }
      }
    } finally {
      reader.releaseLock();
    }
  },

  dispatch(raw) {
    let msg;
    try { msg = JSON.parse(raw.data.join('\n')); } catch { return; }
    if (!msg.type && raw.event) msg.type = raw.event;
    if (msg.seq != null) this.lastSeq = msg.seq;
    else if (raw.id) this.lastSeq = raw.id;
    for (const fn of this.listeners) {
      try { fn(msg); } catch (e) { console.warn('event listener failed', e); }
    }
  },
};
