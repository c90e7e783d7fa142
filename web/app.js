// lwdm web UI: hash routing, session (login / logout / reload), layout.
import { session, login, logout, setUnauthorizedHandler, events, errorText } from './api.js';
import { h, clear, field, formBanner, showErrors, clearErrors } from './ui.js';
import * as servers from './servers.js';
import * as bootstrap from './bootstrap.js';
import * as groups from './groups.js';
import * as devices from './devices.js';

// [pattern, module.render, nav key]; ":x" captures a segment
const ROUTES = [
  ['/servers', servers.list, 'servers'],
  ['/servers/new', servers.form, 'servers'],
  ['/servers/:id', servers.form, 'servers'],
  ['/bootstrap', bootstrap.render, 'bootstrap'],
  ['/groups', groups.render, 'groups'],
  ['/groups/:id', groups.render, 'groups'],
  ['/groups/:id/:tab', groups.render, 'groups'],
  ['/groups/:id/tasks/new', groups.taskPage, 'groups'],
  ['/groups/:id/tasks/:taskId', groups.taskPage, 'groups'],
  ['/groups/:id/tasks/:taskId/:tab', groups.taskPage, 'groups'],
  ['/devices', devices.list, 'devices'],
  ['/devices/:id', devices.page, 'devices'],
  ['/devices/:id/reports/:reportId', devices.reportPage, 'devices'],
  ['/devices/:id/:tab', devices.page, 'devices'],
];
const HOME = '/devices';

function match(path) {
  const segs = path.split('/').filter(Boolean);
  for (const [pattern, fn, nav] of ROUTES) {
    const ps = pattern.split('/').filter(Boolean);
    if (ps.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < ps.length && ok; i++) {
      if (ps[i].startsWith(':')) params[ps[i].slice(1)] = decodeURIComponent(segs[i]);
      else ok = ps[i] === segs[i];
    }
    if (ok) return { fn, nav, params };
  }
  return null;
}

const main = () => document.getElementById('main');
let cleanup = null;
let renderSeq = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || HOME;
  const [path, qs] = raw.split('?');
  return { path: path || HOME, query: new URLSearchParams(qs || '') };
}

async function route() {
  const seq = ++renderSeq;
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const { path, query } = parseHash();
  const s = session.get();
  if (!s) { renderLogin(path === '/login' ? (query.get('next') || HOME) : path); return; }
  if (path === '/login') { location.hash = '#' + (query.get('next') || HOME); return; }
  showChrome(s);
  const m = match(path);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (m && a.dataset.nav === m.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // each render gets its own container: a stale render (the user moved on
  // while it awaited the API) writes into a detached element
  const el = h('div', { class: 'view' });
  clear(main()).append(el);
  if (!m) {
    el.append(h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, 'There is no screen at ', h('code', null, path), '. ', h('a', { href: '#' + HOME }, 'Go to the devices list'), '.'));
    focusHeading();
    return;
  }
  const ctx = { query, path, isCurrent: () => seq === renderSeq, setCleanup: (fn) => { if (seq === renderSeq) cleanup = fn; else fn(); } };
  try {
    await m.fn(el, m.params, ctx);
  } catch (e) {
    if (seq !== renderSeq) return;
    el.append(h('div', { class: 'banner banner-error', role: 'alert' }, errorText(e)));
  }
  if (seq === renderSeq) focusHeading();
}

let firstRender = true;
function focusHeading() {
  const h1 = main().querySelector('h1');
  const active = document.activeElement;
  document.title = `${h1 ? h1.textContent + ' — ' : ''}lwdm`;
  // on a fresh page load focus stays at the top (Tab reaches the skip link);
  // after a navigation it moves to the new screen's heading
  if (firstRender) { firstRender = false; return; }
  // keep focus where the view put it (a field), else move it to the heading
  if (active && active !== document.body && main().contains(active) && active.tagName !== 'H1') return;
  if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
}

function showChrome(s) {
  document.getElementById('mainnav').hidden = false;
  document.getElementById('session').hidden = false;
  document.getElementById('user-name').textContent = s.username || '';
  events.start();
}

function hideChrome() {
  document.getElementById('mainnav').hidden = true;
  document.getElementById('session').hidden = true;
  events.stop();
}

function renderLogin(next, notice) {
  hideChrome();
  firstRender = false;
  const el = clear(main());
  const user = field({ name: 'username', label: 'User name', autocomplete: 'username', value: 'admin' });
  user.control.autocomplete = 'username';
  const pass = field({ name: 'password', label: 'Password', type: 'password' });
  pass.control.autocomplete = 'current-password';
  const banner = formBanner();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Log in');
  const form = h('form', { class: 'card login', novalidate: true, 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', tabindex: '-1' }, 'Log in to lwdm'),
    notice ? h('p', { class: 'banner banner-info', role: 'status' }, notice) : null,
    banner, user, pass,
    h('div', { class: 'actions' }, submit),
    h('p', { class: 'help' }, 'The same users and passwords as the REST API. On the first start lwdm prints the admin password (or uses LWDM_ADMIN_PASSWORD).'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      await login(user.control.value.trim(), pass.control.value);
      const target = next && next !== '/login' ? next : HOME;
      if (location.hash === '#' + target) route(); else location.hash = '#' + target;
    } catch (err) {
      if (err.status === 401) err.problem.detail = 'wrong user name or password';
      showErrors(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  el.append(form);
  document.title = 'Log in — lwdm';
  (user.control.value ? pass.control : user.control).focus();
}

setUnauthorizedHandler(() => {
  session.clear();
  const { path } = parseHash();
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  renderSeq++;
  renderLogin(path, 'Your session has ended (the token expired or was revoked). Log in again.');
});

function liveIndicator() {
  const el = document.getElementById('live-state');
  const words = { idle: '', connecting: 'Events: connecting…', live: 'Events: live', reconnecting: 'Events: reconnecting…', unavailable: 'Events: unavailable' };
  events.onState((st, detail) => {
    el.textContent = words[st] || '';
    el.dataset.state = st;
    el.title = detail || words[st] || '';
  });
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', async () => {
    await logout();
    location.hash = '#/login';
    route();
  });
  document.getElementById('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    main().focus();
  });
  liveIndicator();
  route();
});
