// Devices: list with search and state, device page (registration, last
// bootstrap, object tree with read/write/execute, task reports, live
// events), and the task report page with its execution log.
import { get, getAll, post, put, del, events, errorText, ApiError } from './api.js';
import {
  h, add, clear, field, toast, pageHeader, breadcrumbs, table, rowLink, loading, emptyRow, errorBox, timeEl, badge, debounce,
  confirmDialog, fmtTime,
} from './ui.js';
import { pager } from './servers.js';
import { statusBadge } from './groups.js';

const OBJECT_NAMES = {
  0: 'LwM2M Security', 1: 'LwM2M Server', 2: 'Access Control', 3: 'Device', 4: 'Connectivity Monitoring', 5: 'Firmware Update',
  6: 'Location', 7: 'Connectivity Statistics', 9: 'Software Management', 10: 'Cellular Connectivity', 11: 'APN Connection Profile',
  21: 'LwM2M OSCORE', 3303: 'Temperature', 3304: 'Humidity', 3311: 'Light Control', 3316: 'Voltage', 3336: 'Location',
};
const DEVICE_EVENT_TYPES = ['bootstrap', 'bootstrap-step', 'registration', 'update', 'deregistration', 'expiry', 'notification', 'request', 'task-status'];

// online | asleep | bootstrapping | offline, from a device representation
export function deviceState(d) {
  if (d.lastBootstrap && d.lastBootstrap.status === 'in_progress') return 'bootstrapping';
  const r = d.registration;
  if (r && r.registered !== false) return r.online === false ? 'asleep' : 'online';
  return 'offline';
}
const STATE_WORDS = { online: 'online', asleep: 'registered, asleep', bootstrapping: 'bootstrapping', offline: 'offline' };
const stateBadge = (st) => badge(STATE_WORDS[st] || st, st === 'bootstrapping' ? 'bootstrap' : st === 'asleep' ? 'warning' : st);

// ------------------------------------------------------------------- list
export async function list(el, params, ctx) {
  let offset = 0;
  const search = field({ name: 'q', label: 'Search', type: 'search', value: ctx.query.get('q') || '', placeholder: 'Endpoint name' });
  search.classList.add('search');
  const state = field({ name: 'state', label: 'State', type: 'select', value: ctx.query.get('state') || '', options: [['', 'All devices'], ['registered', 'Registered'], ['unregistered', 'Not registered']] });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  el.append(
    breadcrumbs(['Devices']),
    pageHeader('Devices'),
    h('p', { class: 'intro' }, 'Devices known to lwdm: created by their first bootstrap, or added through the API. The state updates live.'),
    h('div', { class: 'toolbar' }, search, state),
    results);
  async function load() {
    const q = search.control.value.trim();
    const st = state.control.value;
    let page;
    try {
      page = await get(`/devices?limit=50&offset=${offset}${q ? '&q=' + encodeURIComponent(q) : ''}${st ? '&state=' + st : ''}`);
    } catch (e) {
      clear(results).append(errorBox(e));
      return;
    }
    if (!ctx.isCurrent()) return;
    // the registration state: embedded in the items, else asked per device
    await Promise.all(page.items.filter((d) => !('registration' in d)).map(async (d) => {
      try { d.registration = await get(`/devices/${d.id}/registration`); } catch { d.registration = null; }
    }));
    if (!ctx.isCurrent()) return;
    const rows = page.items.map((d) => {
      const s = deviceState(d);
      return rowLink(h('tr', { dataset: { endpoint: d.endpoint, state: s } },
        h('td', null, h('a', { href: `#/devices/${d.id}` }, d.endpoint)),
        h('td', null, stateBadge(s)),
        h('td', null, d.lastBootstrap ? [badge(d.lastBootstrap.status === 'success' ? 'success' : d.lastBootstrap.status, d.lastBootstrap.status), ' '] : null, timeEl(d.lastBootstrapAt)),
        h('td', { class: 'opt' }, timeEl(d.lastRegistrationAt)),
        h('td', { class: 'opt' }, timeEl(d.lastContactAt)),
        h('td', { class: 'opt' }, d.domain)), `#/devices/${d.id}`);
    });
    clear(results).append(
      table([{ label: 'Endpoint' }, { label: 'State' }, { label: 'Last bootstrap' }, { label: 'Last registration', class: 'opt' }, { label: 'Last contact', class: 'opt' }, { label: 'Domain', class: 'opt' }],
        rows.length ? rows : [emptyRow(6, q || st ? 'No device matches.' : 'No devices yet. Point a device (or lwdm-sim) at the bootstrap port and it appears here.')],
        { clickable: true, caption: 'Devices' }),
      pager(page, (o) => { offset = o; load(); }));
  }
  const reload = debounce(() => load(), 300);
  search.control.addEventListener('input', () => { offset = 0; reload(); });
  state.control.addEventListener('change', () => { offset = 0; load(); });
  await load();
  const off = events.on((ev) => { if (['bootstrap', 'registration', 'update', 'deregistration', 'expiry'].includes(ev.type)) reload(); });
  // without live events, keep the list fresh by polling
  const timer = setInterval(() => { if (events.state !== 'live' && !document.hidden) load(); }, 10000);
  ctx.setCleanup(() => { off(); clearInterval(timer); });
}

// ---------------------------------------------------------- device page
const TABS = [['overview', 'Overview'], ['objects', 'Objects'], ['reports', 'Task reports'], ['events', 'Live events']];

export async function page(el, params, ctx) {
  const id = Number(params.id);
  const tab = params.tab || 'overview';
  el.append(loading());
  const d = await get(`/devices/${id}`);
  if (!('registration' in d)) d.registration = (await registrationOf(d)).reg;
  clear(el);
  const stateEl = h('span');
  const paintState = (dev) => clear(stateEl).append(stateBadge(deviceState(dev)));
  paintState(d);
  add(el,
    breadcrumbs(['Devices', '#/devices'], [d.endpoint]),
    pageHeader(`Device ${d.endpoint}`),
    h('div', { class: 'state-line' }, stateEl, h('span', { class: 'muted' }, `ID ${d.id} · domain ${d.domain}${d.autoCreated ? ' · created by its first bootstrap' : ''}`),
      d.blacklisted ? badge('blacklisted', 'error') : null),
    h('nav', { class: 'tabs', 'aria-label': 'Device sections' }, TABS.map(([k, t]) => h('a', { href: `#/devices/${id}/${k}`, 'aria-current': k === tab ? 'page' : null }, t))));
  const body = h('div', { class: 'tab-body' });
  el.append(body);
  const cleanups = [];
  if (tab === 'overview') await overview(body, d, ctx, cleanups, paintState);
  else if (tab === 'objects') await objectsTab(body, d, ctx);
  else if (tab === 'reports') await reportsTab(body, d);
  else if (tab === 'events') eventsTab(body, d, cleanups);
  else body.append(h('p', null, `No such tab “${tab}”.`));
  ctx.setCleanup(() => cleanups.forEach((f) => f()));
}

async function registrationOf(d) {
  try {
    return { reg: await get(`/devices/${d.id}/registration`) };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { reg: null, why: e };
    return { reg: null, err: e };
  }
}

async function overview(el, d, ctx, cleanups, paintState) {
  const regBox = h('section', { class: 'card', 'aria-labelledby': 'reg-title' });
  const bsBox = h('section', { class: 'card', 'aria-labelledby': 'bs-title' });
  const infoBox = h('section', { class: 'card', 'aria-labelledby': 'info-title' });
  el.append(h('div', { class: 'columns' }, h('div', null, regBox, infoBox), bsBox));

  async function paintReg() {
    const { reg, err } = await registrationOf(d);
    if (!ctx.isCurrent()) return;
    clear(regBox).append(h('h2', { id: 'reg-title' }, 'Registration'));
    if (err) { regBox.append(errorBox(err)); return; }
    if (!reg) {
      regBox.append(h('p', { class: 'muted' }, 'Not registered: the device has no live registration with this management server.'),
        h('p', { class: 'muted' }, 'Last registration: ', timeEl(d.lastRegistrationAt)));
      return;
    }
    const row = (k, v) => [h('dt', null, k), h('dd', null, v ?? '—')];
    regBox.append(h('dl', { class: 'kv' },
      row('State', reg.online === false ? 'registered, asleep (queue mode)' : 'online'),
      row('Endpoint', reg.endpoint), row('LwM2M version', reg.lwm2mVersion), row('Binding', reg.binding),
      row('Queue mode', reg.queueMode ? 'yes' : 'no'), row('Lifetime', reg.lifetime != null ? `${reg.lifetime} s` : null),
      row('Transport', `${reg.transport || ''}${reg.secure ? ' (DTLS)' : ''}`), row('Address', reg.address), row('Location', reg.location),
      row('SMS number', reg.sms), row('Registered', timeEl(reg.registeredAt)), row('Last update', timeEl(reg.lastUpdateAt)),
      row('Expires', timeEl(reg.expiresAt)), row('Awake until', reg.awakeUntil ? timeEl(reg.awakeUntil) : null),
      row('Content formats', (reg.contentFormats || []).join(', ')),
      row('Objects', h('code', null, reg.objectLinks || ''))));
  }

  function paintBootstrap(dev) {
    clear(bsBox).append(h('h2', { id: 'bs-title' }, 'Last bootstrap'));
    const lb = dev.lastBootstrap;
    if (!lb) { bsBox.append(h('p', { class: 'muted' }, 'The device has not bootstrapped with lwdm.')); return; }
    bsBox.append(h('p', null, badge(lb.status, lb.status), ' ', timeEl(dev.lastBootstrapAt)));
    const steps = lb.steps || [];
    bsBox.append(table([{ label: 'Operation' }, { label: 'Path' }, { label: 'Result' }, { label: 'ms', class: 'num' }],
      steps.length ? steps.map((s) => h('tr', null, h('td', null, s.op), h('td', null, h('code', null, s.path || '')), h('td', null, s.code || s.error || ''), h('td', { class: 'num' }, s.ms ?? ''))) : [emptyRow(4, 'No steps recorded.')],
      { caption: 'Bootstrap steps' }));
  }

  function paintInfo(dev) {
    const cred = (c) => (c ? `${c.securityMode}${c.pskIdentity ? ` · identity ${c.pskIdentity}` : ''}${c.pskSet ? ' · key set' : ''}` : 'nosec');
    const props = Object.entries(dev.properties || {});
    clear(infoBox).append(h('h2', { id: 'info-title' }, 'Device'), h('dl', { class: 'kv' },
      h('dt', null, 'Bootstrap credentials'), h('dd', null, cred(dev.bootstrapCredentials)),
      h('dt', null, 'Management credentials'), h('dd', null, cred(dev.managementCredentials)),
      h('dt', null, 'Groups'), h('dd', { class: 'dev-groups' }, (dev.groups || []).length ? dev.groups.map((g, i) => [i ? ', ' : '', h('a', { href: `#/groups/${g}` }, groupNames.get(g) || `group ${g}`)]) : '—'),
      h('dt', null, 'Properties'), h('dd', null, props.length ? props.map(([k, v]) => `${k}=${v}`).join(', ') : '—'),
      h('dt', null, 'Created'), h('dd', null, timeEl(dev.createdAt)),
      h('dt', null, 'Last contact'), h('dd', null, timeEl(dev.lastContactAt))),
    h('div', { class: 'actions form-actions' },
      h('button', { type: 'button', class: 'btn', onclick: async () => {
        try { await post(`/devices/${dev.id}/bootstrap`, {}); toast(`Asked ${dev.endpoint} to bootstrap again (Bootstrap-Request Trigger).`); } catch (e) { toast(errorText(e)); }
      } }, 'Trigger bootstrap'),
      h('button', { type: 'button', class: 'btn danger', onclick: async () => {
        const ok = await confirmDialog({ title: 'Delete device', danger: true, confirmLabel: 'Delete', body: [h('p', null, `Delete the device “${dev.endpoint}” with its credentials, memberships, tasks and reports?`)] });
        if (!ok) return;
        try { await del(`/devices/${dev.id}`); toast(`Deleted device ${dev.endpoint}.`); location.hash = '#/devices'; } catch (e) { toast(errorText(e)); }
      } }, 'Delete device')));
  }

  const groupNames = new Map();
  try { for (const g of (await get(`/devices/${d.id}/groups`)).items || []) groupNames.set(g.id, g.name); } catch { /* ids only */ }
  paintBootstrap(d);
  paintInfo(d);
  await paintReg();
  const refresh = debounce(async () => {
    try {
      const dev = await get(`/devices/${d.id}`);
      if (!('registration' in dev)) dev.registration = (await registrationOf(dev)).reg;
      if (!ctx.isCurrent()) return;
      Object.assign(d, dev);
      paintState(dev);
      paintBootstrap(dev);
      paintInfo(dev);
      await paintReg();
    } catch { /* shown on the next navigation */ }
  }, 300);
  cleanups.push(events.on((ev) => { if (ev.deviceId === d.id && ev.type !== 'notification') refresh(); }));
}

// ------------------------------------------------------------ objects tab
async function objectsTab(el, d, ctx) {
  const { reg, err } = await registrationOf(d);
  if (!ctx.isCurrent()) return;
  el.append(h('h2', null, 'Objects'));
  if (err) el.append(errorBox(err));
  else if (!reg) el.append(h('p', { class: 'banner banner-info', role: 'status' }, 'The device is not registered, so its objects are not known and it cannot be read or written now. Operations below answer “device offline”.'));
  el.append(manualOps(d));
  if (!reg) return;
  const byObj = new Map();
  for (const o of reg.objects || parseLinks(reg.objectLinks)) {
    const m = /^\/(\d+)(?:\/(\d+))?/.exec(o.path || '');
    if (!m) continue;
    const oid = Number(m[1]);
    if (!byObj.has(oid)) byObj.set(oid, { ver: o.ver, instances: [] });
    if (m[2] !== undefined) byObj.get(oid).instances.push(Number(m[2]));
  }
  const tree = h('div', { class: 'obj-tree' });
  for (const [oid, o] of [...byObj.entries()].sort((a, b) => a[0] - b[0])) {
    const name = OBJECT_NAMES[oid] ? `${OBJECT_NAMES[oid]} ` : '';
    const det = h('details', { dataset: { object: oid } },
      h('summary', null, `${name}/${oid}`, o.ver ? h('span', { class: 'muted' }, ` v${o.ver}`) : null, h('span', { class: 'muted' }, ` · ${o.instances.length} instance${o.instances.length === 1 ? '' : 's'}`)));
    const insts = o.instances.length ? o.instances : [null];
    for (const i of insts) {
      const path = i === null ? `/${oid}` : `/${oid}/${i}`;
      const result = h('div', { class: 'result' });
      det.append(h('div', { class: 'inst' },
        h('div', { class: 'inst-head' }, h('strong', null, path),
          h('button', { type: 'button', class: 'btn small', 'aria-label': `Read ${path}`, onclick: () => readInto(d, path, result) }, 'Read')),
        result));
    }
    tree.append(det);
  }
  el.append(byObj.size ? tree : h('p', { class: 'muted' }, 'The registration lists no objects.'));
}

// "</>;ct=110,</1/0>,</3/0>;ver=1.1" -> [{path: "/1/0"}, {path: "/3/0", ver: "1.1"}]
function parseLinks(text) {
  const out = [];
  for (const part of String(text || '').split(',')) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m || !/^\/\d+/.test(m[1])) continue;
    const ver = /;\s*ver="?([\d.]+)"?/.exec(m[2]);
    out.push({ path: m[1], ver: ver ? ver[1] : undefined });
  }
  return out;
}

function dataUrl(d, path) { return `/devices/${d.id}/data${path}`; }

async function readInto(d, path, box) {
  clear(box).append(loading());
  try {
    const r = await get(dataUrl(d, path));
    renderRecords(d, path, r, box);
  } catch (e) {
    clear(box).append(errorBox(e));
  }
}

function renderRecords(d, path, r, box) {
  const recs = r.records || (r.value !== undefined ? [{ path, value: r.value, type: r.type }] : []);
  const rows = recs.map((rec) => {
    const valueCell = h('td', { class: 'value' }, h('code', null, fmtValue(rec)));
    const tr = h('tr', { dataset: { path: rec.path } },
      h('td', null, h('code', null, rec.path)), h('td', null, rec.name || ''), h('td', { class: 'opt' }, rec.type || ''), valueCell,
      h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn small', 'aria-label': `Write ${rec.path}`, onclick: () => editValue(d, rec, valueCell) }, 'Write')));
    return tr;
  });
  clear(box).append(h('p', { class: 'muted' }, `${r.code || ''} ${r.format ? `· ${r.format}` : ''}`),
    table([{ label: 'Path' }, { label: 'Resource' }, { label: 'Type', class: 'opt' }, { label: 'Value' }, { label: 'Actions', class: 'row-actions' }],
      rows.length ? rows : [emptyRow(5, 'No values.')], { caption: `Values of ${path}`, }));
}

function fmtValue(rec) {
  if (rec.type === 'time' && typeof rec.value === 'number') return `${rec.value} (${fmtTime(new Date(rec.value * 1000).toISOString())})`;
  return typeof rec.value === 'string' ? rec.value : JSON.stringify(rec.value);
}

function editValue(d, rec, cell) {
  const id = `w-${rec.path.replace(/\//g, '-')}`;
  const input = h('input', { id, value: typeof rec.value === 'string' ? rec.value : JSON.stringify(rec.value) });
  const msg = h('span', { role: 'status' });
  const form = h('form', { class: 'inline-form', novalidate: true },
    h('label', { class: 'visually-hidden', for: id }, `New value of ${rec.path}`), input,
    h('button', { type: 'submit', class: 'btn small primary' }, 'Save'),
    h('button', { type: 'button', class: 'btn small', onclick: () => clear(cell).append(h('code', null, fmtValue(rec))) }, 'Cancel'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = parseValue(input.value, rec.type);
    try {
      const r = await put(dataUrl(d, rec.path), { value });
      rec.value = value;
      clear(cell).append(h('code', null, fmtValue(rec)), ' ', h('span', { class: 'muted' }, `written (${(r && r.code) || 'ok'})`));
    } catch (err) {
      msg.textContent = errorText(err);
      msg.className = 'field-error';
    }
  });
  clear(cell).append(form);
  input.focus();
}

function parseValue(text, type) {
  if (['integer', 'unsigned', 'float', 'time'].includes(type) && text.trim() !== '' && !Number.isNaN(Number(text))) return Number(text);
  if (type === 'boolean') return text === 'true' || text === '1';
  return text;
}

// A path box for any operation, including Execute (never in a Read result).
function manualOps(d) {
  const path = field({ name: 'path', label: 'Path', value: '/3/0', placeholder: '/3/0/4' });
  const value = field({ name: 'value', label: 'Value or arguments', placeholder: "for Write: the value; for Execute: arguments such as 0='v'" });
  const out = h('div', { class: 'op-result', role: 'status', hidden: true });
  const run = async (op) => {
    const p = path.control.value.trim();
    if (!/^\/\d+(\/\d+){0,3}$/.test(p)) { show(`${op} ${p}`, h('p', { class: 'field-error' }, 'The path must look like /3, /3/0, /3/0/4 or /3/0/7/1.')); return; }
    try {
      let r;
      if (op === 'Read') r = await get(dataUrl(d, p));
      else if (op === 'Write') r = await put(dataUrl(d, p), { value: parseValue(value.control.value, /^[-+]?\d+(\.\d+)?$/.test(value.control.value) ? 'float' : 'string') });
      else if (op === 'Execute') r = await post(dataUrl(d, p), value.control.value ? { arguments: value.control.value } : {});
      else if (op === 'Discover') r = await get(`${dataUrl(d, p)}/discover`);
      if (op === 'Read' && r) { const box = h('div'); renderRecords(d, p, r, box); show(`Read ${p}`, box); }
      else show(`${op} ${p}`, h('p', null, `Done: ${(r && (r.code || r.status)) || 'ok'}`, r && r.requestId ? ` (queued as request ${r.requestId}; sent when the device wakes)` : ''),
        r && op === 'Discover' ? h('pre', null, JSON.stringify(r, null, 2)) : null);
    } catch (e) {
      show(`${op} ${p}`, errorBox(e));
    }
  };
  function show(title, ...nodes) { out.hidden = false; clear(out); add(out, h('h4', null, title), ...nodes); }
  const form = h('form', { class: 'card ops', novalidate: true, 'aria-label': 'Operation on a path' },
    h('div', { class: 'inline-add' }, path, value),
    h('div', { class: 'actions form-actions' }, ['Read', 'Write', 'Execute', 'Discover'].map((op) => h('button', { type: op === 'Read' ? 'submit' : 'button', class: op === 'Read' ? 'btn primary' : 'btn', onclick: op === 'Read' ? null : () => run(op) }, op))),
    out);
  form.addEventListener('submit', (e) => { e.preventDefault(); run('Read'); });
  return form;
}

// ------------------------------------------------------------ reports tab
async function reportsTab(el, d) {
  const reports = await getAll(`/devices/${d.id}/task-reports`);
  const rows = reports.map((r) => rowLink(h('tr', null,
    h('td', null, h('a', { href: `#/devices/${d.id}/reports/${r.id}` }, r.taskName)),
    h('td', null, statusBadge(r.status)),
    h('td', { class: 'opt' }, r.sessionKind || ''),
    h('td', { class: 'opt' }, timeEl(r.startedAt)),
    h('td', null, timeEl(r.finishedAt)),
    h('td', { class: 'num opt' }, r.runs),
    h('td', null, r.summary || '')), `#/devices/${d.id}/reports/${r.id}`));
  el.append(h('h2', null, 'Task reports'),
    table([{ label: 'Task' }, { label: 'Status' }, { label: 'Session', class: 'opt' }, { label: 'Started', class: 'opt' }, { label: 'Finished' }, { label: 'Runs', class: 'num opt' }, { label: 'Summary' }],
      rows.length ? rows : [emptyRow(7, 'No task has run on this device yet.')], { clickable: true, caption: 'Task reports' }));
}

// ------------------------------------------------------------- events tab
function eventsTab(el, d, cleanups) {
  const listEl = h('ol', { class: 'events-log', reversed: true, 'aria-live': 'polite', 'aria-label': `Events of ${d.endpoint}` });
  const status = h('p', { class: 'muted', role: 'status' });
  const empty = h('li', { class: 'muted empty-item' }, 'No events yet. New events appear here as they happen.');
  listEl.append(empty);
  let n = 0;
  const stateWords = {
    live: 'Connected: events appear as they happen.', connecting: 'Connecting to the event stream…', reconnecting: 'Reconnecting to the event stream…',
    unavailable: 'Live events are not available from this lwdm (GET /api/v1/events answered 404).', idle: '',
  };
  cleanups.push(events.onState((st) => { status.textContent = stateWords[st] || ''; }));
  cleanups.push(events.on((ev) => {
    if (ev.deviceId !== d.id && ev.endpoint !== d.endpoint) return;
    empty.remove();
    const summary = fmtEventData(ev.data);
    listEl.prepend(h('li', { dataset: { type: ev.type } },
      h('span', null, timeEl(ev.time)), h('strong', null, ev.type), h('code', null, summary.length > 400 ? `${summary.slice(0, 400)}…` : summary)));
    if (++n > 200) listEl.lastElementChild.remove();
  }));
  el.append(h('h2', null, 'Live events'), status, listEl);
}

// {"step":"write","path":"/0/1","code":"2.04"} -> "step write · path /0/1 · code 2.04"
function fmtEventData(data) {
  if (!data || typeof data !== 'object') return data == null ? '' : String(data);
  return Object.entries(data).filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
}

// ------------------------------------------------------------ report page
export async function reportPage(el, params) {
  const [d, r] = await Promise.all([get(`/devices/${params.id}`), get(`/devices/${params.id}/task-reports/${params.reportId}`)]);
  const taskHref = r.groupId ? `#/groups/${r.groupId}/tasks/${r.taskId}/reports` : null;
  const log = r.log || [];
  const vars = Object.entries(r.variables || {});
  add(el,
    breadcrumbs(['Devices', '#/devices'], [d.endpoint, `#/devices/${d.id}/reports`], [`Report ${r.id}`]),
    pageHeader(`Task report: ${r.taskName} on ${r.endpoint}`),
    h('div', { class: 'state-line' }, statusBadge(r.status), h('span', null, r.summary || '')),
    h('section', { class: 'card' }, h('dl', { class: 'kv' },
      h('dt', null, 'Task'), h('dd', null, taskHref ? h('a', { href: taskHref }, r.taskName) : r.taskName, r.groupId ? ` (group ${r.groupId})` : ' (device task)'),
      h('dt', null, 'Device'), h('dd', null, h('a', { href: `#/devices/${d.id}` }, r.endpoint)),
      h('dt', null, 'Session'), h('dd', null, r.sessionKind || '—'),
      h('dt', null, 'Started'), h('dd', null, timeEl(r.startedAt)),
      h('dt', null, 'Finished'), h('dd', null, timeEl(r.finishedAt)),
      h('dt', null, 'Runs'), h('dd', null, String(r.runs ?? 0)))),
    h('h2', null, 'Execution log'),
    h('p', { class: 'muted' }, 'The lines of the last run.'),
    table([{ label: '#', class: 'num' }, { label: 'Time' }, { label: 'Level' }, { label: 'Step' }, { label: 'Sent' }, { label: 'Received' }, { label: 'Message' }],
      log.length ? log.map((l) => h('tr', { class: `log-level-${l.level}` },
        h('td', { class: 'num' }, l.seq), h('td', null, timeEl(l.at)), h('td', null, l.level), h('td', null, l.step || ''),
        h('td', null, l.sent ? h('code', null, l.sent) : ''), h('td', null, l.received || l.code || ''), h('td', { class: 'msg' }, l.message || ''))) : [emptyRow(7, 'The log is empty.')],
      { caption: 'Execution log' }),
    h('h2', null, 'Variables'),
    vars.length ? h('dl', { class: 'kv card' }, vars.map(([k, v]) => [h('dt', null, k), h('dd', null, h('code', null, typeof v === 'string' ? v : JSON.stringify(v)))])) : h('p', { class: 'muted' }, 'No task variables.'));
  const tbl = el.querySelectorAll('table.data');
  if (tbl.length) tbl[tbl.length - 1].classList.add('log-table');
}
