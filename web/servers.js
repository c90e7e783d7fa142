// Administration → LwM2M servers: search, table, add/edit form, delete.
import { get, post, put, del, errorText } from './api.js';
import {
  h, add, clear, field, show, formBanner, showErrors, clearErrors, toast, confirmDialog, pageHeader, breadcrumbs,
  table, rowLink, loading, emptyRow, debounce, errorBox,
} from './ui.js';

export const MODE_NAMES = { nosec: 'NoSec', psk: 'Pre-Shared Key', cert: 'Certificate', certEst: 'Certificate with EST' };
const TYPE_NAMES = { management: 'Management', bootstrap: 'Bootstrap' };
const BINDINGS = [
  ['U', 'U — UDP'], ['UQ', 'UQ — UDP with Queue Mode'], ['S', 'S — SMS'], ['SQ', 'SQ — SMS with Queue Mode'],
  ['US', 'US — UDP and SMS'], ['UQS', 'UQS — UDP with Queue Mode and SMS'],
];
const SMS_MODES = [['', 'Not set'], ['dtls', 'DTLS'], ['securePacket', 'Secure packet'], ['nosec', 'NoSec']];
const PAGE = 50;

// ------------------------------------------------------------------ list
export async function list(el, params, ctx) {
  const q0 = ctx.query.get('q') || '';
  let offset = Number(ctx.query.get('offset') || 0) || 0;
  const search = field({ name: 'q', label: 'Search', type: 'search', value: q0, placeholder: 'Name, URI or PSK identity' });
  search.classList.add('search');
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  el.append(
    breadcrumbs(['Administration'], ['LwM2M servers']),
    pageHeader('LwM2M servers', h('a', { class: 'btn primary', href: '#/servers/new' }, 'Add')),
    h('p', { class: 'intro' }, 'Bootstrap and management servers that bootstrap settings and tasks hand to devices. Click a server to see and edit its settings.'),
    h('div', { class: 'toolbar' }, search),
    results);

  async function load() {
    clear(results).append(loading());
    const q = search.control.value.trim();
    let page;
    try {
      page = await get(`/lwm2m-servers?limit=${PAGE}&offset=${offset}${q ? '&q=' + encodeURIComponent(q) : ''}`);
    } catch (e) {
      clear(results).append(errorBox(e));
      return;
    }
    if (!ctx.isCurrent()) return;
    const rows = page.items.map((s) => rowLink(h('tr', null,
      h('td', null, h('a', { href: `#/servers/${s.id}` }, s.name)),
      h('td', null, TYPE_NAMES[s.type] || s.type),
      h('td', { class: 'opt' }, (s.transport || '').toUpperCase()),
      h('td', { class: 'num opt' }, s.ssid ?? '—'),
      h('td', { class: 'uri' }, h('code', null, s.uri)),
      h('td', null, MODE_NAMES[s.securityMode] || s.securityMode),
      h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete server ${s.name}`, onclick: () => deleteServer(s, load) }, 'Delete'))),
    `#/servers/${s.id}`));
    clear(results).append(
      table([{ label: 'Name' }, { label: 'Type' }, { label: 'Transport', class: 'opt' }, { label: 'SSID', class: 'num opt' }, { label: 'URI' }, { label: 'Security mode' }, { label: 'Actions', class: 'row-actions' }],
        rows.length ? rows : [emptyRow(7, q ? `No server matches “${q}”.` : 'No LwM2M servers yet. Use Add to create one.')],
        { clickable: true, caption: 'LwM2M servers' }),
      pager(page, (o) => { offset = o; load(); }));
  }
  search.control.addEventListener('input', debounce(() => { offset = 0; load(); }, 250));
  await load();
}

export function pager(page, go) {
  if (page.total <= page.limit && page.offset === 0) return h('p', { class: 'count muted' }, `${page.total} ${page.total === 1 ? 'item' : 'items'}`);
  const from = page.total ? page.offset + 1 : 0;
  const to = page.offset + page.items.length;
  return h('div', { class: 'pager' },
    h('span', { class: 'muted' }, `${from}–${to} of ${page.total}`),
    h('button', { type: 'button', class: 'btn small', disabled: page.offset === 0, onclick: () => go(Math.max(0, page.offset - page.limit)) }, 'Previous'),
    h('button', { type: 'button', class: 'btn small', disabled: to >= page.total, onclick: () => go(page.offset + page.limit) }, 'Next'));
}

// Asks with the list of what goes with the server (dry run), then deletes.
export async function deleteServer(s, after) {
  let dry;
  try {
    dry = await del(`/lwm2m-servers/${s.id}?dryRun=true`);
  } catch (e) {
    toast(errorText(e));
    return false;
  }
  const tasks = (dry.deleted && dry.deleted.tasks) || [];
  const templates = (dry.deleted && dry.deleted.taskTemplates) || [];
  const body = [h('p', null, `Delete the LwM2M server “${s.name}”?`)];
  if (tasks.length || templates.length) {
    body.push(h('p', null, h('strong', null, 'These will be deleted with it:')));
    if (tasks.length) {
      body.push(h('h3', null, `Tasks (${tasks.length})`), h('ul', { class: 'delete-list', 'data-kind': 'tasks' }, tasks.map((t) => h('li', null,
        t.name, ' ', h('span', { class: 'muted' }, t.groupId ? `(group ${t.groupId} task ${t.id})` : `(device ${t.deviceId} task ${t.id})`)))));
    }
    if (templates.length) {
      body.push(h('h3', null, `Task templates (${templates.length})`), h('ul', { class: 'delete-list', 'data-kind': 'templates' }, templates.map((t) => h('li', null, t.name))));
    }
  } else {
    body.push(h('p', { class: 'muted' }, 'No tasks or task templates use this server; nothing else is deleted.'));
  }
  const ok = await confirmDialog({ title: 'Delete LwM2M server', body, confirmLabel: 'Delete', danger: true });
  if (!ok) return false;
  try {
    const r = await del(`/lwm2m-servers/${s.id}`);
    const n = (r && r.deleted && r.deleted.tasks ? r.deleted.tasks.length : 0);
    const m = (r && r.deleted && r.deleted.taskTemplates ? r.deleted.taskTemplates.length : 0);
    toast(`Deleted server “${s.name}”` + (n || m ? ` with ${n} task${n === 1 ? '' : 's'} and ${m} task template${m === 1 ? '' : 's'}.` : '.'));
  } catch (e) {
    toast(errorText(e));
    return false;
  }
  if (after) await after();
  return true;
}

// ------------------------------------------------------------------ form
export async function form(el, params, ctx) {
  const isNew = !params.id;
  let s = null;
  if (!isNew) {
    el.append(loading());
    s = await get(`/lwm2m-servers/${encodeURIComponent(params.id)}`);
    clear(el);
  }
  const v = s || {
    name: '', type: 'management', transport: 'udp', ssid: null, uri: '', clientHoldOffTime: null, bootstrapAccountTimeout: null,
    binding: 'U', lifetime: 86400, storeNotifications: false, securityMode: 'nosec', pskIdentity: null, pskSet: false,
    serverCertificate: null, sms: { enabled: false, number: null, securityMode: null }, configureDeviceOnTargetServer: false, provisionCredentials: null,
  };
  const title = isNew ? 'Add LwM2M server' : `LwM2M server “${v.name}”`;

  const f = {
    name: field({ name: 'name', label: 'Name', value: v.name, help: 'How the server is referred to in lwdm; tasks may name it with serverName="…" (the ID is the safer reference).' }),
    type: field({ name: 'type', label: 'Server type', type: 'select', value: v.type, options: [['management', 'Management'], ['bootstrap', 'Bootstrap']] }),
    transport: field({ name: 'transport', label: 'Transport', type: 'select', value: v.transport, options: [['udp', 'UDP'], ['tcp', 'TCP']] }),
    ssid: field({ name: 'ssid', label: 'SSID', type: 'number', value: v.ssid ?? '', help: 'Short Server ID, the server as the device knows it (1–65534); optional for bootstrap servers.', attrs: { min: 1, max: 65534, inputmode: 'numeric' } }),
    uri: field({ name: 'uri', label: 'URI', value: v.uri, placeholder: 'dm.example.com', help: 'Host, host:port or a full URI. The scheme (coap:// or coaps://) follows the security mode and the default port is added when left out.' }),
    clientHoldOffTime: field({ name: 'clientHoldOffTime', label: 'Client hold off time (s)', type: 'number', value: v.clientHoldOffTime ?? '', help: 'Wait before a Client Initiated Bootstrap, leaving time for a Server Initiated one.', attrs: { min: 0 } }),
    bootstrapAccountTimeout: field({ name: 'bootstrapAccountTimeout', label: 'Bootstrap-server account timeout (s)', type: 'number', value: v.bootstrapAccountTimeout ?? '', help: 'The device deletes its bootstrap-server account after this time.', attrs: { min: 0 } }),
    binding: field({ name: 'binding', label: 'Binding', type: 'select', value: v.binding, options: BINDINGS, help: 'Queue Mode (Q): requests wait until the device is online.' }),
    lifetime: field({ name: 'lifetime', label: 'Lifetime (s)', type: 'number', value: v.lifetime, help: 'Registration lifetime (direct bindings) or the longest time between registrations (Queue Mode).', attrs: { min: 1 } }),
    storeNotifications: field({ name: 'storeNotifications', label: 'Store notifications', type: 'checkbox', value: v.storeNotifications, help: 'The device keeps notifications while offline and sends them later, instead of discarding them.' }),
    securityMode: field({ name: 'securityMode', label: 'Security mode', type: 'select', value: v.securityMode, options: Object.entries(MODE_NAMES) }),
    pskIdentity: field({ name: 'pskIdentity', label: 'PSK identity', value: v.pskIdentity ?? '', placeholder: 'the device’s endpoint name', help: 'Leave empty to use each device’s endpoint name (recommended). May be an expression.' }),
    psk: field({ name: 'psk', label: 'PSK', value: v.psk ?? '', placeholder: v.pskSet && !v.psk ? 'set — leave empty to keep it' : '${string.secureRandom(16)}', help: 'The key as text, or an expression evaluated per device such as ${string.secureRandom(16)}.' }),
    serverCertificate: certificateField(v),
    smsEnabled: field({ name: 'sms.enabled', label: 'Support SMS', type: 'checkbox', value: v.sms && v.sms.enabled, help: 'Available with the S, SQ, US and UQS bindings.' }),
    smsNumber: field({ name: 'sms.number', label: 'SMS number', type: 'tel', value: (v.sms && v.sms.number) || '', placeholder: '+48123456789' }),
    smsSecurityMode: field({ name: 'sms.securityMode', label: 'SMS security mode', type: 'select', value: (v.sms && v.sms.securityMode) || '', options: SMS_MODES }),
    configure: field({ name: 'configureDeviceOnTargetServer', label: 'Configure device on target server', type: 'checkbox', value: v.configureDeviceOnTargetServer, help: 'Create the device on the target server through its API (needs the credentials below).' }),
    provision: field({ name: 'provisionCredentials', label: 'Provision credentials to the server', type: 'checkbox', value: !!v.provisionCredentials, help: 'Give the device’s credentials to the target server through its REST API.' }),
    apiUri: field({ name: 'provisionCredentials.apiUri', label: 'API URI', type: 'url', value: (v.provisionCredentials && v.provisionCredentials.apiUri) || '', placeholder: 'https://dm.example.com/api/v1' }),
    apiUser: field({ name: 'provisionCredentials.user', label: 'API user', value: (v.provisionCredentials && v.provisionCredentials.user) || '' }),
    apiPassword: field({ name: 'provisionCredentials.password', label: 'API password', type: 'password', value: '', placeholder: v.provisionCredentials && v.provisionCredentials.passwordSet ? 'set — leave empty to keep it' : '' }),
  };
  f.apiPassword.control.autocomplete = 'new-password';

  const banner = formBanner();
  const save = h('button', { type: 'submit', class: 'btn primary' }, 'Save');
  const cancel = h('a', { class: 'btn', href: '#/servers' }, 'Cancel');
  const delBtn = isNew ? null : h('button', { type: 'button', class: 'btn danger', onclick: async () => { if (await deleteServer(s)) location.hash = '#/servers'; } }, 'Delete');
  const uriHint = h('p', { class: 'help hint', hidden: true, role: 'status' });

  const smsBox = h('div', { class: 'subfields' }, f.smsNumber, f.smsSecurityMode);
  const pskBox = h('div', { class: 'subfields' }, f.pskIdentity, f.psk);
  const certBox = h('div', { class: 'subfields' }, f.serverCertificate);
  const provBox = h('div', { class: 'subfields' }, f.apiUri, f.apiUser, f.apiPassword);
  f.uri.append(uriHint);

  const formEl = h('form', { class: 'server-form', novalidate: true, 'aria-labelledby': 'server-form-title' },
    banner,
    h('div', { class: 'form-grid' },
      h('fieldset', null, h('legend', null, 'Server'), f.name, f.type, f.transport, f.ssid, f.uri),
      h('fieldset', null, h('legend', null, 'Timing and binding'), f.clientHoldOffTime, f.bootstrapAccountTimeout, f.binding, f.lifetime, f.storeNotifications),
      h('fieldset', null, h('legend', null, 'Security'), f.securityMode, pskBox, certBox),
      h('fieldset', null, h('legend', null, 'SMS and target server'), f.smsEnabled, smsBox, f.configure, f.provision, provBox)),
    h('div', { class: 'actions form-actions' }, save, cancel, delBtn));

  const c = (k) => f[k].control;
  function sync() {
    const mode = c('securityMode').value;
    show(pskBox, mode === 'psk');
    show(certBox, mode === 'cert' || mode === 'certEst');
    const smsAllowed = c('binding').value.includes('S');
    show(f.smsEnabled, smsAllowed);
    show(smsBox, smsAllowed && c('smsEnabled').checked);
    show(provBox, c('provision').checked);
  }
  // A URI written for the old mode/transport/type would contradict the new
  // one: drop its scheme and default port so the server fills them again.
  let prev = { mode: c('securityMode').value, transport: c('transport').value, type: c('type').value };
  function adjustUri() {
    const u = c('uri').value.trim();
    const m = /^(coaps?(?:\+tcp)?):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(u);
    if (m) {
      const defPort = String(defaultPort(prev.type, prev.mode));
      const next = m[3] && m[3] !== defPort ? `${m[2]}:${m[3]}` : m[2];
      if (next !== u) {
        c('uri').value = next;
        uriHint.textContent = `URI changed to “${next}”: the scheme and default port for the new settings are added when you save.`;
        uriHint.hidden = false;
      }
    }
    prev = { mode: c('securityMode').value, transport: c('transport').value, type: c('type').value };
  }
  for (const k of ['securityMode', 'transport', 'type']) c(k).addEventListener('change', () => { adjustUri(); sync(); });
  for (const k of ['binding', 'smsEnabled', 'provision']) c(k).addEventListener('change', sync);
  sync();

  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(formEl);
    const body = collect();
    save.disabled = true;
    try {
      const saved = isNew ? await post('/lwm2m-servers', body) : await put(`/lwm2m-servers/${s.id}`, body);
      toast(`Saved LwM2M server “${saved.name}” (ID ${saved.id}, ${saved.uri}).`);
      location.hash = '#/servers';
    } catch (err) {
      showErrors(formEl, err, { 'sms': 'sms.enabled', 'provisionCredentials.passwordSet': 'provisionCredentials.password' });
    } finally {
      save.disabled = false;
    }
  });

  const num = (k) => { const x = c(k).value.trim(); return x === '' ? null : (Number.isFinite(Number(x)) && /^-?\d+$/.test(x) ? Number(x) : x); };
  function collect() {
    const mode = c('securityMode').value;
    const b = {
      name: c('name').value.trim(),
      type: c('type').value,
      transport: c('transport').value,
      ssid: num('ssid'),
      uri: c('uri').value.trim(),
      clientHoldOffTime: num('clientHoldOffTime'),
      bootstrapAccountTimeout: num('bootstrapAccountTimeout'),
      binding: c('binding').value,
      lifetime: num('lifetime'),
      storeNotifications: c('storeNotifications').checked,
      securityMode: mode,
      configureDeviceOnTargetServer: c('configure').checked,
    };
    if (b.uri === '') delete b.uri;
    if (b.name === '') delete b.name;
    if (b.lifetime === null) delete b.lifetime;
    if (mode === 'psk') {
      b.pskIdentity = c('pskIdentity').value.trim() || null;
      const key = c('psk').value;
      if (key !== '' || !v.pskSet) b.psk = key === '' ? null : key;
    }
    if (mode === 'cert' || mode === 'certEst') {
      const cert = f.serverCertificate.getValue();
      if (cert !== undefined) b.serverCertificate = cert;
    }
    if (c('binding').value.includes('S') && c('smsEnabled').checked) {
      b.sms = { enabled: true, number: c('smsNumber').value.trim() || null, securityMode: c('smsSecurityMode').value || null };
    } else {
      b.sms = { enabled: false, number: null, securityMode: null };
    }
    if (c('provision').checked) {
      b.provisionCredentials = { apiUri: c('apiUri').value.trim() || null, user: c('apiUser').value.trim() || null };
      const pw = c('apiPassword').value;
      if (pw !== '') b.provisionCredentials.password = pw;
      else if (!(v.provisionCredentials && v.provisionCredentials.passwordSet)) b.provisionCredentials.password = null;
      for (const k of ['apiUri', 'user']) if (b.provisionCredentials[k] === null) delete b.provisionCredentials[k];
      if (b.provisionCredentials.password === null) delete b.provisionCredentials.password;
    } else {
      b.provisionCredentials = null;
    }
    return b;
  }

  add(el,
    breadcrumbs(['Administration'], ['LwM2M servers', '#/servers'], [isNew ? 'Add' : v.name]),
    pageHeader(title),
    s ? h('p', { class: 'muted meta' }, `ID ${s.id} · domain ${s.domain} · created ${new Date(s.createdAt).toLocaleString()} · updated ${new Date(s.updatedAt).toLocaleString()}`) : null,
    formEl);
  el.querySelector('h1').id = 'server-form-title';
  if (isNew) c('name').focus();
}

function defaultPort(type, mode) {
  const secure = mode !== 'nosec';
  return type === 'bootstrap' ? (secure ? 5694 : 5693) : (secure ? 5684 : 5683);
}

// Server certificate upload: a DER (or PEM) file → base64 of the DER.
function certificateField(v) {
  const w = field({ name: 'serverCertificate', label: 'Server certificate (DER or PEM file)', type: 'file', help: 'The certificate the server presents to devices.', attrs: { accept: '.der,.cer,.crt,.pem' } });
  const status = h('p', { class: 'cert-status', role: 'status' }, v.serverCertificate ? `A certificate is set (${Math.floor(v.serverCertificate.replace(/\s/g, '').length * 3 / 4)} bytes). Choose a file to replace it.` : 'No certificate set.');
  w.insertBefore(status, w.querySelector('.help'));
  let value; // undefined = unchanged
  w.control.addEventListener('change', async () => {
    const file = w.control.files[0];
    if (!file) { value = undefined; return; }
    const buf = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder('latin1').decode(buf);
    const pem = /-----BEGIN [A-Z ]+-----([\s\S]*?)-----END [A-Z ]+-----/.exec(text);
    if (pem) value = pem[1].replace(/\s+/g, '');
    else {
      let bin = '';
      for (let i = 0; i < buf.length; i++) bin += String.fromCharCode(buf[i]);
      value = btoa(bin);
    }
    status.textContent = `Selected ${file.name} (${pem ? 'PEM' : `${buf.length} bytes`}); it is uploaded when you save.`;
  });
  w.getValue = () => value;
  return w;
}
