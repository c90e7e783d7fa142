// Administration → LwM2M bootstrap: which servers a bootstrapping device of
// this domain gets; saved as a group task on the domain's bootstrap group.
import { get, getAll, put } from './api.js';
import { h, clear, field, show, formBanner, showErrors, clearErrors, toast, pageHeader, breadcrumbs, loading, timeEl } from './ui.js';
import { MODE_NAMES } from './servers.js';

export async function render(el, params, ctx) {
  el.append(loading());
  const [settings, servers, groups] = await Promise.all([
    get('/bootstrap-settings'),
    getAll('/lwm2m-servers'),
    getAll('/groups'),
  ]);
  clear(el);
  const byId = new Map(servers.map((s) => [s.id, s]));
  const mgmt = servers.filter((s) => s.type === 'management');
  const bss = servers.filter((s) => s.type === 'bootstrap');
  const bsGroup = groups.find((g) => g.bootstrap && g.domain === settings.domain) || groups.find((g) => g.bootstrap);
  let selected = [...(settings.managementServerIds || [])];

  const label = (s) => `${s.name} — ${s.uri} (${MODE_NAMES[s.securityMode] || s.securityMode}${s.ssid ? `, SSID ${s.ssid}` : ''})`;

  // management servers: an ordered list with add / remove / move
  const listEl = h('ol', { class: 'server-list' });
  const addSel = field({ name: 'addManagement', label: 'Management server to add', type: 'select', options: [] });
  const addBtn = h('button', { type: 'button', class: 'btn' }, 'Add server');
  const mgmtBox = h('div', { class: 'field', dataset: { field: 'managementServerIds' } },
    h('p', { class: 'field-error', hidden: true }));
  function renderList() {
    clear(listEl);
    if (!selected.length) listEl.append(h('li', { class: 'muted empty-item' }, 'No management server: devices get only what other tasks give them.'));
    selected.forEach((id, i) => {
      const s = byId.get(id);
      const name = s ? label(s) : `server ${id} (not visible)`;
      const li = h('li', { class: 'field server-item', dataset: { field: `managementServerIds[${i}]` } },
        h('div', { class: 'server-row' },
          h('span', { class: 'server-name' }, name),
          h('span', { class: 'actions' },
            h('button', { type: 'button', class: 'btn small', disabled: i === 0, 'aria-label': `Move ${s ? s.name : id} up`, onclick: () => { [selected[i - 1], selected[i]] = [selected[i], selected[i - 1]]; renderList(); } }, '↑'),
            h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Remove ${s ? s.name : id}`, onclick: () => { selected.splice(i, 1); renderList(); addSel.control.focus(); } }, 'Remove'))),
        h('p', { class: 'field-error', hidden: true }));
      listEl.append(li);
    });
    const avail = mgmt.filter((s) => !selected.includes(s.id));
    clear(addSel.control).append(...(avail.length ? avail.map((s) => h('option', { value: s.id }, label(s))) : [h('option', { value: '' }, 'All management servers are in the list')]));
    addSel.control.disabled = addBtn.disabled = !avail.length;
  }
  addBtn.addEventListener('click', () => {
    const id = Number(addSel.control.value);
    if (id && !selected.includes(id)) { selected.push(id); renderList(); }
  });
  renderList();

  const useBs = field({ name: 'selectBootstrap', label: 'Select bootstrap server', type: 'checkbox', value: settings.bootstrapServerId != null, help: 'Give devices a new bootstrap-server account (a device should have only one).' });
  const bsSel = field({ name: 'bootstrapServerId', label: 'Bootstrap server', type: 'select', value: settings.bootstrapServerId ?? '',
    options: bss.length ? bss.map((s) => [s.id, label(s)]) : [['', 'No bootstrap server defined — add one under LwM2M servers']] });
  const bsBox = h('div', { class: 'subfields' }, bsSel);
  const sync = () => show(bsBox, useBs.control.checked);
  useBs.control.addEventListener('change', sync);
  sync();
  const accept = field({ name: 'acceptUnknownDevices', label: 'Accept unknown devices', type: 'checkbox', value: settings.acceptUnknownDevices, help: 'Create a device when an unknown endpoint bootstraps over plain CoAP.' });

  const banner = formBanner();
  const save = h('button', { type: 'submit', class: 'btn primary' }, 'Save');
  const taskInfo = h('div', { class: 'banner banner-info task-info', role: 'status' });
  function renderTaskInfo(st) {
    clear(taskInfo);
    if (st.taskId && bsGroup) {
      taskInfo.append(h('p', null, 'These settings are applied by the group task ',
        h('a', { href: `#/groups/${bsGroup.id}/tasks/${st.taskId}` }, `“LwM2M bootstrap settings” (task ${st.taskId})`),
        ' of the group ', h('a', { href: `#/groups/${bsGroup.id}/tasks` }, `“${bsGroup.name}”`),
        ', which every device that bootstraps in this domain joins. The task is kept in step with this screen and cannot be edited directly.'));
    } else if (st.taskId) {
      taskInfo.append(h('p', null, `These settings are applied by the group task ${st.taskId} of the domain's bootstrap group.`));
    } else {
      taskInfo.append(h('p', null, 'No group task yet: saving creates the task on the domain’s bootstrap group.'));
    }
    taskInfo.append(h('p', { class: 'muted' }, 'Domain ', h('code', null, st.domain), ' · last saved ', timeEl(st.updatedAt)));
  }
  renderTaskInfo(settings);

  const form = h('form', { novalidate: true, class: 'bs-form' },
    banner,
    h('div', { class: 'columns' },
      h('fieldset', null, h('legend', null, 'Management servers'),
        h('p', { class: 'help' }, 'Devices get these servers, in this order (the first one is where they register first).'),
        mgmtBox, listEl,
        h('div', { class: 'inline-add' }, addSel, addBtn)),
      h('fieldset', null, h('legend', null, 'Bootstrap server'), useBs, bsBox, accept)),
    h('div', { class: 'actions form-actions' }, save));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {
      bootstrapServerId: useBs.control.checked ? (Number(bsSel.control.value) || null) : null,
      managementServerIds: selected,
      acceptUnknownDevices: accept.control.checked,
    };
    save.disabled = true;
    try {
      const st = await put('/bootstrap-settings', body);
      selected = [...st.managementServerIds];
      renderList();
      renderTaskInfo(st);
      toast('Saved the LwM2M bootstrap settings; devices get them at their next bootstrap.');
    } catch (err) {
      showErrors(form, err, { bootstrapServerId: useBs.control.checked ? 'bootstrapServerId' : 'selectBootstrap' });
    } finally {
      save.disabled = false;
    }
  });

  el.append(
    breadcrumbs(['Administration'], ['LwM2M bootstrap']),
    pageHeader('LwM2M bootstrap'),
    h('p', { class: 'intro' }, 'What a device receives when it bootstraps in this domain: the management servers it may register to and, optionally, a new bootstrap server.'),
    taskInfo,
    form);
}
