// Device groups: the group tree, members, setting values, group settings,
// and the Group tasks tab (task settings + XML configuration, reports).
import { get, getAll, post, put, patch, del, events, errorText } from './api.js';
import {
  h, add, clear, field, show, formBanner, showErrors, clearErrors, toast, confirmDialog, pageHeader, breadcrumbs,
  table, rowLink, loading, emptyRow, errorBox, timeEl, badge, nextId,
} from './ui.js';
import { pager } from './servers.js';

const TABS = [['tasks', 'Group tasks'], ['members', 'Members'], ['values', 'Setting values'], ['settings', 'Group settings']];
export const STATUSES = ['NOT_STARTED', 'IN_PROGRESS', 'SUCCESS', 'WARNING', 'ERROR'];
export const statusWords = (s) => ({ NOT_STARTED: 'Not started', IN_PROGRESS: 'In progress', SUCCESS: 'Success', WARNING: 'Warning', ERROR: 'Error' }[s] || s);
export const statusBadge = (s) => badge(statusWords(s), String(s).toLowerCase().replace(/_/g, '-'));

function buildTree(groups) {
  const byParent = new Map();
  for (const g of groups) {
    const k = g.parentId ?? 0;
    if (!byParent.has(k)) byParent.set(k, []);
    byParent.get(k).push(g);
  }
  return byParent;
}

function treeEl(groups, currentId) {
  const byParent = buildTree(groups);
  const ids = new Set(groups.map((g) => g.id));
  const level = (pid) => {
    const kids = byParent.get(pid) || [];
    if (!kids.length) return null;
    return h(pid === 0 ? 'ul' : 'ul', pid === 0 ? { class: 'tree' } : null, kids.map((g) => h('li', null,
      h('a', { href: `#/groups/${g.id}`, 'aria-current': g.id === currentId ? 'page' : null },
        g.name, g.bootstrap ? ' ⚑' : '', h('span', { class: 'meta-count' }, `(${g.deviceCount})`)),
      level(g.id))));
  };
  // groups whose parent is not visible are shown at the top
  const orphans = groups.filter((g) => g.parentId && !ids.has(g.parentId));
  for (const o of orphans) { byParent.get(0) ? byParent.get(0).push(o) : byParent.set(0, [o]); }
  return level(0) || h('p', { class: 'muted' }, 'No groups.');
}

function groupPath(groups, g) {
  const byId = new Map(groups.map((x) => [x.id, x]));
  const path = [];
  for (let x = g; x; x = x.parentId ? byId.get(x.parentId) : null) path.unshift(x);
  return path;
}

// ---------------------------------------------------------------- screen
export async function render(el, params, ctx) {
  el.append(loading());
  const groups = await getAll('/groups');
  clear(el);
  const id = params.id ? Number(params.id) : (groups.find((g) => g.bootstrap) || groups[0] || {}).id;
  const g = groups.find((x) => x.id === id);
  const tab = params.tab || 'tasks';

  const side = h('aside', { class: 'card side', 'aria-label': 'Group tree' },
    h('h2', null, 'Groups'), treeEl(groups, id),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn small', onclick: () => openNewGroup() }, 'Add group')));
  const content = h('section', { class: 'group-content' });
  add(el, breadcrumbs(['Device groups', '#/groups'], ...(g ? groupPath(groups, g).map((x) => [x.name, x.id === g.id ? null : `#/groups/${x.id}`]) : [])),
    pageHeader(g ? `Group “${g.name}”` : 'Device groups'),
    h('div', { class: 'split' }, side, content));

  const newGroupBox = h('div', { hidden: true });
  content.append(newGroupBox);
  function openNewGroup() {
    newGroupBox.hidden = false;
    clear(newGroupBox).append(groupForm(null, groups, g ? g.id : null, async (saved) => { location.hash = `#/groups/${saved.id}/settings`; }, () => { newGroupBox.hidden = true; }));
    newGroupBox.querySelector('input').focus();
  }
  if (!g) {
    content.append(h('p', null, params.id ? `There is no group ${params.id} (or it is not in your domain).` : 'No groups yet. Use Add group to create one.'));
    return;
  }
  add(content,
    h('p', { class: 'muted meta' }, `ID ${g.id} · domain ${g.domain} · priority ${g.priority} · ${g.deviceCount} direct member${g.deviceCount === 1 ? '' : 's'}`,
      g.bootstrap ? ' · the domain’s bootstrap group: devices that bootstrap land here' : ''),
    g.description ? h('p', null, g.description) : null,
    h('nav', { class: 'tabs', 'aria-label': 'Group sections' }, TABS.map(([k, t]) => h('a', { href: `#/groups/${g.id}/${k}`, 'aria-current': k === tab ? 'page' : null }, t))));
  const body = h('div', { class: 'tab-body' });
  content.append(body);
  if (tab === 'tasks') await tasksTab(body, g, ctx);
  else if (tab === 'members') await membersTab(body, g, ctx);
  else if (tab === 'values') await valuesTab(body, g);
  else if (tab === 'settings') body.append(groupForm(g, groups, g.parentId, async () => { location.hash = `#/groups/${g.id}/settings`; }));
  else body.append(h('p', null, `No such tab “${tab}”.`));
}

function groupForm(g, groups, parentId, onSaved, onCancel) {
  const isNew = !g;
  const parentOpts = [['', '— top level —'], ...groups.filter((x) => !g || x.id !== g.id).map((x) => [x.id, groupPath(groups, x).map((p) => p.name).join(' / ')])];
  const f = {
    name: field({ name: 'name', label: 'Group name', value: g ? g.name : '' }),
    description: field({ name: 'description', label: 'Description', type: 'textarea', rows: 2, value: g ? g.description : '' }),
    parentId: field({ name: 'parentId', label: 'Parent group', type: 'select', value: parentId ?? '', options: parentOpts }),
    priority: field({ name: 'priority', label: 'Priority', type: 'number', value: g ? g.priority : 10, help: 'Between unrelated groups that define the same setting value, the lower number wins (0–1000).' }),
  };
  const banner = formBanner();
  const form = h('form', { class: 'card', novalidate: true },
    h('h2', null, isNew ? 'Add group' : 'Group settings'), banner, f.name, f.description, f.parentId, f.priority,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn primary' }, isNew ? 'Add group' : 'Save'),
      onCancel ? h('button', { type: 'button', class: 'btn', onclick: onCancel }, 'Cancel') : null,
      !isNew ? h('button', {
        type: 'button', class: 'btn danger', onclick: async () => {
          const ok = await confirmDialog({ title: 'Delete group', danger: true, confirmLabel: 'Delete',
            body: [h('p', null, `Delete the group “${g.name}”, its subgroups, their memberships, tasks (with their reports) and setting values? The devices stay.`)] });
          if (!ok) return;
          try { await del(`/groups/${g.id}`); toast(`Deleted group “${g.name}”.`); location.hash = '#/groups'; } catch (e) { showErrors(form, e); }
        },
      }, 'Delete group') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const pr = f.priority.control.value.trim();
    const body = {
      name: f.name.control.value.trim(),
      description: f.description.control.value,
      parentId: f.parentId.control.value ? Number(f.parentId.control.value) : null,
      priority: pr === '' ? 10 : Number(pr),
    };
    try {
      const saved = isNew ? await post('/groups', body) : await put(`/groups/${g.id}`, body);
      toast(`Saved group “${saved.name}”.`);
      await onSaved(saved);
    } catch (err) { showErrors(form, err); }
  });
  return form;
}

// ------------------------------------------------------------ members tab
async function membersTab(el, g, ctx) {
  const list = h('div');
  const ep = field({ name: 'deviceId', label: 'Device endpoint name', placeholder: 'sim-000001', attrs: { list: 'device-endpoints' } });
  const dl = h('datalist', { id: 'device-endpoints' });
  const banner = formBanner();
  const form = h('form', { class: 'inline-add card', novalidate: true }, banner, ep, h('button', { type: 'submit', class: 'btn' }, 'Add member'), dl);
  ep.control.addEventListener('input', async () => {
    const q = ep.control.value.trim();
    if (q.length < 1) return;
    try {
      const r = await get(`/devices?limit=20&q=${encodeURIComponent(q)}`);
      clear(dl).append(...r.items.map((d) => h('option', { value: d.endpoint })));
    } catch { /* the list is a convenience */ }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const name = ep.control.value.trim();
    try {
      const r = await get(`/devices?limit=100&q=${encodeURIComponent(name)}`);
      const d = r.items.find((x) => x.endpoint === name);
      if (!d) {
        const p = ep.querySelector('.field-error');
        p.textContent = name ? `no device with the endpoint name “${name}”` : 'is required';
        p.hidden = false;
        ep.classList.add('has-error');
        ep.control.setAttribute('aria-invalid', 'true');
        ep.control.focus();
        return;
      }
      await post(`/groups/${g.id}/devices`, { deviceId: d.id });
      toast(`Added ${d.endpoint} to “${g.name}”.`);
      ep.control.value = '';
      await load();
    } catch (err) { showErrors(form, err); }
  });
  async function load(offset = 0) {
    let page;
    try { page = await get(`/groups/${g.id}/devices?limit=50&offset=${offset}`); } catch (e) { clear(list).append(errorBox(e)); return; }
    const rows = page.items.map((d) => rowLink(h('tr', null,
      h('td', null, h('a', { href: `#/devices/${d.id}` }, d.endpoint)),
      h('td', { class: 'opt' }, d.domain),
      h('td', null, timeEl(d.lastContactAt)),
      h('td', null, d.blacklisted ? badge('blacklisted', 'error') : ''),
      h('td', { class: 'row-actions' }, h('button', {
        type: 'button', class: 'btn small danger', 'aria-label': `Remove ${d.endpoint} from the group`,
        onclick: async () => { try { await del(`/groups/${g.id}/devices/${d.id}`); toast(`Removed ${d.endpoint} from “${g.name}”.`); await load(offset); } catch (e) { toast(errorText(e)); } },
      }, 'Remove'))), `#/devices/${d.id}`));
    clear(list).append(
      table([{ label: 'Endpoint' }, { label: 'Domain', class: 'opt' }, { label: 'Last contact' }, { label: 'Flags' }, { label: 'Actions', class: 'row-actions' }],
        rows.length ? rows : [emptyRow(5, g.bootstrap ? 'No members yet: devices join this group when they bootstrap.' : 'No members yet. Add devices by endpoint name above.')], { clickable: true, caption: 'Members' }),
      pager(page, (o) => load(o)));
  }
  el.append(h('h2', null, 'Members'), form, list);
  await load();
}

// ----------------------------------------------------- setting values tab
async function valuesTab(el, g) {
  const values = await get(`/groups/${g.id}/setting-values`);
  const rowsEl = h('tbody');
  const banner = formBanner();
  const addRow = (name = '', value = '') => {
    const nid = nextId('sv');
    const err = h('p', { class: 'field-error', id: `${nid}-err`, hidden: true });
    const tr = h('tr', { dataset: { field: name } },
      h('td', null, h('label', { class: 'visually-hidden', for: `${nid}-n` }, 'Name'), h('input', { id: `${nid}-n`, class: 'sv-name', value: name, autocomplete: 'off', placeholder: 'managementId', 'aria-describedby': `${nid}-err` }), err),
      h('td', null, h('label', { class: 'visually-hidden', for: `${nid}-v` }, 'Value'), h('input', { id: `${nid}-v`, class: 'sv-value', value, autocomplete: 'off' })),
      h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Remove setting value ${name || ''}`.trim(), onclick: () => tr.remove() }, 'Remove')));
    tr.errorEl = err;
    tr.control = tr.querySelector('.sv-name');
    tr.querySelector('.sv-name').addEventListener('input', (e) => {
      tr.dataset.field = e.target.value.trim();
      tr.querySelector('button').setAttribute('aria-label', `Remove setting value ${tr.dataset.field}`.trim());
    });
    rowsEl.append(tr);
    return tr;
  };
  for (const [k, v] of Object.entries(values)) addRow(k, v);
  const form = h('form', { novalidate: true },
    banner,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data sv-table' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col', class: 'row-actions' }, 'Actions'))),
      rowsEl)),
    h('div', { class: 'actions form-actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => addRow().querySelector('input').focus() }, 'Add value'),
      h('button', { type: 'submit', class: 'btn primary' }, 'Save setting values')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    for (const tr of rowsEl.querySelectorAll('tr')) {
      const n = tr.querySelector('.sv-name').value.trim();
      if (n) body[n] = tr.querySelector('.sv-value').value;
    }
    try { await put(`/groups/${g.id}/setting-values`, body); toast(`Saved ${Object.keys(body).length} setting value(s) of “${g.name}”.`); } catch (err) { showErrors(form, err); }
  });
  el.append(h('h2', null, 'Setting values'),
    h('p', { class: 'intro' }, 'Name/value pairs that tasks read as ${sv.NAME}; subgroups and member devices inherit them.'), form);
}

// -------------------------------------------------------------- tasks tab
async function tasksTab(el, g, ctx) {
  const wrap = h('div');
  el.append(h('div', { class: 'page-header' }, h('h2', null, 'Group tasks'),
    h('div', { class: 'actions' }, h('a', { class: 'btn primary', href: `#/groups/${g.id}/tasks/new` }, 'Add task'))), wrap);
  async function load() {
    let tasks;
    try { tasks = await getAll(`/groups/${g.id}/tasks`); } catch (e) { clear(wrap).append(errorBox(e)); return; }
    const counts = await Promise.all(tasks.map((t) => get(`/groups/${g.id}/tasks/${t.id}/reports?limit=1`).then((r) => r.counts).catch(() => null)));
    if (!ctx.isCurrent()) return;
    const rows = tasks.map((t, i) => rowLink(h('tr', null,
      h('td', null, h('a', { href: `#/groups/${g.id}/tasks/${t.id}` }, t.name), t.managedBy ? [' ', badge('managed by bootstrap settings', 'managed')] : null),
      h('td', null, t.active ? 'active' : badge('inactive', 'offline')),
      h('td', { class: 'opt' }, t.execution === 'once' ? 'Once' : 'Once and repeat'),
      h('td', { class: 'num opt' }, t.priority),
      h('td', null, countsInline(counts[i])),
      h('td', { class: 'opt' }, timeEl(t.updatedAt))), `#/groups/${g.id}/tasks/${t.id}`));
    clear(wrap).append(table([{ label: 'Task' }, { label: 'State' }, { label: 'Execution', class: 'opt' }, { label: 'Priority', class: 'num opt' }, { label: 'Reports' }, { label: 'Updated', class: 'opt' }],
      rows.length ? rows : [emptyRow(6, 'No tasks on this group yet. Use Add task.')], { clickable: true, caption: 'Group tasks' }));
  }
  await load();
  const off = events.on((ev) => { if (ev.type === 'task-status') load(); });
  ctx.setCleanup(off);
}

function countsInline(c) {
  if (!c) return h('span', { class: 'muted' }, '—');
  const parts = STATUSES.filter((s) => c[s]).map((s) => h('span', { class: 'count-inline' }, statusBadge(s), ' ', String(c[s])));
  return parts.length ? h('span', { class: 'counts-inline' }, parts) : h('span', { class: 'muted' }, 'no target devices');
}

// ------------------------------------------------------------- task page
const EXAMPLE = `<config>
  <lwm2mBootstrapCleanse />
  <lwm2mBootstrapConfiguration serverId="1" />
  <lwm2mBootstrap performBootstrapFinish="true" />
</config>
`;

export async function taskPage(el, params, ctx) {
  const gid = Number(params.id);
  const isNew = !params.taskId;
  el.append(loading());
  const [g, t] = await Promise.all([get(`/groups/${gid}`), isNew ? null : get(`/groups/${gid}/tasks/${encodeURIComponent(params.taskId)}`)]);
  clear(el);
  const tab = params.tab || (isNew ? 'settings' : 'reports');
  add(el,
    breadcrumbs(['Device groups', '#/groups'], [g.name, `#/groups/${g.id}/tasks`], ['Group tasks', `#/groups/${g.id}/tasks`], [isNew ? 'Add task' : t.name]),
    pageHeader(isNew ? `Add task to “${g.name}”` : `Task “${t.name}”`),
    t ? h('p', { class: 'muted meta' }, `ID ${t.id} · group “${g.name}” · created `, timeEl(t.createdAt), ' · updated ', timeEl(t.updatedAt),
      t.serverIds && t.serverIds.length ? ` · uses LwM2M server${t.serverIds.length > 1 ? 's' : ''} ${t.serverIds.join(', ')}` : '') : null,
    t && t.managedBy ? h('div', { class: 'banner banner-info', role: 'status' }, 'This task is maintained by the ',
      h('a', { href: '#/bootstrap' }, 'LwM2M bootstrap settings'), ' and is read-only here; change it on that screen.') : null,
    !isNew ? h('nav', { class: 'tabs', 'aria-label': 'Task sections' },
      [['reports', 'Reports'], ['settings', 'Settings and configuration']].map(([k, txt]) => h('a', { href: `#/groups/${g.id}/tasks/${t.id}/${k}`, 'aria-current': k === tab ? 'page' : null }, txt))) : null);
  if (tab === 'reports' && t) await reportsView(el, g, t, ctx);
  else el.append(taskForm(g, t));
}

function taskForm(g, t) {
  const isNew = !t;
  const ro = !!(t && t.managedBy);
  const v = t || { name: '', config: EXAMPLE, active: true, execution: 'onceAndRepeat', automaticRestart: false, repeatOnBootstrap: false, repeatOnRegister: false, condition: null, priority: 10, minIntervalSeconds: 0, appliesToSubgroups: false, schedule: null };
  const rid = nextId('exec');
  const execField = h('div', { class: 'field', dataset: { field: 'execution' } },
    h('span', { class: 'label', id: `${rid}-l` }, 'Execution'),
    h('div', { class: 'radio-row', role: 'radiogroup', 'aria-labelledby': `${rid}-l` },
      h('label', null, h('input', { type: 'radio', name: `${rid}`, value: 'once', checked: v.execution === 'once' }), 'Once'),
      h('label', null, h('input', { type: 'radio', name: `${rid}`, value: 'onceAndRepeat', checked: v.execution !== 'once' }), 'Once and repeat')),
    h('p', { class: 'help' }, 'Once: one run per device. Once and repeat: runs again on the events chosen below.'),
    h('p', { class: 'field-error', hidden: true }));
  const f = {
    name: field({ name: 'name', label: 'Task name', value: v.name }),
    active: field({ name: 'active', label: 'Active', type: 'checkbox', value: v.active, help: 'An inactive task never runs.' }),
    automaticRestart: field({ name: 'automaticRestart', label: 'Automatic restart', type: 'checkbox', value: v.automaticRestart, help: 'Run again in each new session with the device.' }),
    repeatOnBootstrap: field({ name: 'repeatOnBootstrap', label: 'Repeat on bootstrap', type: 'checkbox', value: v.repeatOnBootstrap, help: 'Run again on each bootstrap request.' }),
    repeatOnRegister: field({ name: 'repeatOnRegister', label: 'Repeat on register', type: 'checkbox', value: v.repeatOnRegister, help: 'Run again on each registration.' }),
    condition: field({ name: 'condition', label: 'Condition', value: v.condition || '', placeholder: "${device.property.model == 'X1'}", help: 'An expression that must hold for the task to run; empty = always.' }),
    priority: field({ name: 'priority', label: 'Priority', type: 'number', value: v.priority, help: 'Pending tasks run lowest number first (0–1000).' }),
    minIntervalSeconds: field({ name: 'minIntervalSeconds', label: 'Minimum interval (s)', type: 'number', value: v.minIntervalSeconds, help: 'Least time between two starts on one device.' }),
    appliesToSubgroups: field({ name: 'appliesToSubgroups', label: 'Applies to subgroups', type: 'checkbox', value: v.appliesToSubgroups, help: 'Also run on the members of this group’s subgroups.' }),
    notBefore: field({ name: 'schedule.notBefore', label: 'Not before (local time)', type: 'datetime-local', value: toLocalInput(v.schedule && v.schedule.notBefore) }),
    notAfter: field({ name: 'schedule.notAfter', label: 'Not after (local time)', type: 'datetime-local', value: toLocalInput(v.schedule && v.schedule.notAfter) }),
  };
  const repeatBox = h('div', { class: 'subfields' }, f.automaticRestart, f.repeatOnBootstrap, f.repeatOnRegister);
  const editor = xmlEditor(v.config, ro);
  const banner = formBanner();
  const save = h('button', { type: 'submit', class: 'btn primary' }, isNew ? 'Add new task' : 'Save task');
  const form = h('form', { novalidate: true, class: 'task-form' },
    banner,
    h('div', { class: 'form-grid task-grid' },
      h('fieldset', null, h('legend', null, 'Task settings'), f.name, f.active, execField, repeatBox, f.condition, f.priority, f.minIntervalSeconds, f.appliesToSubgroups,
        h('fieldset', { class: 'inner' }, h('legend', null, 'Schedule window (optional)'), f.notBefore, f.notAfter)),
      h('fieldset', { class: 'config-pane' }, h('legend', null, 'Task specific configuration'), editor)),
    ro ? null : h('div', { class: 'actions form-actions' }, save,
      h('a', { class: 'btn', href: `#/groups/${g.id}/tasks` }, 'Cancel'),
      !isNew ? h('button', {
        type: 'button', class: 'btn danger', onclick: async () => {
          const ok = await confirmDialog({ title: 'Delete task', danger: true, confirmLabel: 'Delete', body: [h('p', null, `Delete the task “${t.name}” and its reports?`)] });
          if (!ok) return;
          try { await del(`/groups/${g.id}/tasks/${t.id}`); toast(`Deleted task “${t.name}”.`); location.hash = `#/groups/${g.id}/tasks`; } catch (e) { showErrors(form, e); }
        },
      }, 'Delete task') : null));
  const radios = [...execField.querySelectorAll('input[type=radio]')];
  const sync = () => show(repeatBox, radios.find((r) => r.checked).value !== 'once');
  radios.forEach((r) => r.addEventListener('change', sync));
  sync();
  if (ro) for (const c of form.querySelectorAll('input,select,textarea')) c.disabled = true;
  if (ro) editor.textarea.readOnly = true;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    editor.setErrors([]);
    const execution = radios.find((r) => r.checked).value;
    const num = (w, d) => { const x = w.control.value.trim(); return x === '' ? d : (/^-?\d+$/.test(x) ? Number(x) : x); };
    const nb = fromLocalInput(f.notBefore.control.value);
    const na = fromLocalInput(f.notAfter.control.value);
    const body = {
      name: f.name.control.value.trim(),
      config: editor.textarea.value,
      active: f.active.control.checked,
      execution,
      automaticRestart: execution !== 'once' && f.automaticRestart.control.checked,
      repeatOnBootstrap: execution !== 'once' && f.repeatOnBootstrap.control.checked,
      repeatOnRegister: execution !== 'once' && f.repeatOnRegister.control.checked,
      condition: f.condition.control.value.trim() || null,
      priority: num(f.priority, 10),
      minIntervalSeconds: num(f.minIntervalSeconds, 0),
      appliesToSubgroups: f.appliesToSubgroups.control.checked,
      schedule: nb || na ? { notBefore: nb, notAfter: na } : null,
    };
    save.disabled = true;
    try {
      const saved = isNew ? await post(`/groups/${g.id}/tasks`, body) : await put(`/groups/${g.id}/tasks/${t.id}`, body);
      toast(`Saved task “${saved.name}” (ID ${saved.id}).`);
      location.hash = `#/groups/${g.id}/tasks/${saved.id}/reports`;
    } catch (err) {
      const cfg = err.errors ? err.errors.filter((x) => x.field === 'config') : [];
      editor.setErrors(cfg);
      showErrors(form, err);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(v) { return v ? new Date(v).toISOString() : null; }

// A textarea with line numbers; setErrors([{line, message}]) marks lines
// and lists the messages with a button that moves the caret there.
function xmlEditor(text, readOnly) {
  const id = nextId('config');
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const marks = h('div', { class: 'marks', 'aria-hidden': 'true' });
  const ta = h('textarea', { id, name: 'config', class: 'code', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off', rows: 18, 'aria-describedby': `${id}-help ${id}-err` });
  ta.value = text || '';
  const errList = h('ul', { class: 'config-errors', id: `${id}-errlist` });
  let errors = [];
  const wrap = h('div', { class: 'field config-field', dataset: { field: 'config' } },
    h('label', { for: id }, 'Task configuration (XML)'),
    h('div', { class: 'editor' }, gutter, h('div', { class: 'area' }, marks, ta)),
    h('p', { class: 'help', id: `${id}-help` }, 'The <config> of the task language. It is checked when you save; errors point at their line.'),
    h('p', { class: 'field-error', id: `${id}-err`, hidden: true }),
    errList);
  wrap.control = ta;
  wrap.textarea = ta;
  const lineOf = (e) => Number(e.line) || 0;
  function paint() {
    const n = ta.value.split('\n').length;
    const bad = new Set(errors.map(lineOf));
    clear(gutter).append(...Array.from({ length: n }, (_, i) => h('span', { class: bad.has(i + 1) ? 'error' : null, title: bad.has(i + 1) ? 'error on this line' : null }, String(i + 1))));
    clear(marks).append(...[...bad].filter((l) => l > 0).map((l) => {
      const d = h('div', { class: 'mark', dataset: { line: l } });
      d.style.top = `${8 + (l - 1) * 20 - ta.scrollTop}px`;
      return d;
    }));
    gutter.scrollTop = ta.scrollTop;
  }
  function gotoLine(l) {
    const lines = ta.value.split('\n');
    let pos = 0;
    for (let i = 0; i < l - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    ta.focus();
    ta.setSelectionRange(pos, pos + (lines[l - 1] || '').length);
    ta.scrollTop = Math.max(0, (l - 3) * 20);
    paint();
  }
  ta.addEventListener('input', paint);
  ta.addEventListener('scroll', paint);
  ta.addEventListener('keydown', (e) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users)
    if (e.key === 'Tab' && !e.shiftKey && !ta.dataset.escaped && !readOnly) {
      e.preventDefault();
      const s = ta.selectionStart;
      ta.setRangeText('  ', s, ta.selectionEnd, 'end');
      paint();
    } else if (e.key === 'Escape') {
      ta.dataset.escaped = '1';
    } else {
      delete ta.dataset.escaped;
    }
  });
  ta.addEventListener('blur', () => { delete ta.dataset.escaped; });
  wrap.setErrors = (errs) => {
    errors = errs || [];
    clear(errList).append(...errors.map((e) => h('li', null,
      lineOf(e) ? h('button', { type: 'button', class: 'linklike', onclick: () => gotoLine(lineOf(e)) }, `Line ${lineOf(e)}`) : null,
      lineOf(e) ? ': ' : '', e.message.replace(/^line \d+: /, ''))));
    paint();
  };
  // showErrors() puts the first message in .field-error; the list shows all
  wrap.onError = () => { const p = wrap.querySelector(':scope > .field-error'); p.hidden = true; };
  paint();
  return wrap;
}

// ---------------------------------------------------------- reports view
async function reportsView(el, g, t, ctx) {
  const filter = ctx.query.get('status') || '';
  const box = h('section', { class: 'reports', 'aria-labelledby': 'reports-title' });
  const live = h('p', { class: 'muted live-note', role: 'status' });
  el.append(box);
  let offset = 0;
  async function load() {
    let page;
    try {
      page = await get(`/groups/${g.id}/tasks/${t.id}/reports?limit=50&offset=${offset}${filter ? `&status=${filter}` : ''}`);
    } catch (e) { clear(box).append(errorBox(e)); return; }
    if (!ctx.isCurrent()) return;
    const chips = h('div', { class: 'counts', role: 'group', 'aria-label': 'Reports per status' },
      h('a', { class: 'count-chip', href: `#/groups/${g.id}/tasks/${t.id}/reports`, 'aria-current': !filter ? 'true' : null }, 'All ', h('strong', null, String(STATUSES.reduce((a, s) => a + (page.counts[s] || 0), 0)))),
      STATUSES.map((s) => h('a', { class: `count-chip status-${s.toLowerCase()}`, href: `#/groups/${g.id}/tasks/${t.id}/reports?status=${s}`, 'aria-current': filter === s ? 'true' : null, dataset: { status: s } },
        statusBadge(s), h('strong', null, String(page.counts[s] || 0)))));
    const rows = page.items.map((r) => {
      const href = r.id ? `#/devices/${r.deviceId}/reports/${r.id}` : null;
      const tr = h('tr', { dataset: { endpoint: r.endpoint, status: r.status } },
        h('td', null, h('a', { href: `#/devices/${r.deviceId}` }, r.endpoint)),
        h('td', null, statusBadge(r.status)),
        h('td', { class: 'opt' }, timeEl(r.startedAt)),
        h('td', { class: 'opt' }, timeEl(r.finishedAt)),
        h('td', { class: 'num opt' }, r.runs ?? 0),
        h('td', null, r.summary || ''),
        h('td', { class: 'row-actions' }, href ? h('a', { class: 'btn small', href, 'aria-label': `Execution log of ${r.endpoint}` }, 'Log') : h('span', { class: 'muted' }, '—')));
      return href ? rowLink(tr, href) : tr;
    });
    clear(box).append(
      h('div', { class: 'page-header' }, h('h2', { id: 'reports-title' }, 'Reports'),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn small', onclick: () => load() }, 'Refresh'))),
      chips, live,
      table([{ label: 'Device' }, { label: 'Status' }, { label: 'Started', class: 'opt' }, { label: 'Finished', class: 'opt' }, { label: 'Runs', class: 'num opt' }, { label: 'Summary' }, { label: 'Log', class: 'row-actions' }],
        rows.length ? rows : [emptyRow(7, filter ? `No report with status ${statusWords(filter)}.` : 'No target devices yet: the task runs on the members of the group when they connect.')],
        { clickable: true, caption: 'Reports per device' }),
      pager(page, (o) => { offset = o; load(); }));
    updateLive();
  }
  function updateLive() {
    live.textContent = events.state === 'live' ? 'Updates live as devices report.'
      : events.state === 'unavailable' ? 'Live events are not available; the list refreshes every 5 seconds.' : '';
  }
  await load();
  const off = events.on((ev) => { if (ev.type === 'task-status' && (!ev.data || ev.data.taskId == null || ev.data.taskId === t.id)) load(); });
  const timer = setInterval(() => { if (events.state !== 'live') load(); }, 5000);
  const offState = events.onState(updateLive);
  ctx.setCleanup(() => { off(); offState(); clearInterval(timer); });
}
