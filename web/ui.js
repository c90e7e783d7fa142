// DOM helpers shared by the screens: element builder, labelled form fields,
// problem+json errors next to their fields, banners, dialogs, formatting.
import { ApiError, errorText } from './api.js';

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'for') el.htmlFor = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden' || k === 'multiple' || k === 'required' || k === 'readOnly') el[k] = !!v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Element.append without the null/false children (native append prints "null").
export function add(el, ...children) { append(el, children); return el; }

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

let uid = 0;
export const nextId = (p = 'f') => `${p}-${++uid}`;

// A labelled control. opts: {name (the API field), label, type, value, help,
// options [[value, text]], placeholder, attrs}. Returns the wrapper; the
// control is wrapper.control. data-field lets errors find it.
export function field(opts) {
  const id = nextId(opts.name ? opts.name.replace(/[^a-zA-Z0-9]/g, '-') : 'f');
  const errId = `${id}-err`;
  const helpId = opts.help ? `${id}-help` : null;
  const describedby = [helpId, errId].filter(Boolean).join(' ');
  let control;
  const type = opts.type || 'text';
  if (type === 'select') {
    control = h('select', { id, name: opts.name, 'aria-describedby': describedby, ...(opts.attrs || {}) },
      (opts.options || []).map(([v, t]) => h('option', { value: v, selected: String(opts.value ?? '') === String(v) }, t)));
  } else if (type === 'textarea') {
    control = h('textarea', { id, name: opts.name, rows: opts.rows || 4, 'aria-describedby': describedby, placeholder: opts.placeholder, ...(opts.attrs || {}) });
    control.value = opts.value ?? '';
  } else if (type === 'checkbox') {
    control = h('input', { id, name: opts.name, type: 'checkbox', checked: !!opts.value, 'aria-describedby': describedby, ...(opts.attrs || {}) });
    const w = h('div', { class: 'field field-check', dataset: { field: opts.name || '' } },
      h('div', { class: 'check-row' }, control, h('label', { for: id }, opts.label)),
      helpId && h('p', { class: 'help', id: helpId }, opts.help),
      h('p', { class: 'field-error', id: errId, hidden: true }));
    w.control = control;
    return w;
  } else {
    control = h('input', { id, name: opts.name, type, placeholder: opts.placeholder, autocomplete: opts.autocomplete || 'off', 'aria-describedby': describedby, ...(opts.attrs || {}) });
    control.value = opts.value ?? '';
  }
  const w = h('div', { class: 'field', dataset: { field: opts.name || '' } },
    h('label', { for: id }, opts.label),
    control,
    helpId && h('p', { class: 'help', id: helpId }, opts.help),
    h('p', { class: 'field-error', id: errId, hidden: true }));
  w.control = control;
  return w;
}

export function show(el, visible) { el.hidden = !visible; }

// ------------------------------------------------------------ form errors
export function clearErrors(root) {
  for (const e of root.querySelectorAll('.field-error')) { e.textContent = ''; e.hidden = true; }
  for (const e of root.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  for (const e of root.querySelectorAll('.has-error')) e.classList.remove('has-error');
  const b = root.querySelector(':scope .form-banner');
  if (b) { clear(b); b.hidden = true; }
}

// Places each errors[].field message next to the element with that
// data-field (visible ones only); the rest, and the detail, go to the
// form's banner. Focuses the first invalid control. Returns the count placed.
export function showErrors(root, err, aliases = {}) {
  clearErrors(root);
  const banner = root.querySelector('.form-banner');
  const unplaced = [];
  let first = null;
  let placed = 0;
  const errors = err instanceof ApiError ? err.errors : [];
  for (const e of errors) {
    const name = aliases[e.field] || e.field;
    const w = name ? [...root.querySelectorAll('[data-field]')].find((x) => x.dataset.field === name && isVisible(x)) : null;
    const p = w && (w.errorEl || w.querySelector(':scope > .field-error'));
    if (p) {
      p.textContent = p.textContent ? `${p.textContent} ${e.message}` : e.message;
      p.hidden = false;
      w.classList.add('has-error');
      const c = w.control || w.querySelector('input,select,textarea,button');
      if (c) c.setAttribute('aria-invalid', 'true');
      if (!first) first = c || w;
      if (typeof w.onError === 'function') w.onError(e);
      placed++;
    } else {
      unplaced.push(e.field ? `${e.field}: ${e.message}` : e.message);
    }
  }
  if (banner) {
    clear(banner);
    const n = errors.length;
    banner.append(h('p', null, placed && placed === n
      ? `${n === 1 ? 'One field is' : `${n} fields are`} invalid: see the message${n === 1 ? '' : 's'} next to ${n === 1 ? 'it' : 'them'}.`
      : errorText(err)));
    if (unplaced.length) banner.append(h('ul', null, unplaced.map((m) => h('li', null, m))));
    banner.hidden = false;
    if (!first) first = banner;
  }
  if (first && first.focus) {
    if (first === banner) banner.setAttribute('tabindex', '-1');
    first.focus();
  }
  return placed;
}

function isVisible(el) {
  for (let e = el; e; e = e.parentElement) if (e.hidden) return false;
  return true;
}

export function formBanner() {
  return h('div', { class: 'form-banner banner banner-error', role: 'alert', hidden: true });
}

// ------------------------------------------------------------ page banner
export function pageBanner(container, message, kind = 'error') {
  const b = h('div', { class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  container.prepend(b);
  return b;
}

export function errorBox(err) {
  return h('div', { class: 'banner banner-error', role: 'alert' }, errorText(err));
}

let toastTimer = null;
export function toast(message) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}

// --------------------------------------------------------------- dialogs
// A modal <dialog>; resolves true when confirmed.
export function confirmDialog({ title, body, confirmLabel = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const titleId = nextId('dlg');
    const ok = h('button', { type: 'button', class: danger ? 'btn danger' : 'btn primary' }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' }, ok, cancel));
    const opener = document.activeElement;
    const done = (v) => {
      dlg.close();
      dlg.remove();
      if (opener && opener.isConnected && opener.focus) opener.focus();
      resolve(v);
    };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

// ------------------------------------------------------------ formatting
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, fmtTime(iso)) : h('span', { class: 'muted' }, 'never');
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || String(text).toLowerCase().replace(/[^a-z0-9]+/g, '-')}` }, text);
}

export function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// A page header: <h1 tabindex=-1> (focused on navigation) and actions.
export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' },
    h('h1', { tabindex: '-1' }, title),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

export function breadcrumbs(...items) {
  return h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' },
    h('ol', null, items.map(([text, href]) => h('li', null, href ? h('a', { href }, text) : h('span', { 'aria-current': 'page' }, text)))));
}

export function table(columns, rows, opts = {}) {
  const t = h('table', { class: 'data' + (opts.clickable ? ' clickable' : '') },
    opts.caption ? h('caption', { class: 'visually-hidden' }, opts.caption) : null,
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
    h('tbody', null, rows));
  return h('div', { class: 'table-wrap' }, t);
}

// Makes a row open `href` on click (its first link stays the keyboard way in).
export function rowLink(tr, href) {
  tr.addEventListener('click', (e) => {
    if (e.target.closest('a,button,input,select,textarea,label')) return;
    location.hash = href;
  });
  return tr;
}

export function loading() {
  return h('p', { class: 'loading', role: 'status' }, 'Loading…');
}

export function emptyRow(colspan, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan }, text));
}
