// Browser test: the LwM2M bootstrap screen, device groups and group tasks
// (task settings, XML errors at their line), a simulated device that
// bootstraps while the report page is open, the report's execution log, and
// a server whose deletion takes its task away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lwdm, openBrowser, newPage, assertNoErrors, screenshot, uiLogin, stopAll, runSim, waitUntil } from './helpers.mjs';

let lwdm;
let browser;
let page;
let bsGroup;

before(async () => {
  lwdm = await new Lwdm().start();
  browser = await openBrowser();
  page = await newPage(browser);
  await uiLogin(page, lwdm);
  bsGroup = (await lwdm.api('GET', '/groups')).body.items.find((g) => g.bootstrap);
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
});

const L = (label) => page.getByLabel(label, { exact: true });

test('bootstrap screen: management servers list, bootstrap server, save', async () => {
  await page.getByRole('link', { name: 'LwM2M bootstrap' }).click();
  await page.getByRole('heading', { name: 'LwM2M bootstrap', exact: true }).waitFor();
  // the maintained group task is named and linked
  const info = page.locator('.task-info');
  await info.getByRole('link', { name: /LwM2M bootstrap settings/ }).waitFor();
  const items = page.locator('.server-list > li.server-item');
  assert.equal(await items.count(), 1);
  assert.match(await items.first().textContent(), /lwdm management \(NoSec\)/);
  assert.equal(await L('Bootstrap server').isVisible(), false, 'the list appears only with the check box');

  // add the PSK management server, then remove and re-add it
  await page.getByRole('button', { name: 'Add server' }).click();
  assert.equal(await items.count(), 2);
  await page.getByRole('button', { name: 'Remove lwdm management (PSK)' }).click();
  assert.equal(await items.count(), 1);
  await page.getByRole('button', { name: 'Add server' }).click();
  assert.equal(await items.count(), 2);

  await L('Select bootstrap server').check();
  assert.equal(await L('Bootstrap server').isVisible(), true);
  const bsOpt = await L('Bootstrap server').locator('option', { hasText: 'lwdm bootstrap (PSK)' }).getAttribute('value');
  await L('Bootstrap server').selectOption(bsOpt);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByText('Saved the LwM2M bootstrap settings').waitFor();
  await screenshot(page, '10-bootstrap-settings');

  const st = (await lwdm.api('GET', '/bootstrap-settings')).body;
  assert.deepEqual(st.managementServerIds, [1, 2]);
  assert.equal(st.bootstrapServerId, Number(bsOpt));
  // the maintained task follows
  const task = (await lwdm.api('GET', `/groups/${bsGroup.id}/tasks/${st.taskId}`)).body;
  assert.match(task.config, /serverId="2"/);

  // reload: the screen shows what was saved
  await page.reload();
  await page.getByRole('heading', { name: 'LwM2M bootstrap', exact: true }).waitFor();
  assert.equal(await page.locator('.server-list > li.server-item').count(), 2);
  assert.equal(await L('Select bootstrap server').isChecked(), true);

  // back to the NoSec management server only, no bootstrap server (the sim below)
  await page.getByRole('button', { name: 'Remove lwdm management (PSK)' }).click();
  await L('Select bootstrap server').uncheck();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByText('Saved the LwM2M bootstrap settings').waitFor();
  const st2 = (await lwdm.api('GET', '/bootstrap-settings')).body;
  assert.deepEqual(st2.managementServerIds, [1]);
  assert.equal(st2.bootstrapServerId, null);
  assertNoErrors(page);
});

test('device groups: tree, add a subgroup, setting values, members', async () => {
  await page.getByRole('link', { name: 'Device groups' }).click();
  await page.getByRole('heading', { name: `Group “${bsGroup.name}”` }).waitFor();
  await page.getByRole('button', { name: 'Add group' }).click();
  await L('Group name').fill('field devices');
  await L('Parent group').selectOption({ label: bsGroup.name });
  await page.getByRole('button', { name: 'Add group' }).last().click();
  await page.getByRole('heading', { name: 'Group “field devices”' }).waitFor();
  assert.equal(await page.locator('.tree a', { hasText: 'field devices' }).count(), 1);
  // a duplicate sibling name: the API's 409 in words
  // the group's settings tab is open; Add group opens a second form above it
  await page.getByRole('button', { name: 'Add group' }).first().click();
  const addForm = page.locator('form', { has: page.getByRole('heading', { name: 'Add group' }) });
  await addForm.getByLabel('Group name', { exact: true }).fill('field devices');
  await addForm.getByLabel('Parent group', { exact: true }).selectOption({ label: bsGroup.name });
  await addForm.getByRole('button', { name: 'Add group' }).click();
  await addForm.locator('[data-field="name"] .field-error', { hasText: /already exists/ }).waitFor();
  await screenshot(page, '18-group-settings-duplicate');
  await addForm.getByRole('button', { name: 'Cancel' }).click();

  // setting values
  await page.getByRole('link', { name: 'Setting values' }).click();
  await page.getByRole('button', { name: 'Add value' }).click();
  await page.getByLabel('Name', { exact: true }).last().fill('apn');
  await page.getByLabel('Value', { exact: true }).last().fill('internet');
  await page.getByRole('button', { name: 'Add value' }).click();
  await page.getByLabel('Name', { exact: true }).last().fill('9bad');
  await page.getByLabel('Value', { exact: true }).last().fill('x');
  await page.getByRole('button', { name: 'Save setting values' }).click();
  await page.locator('tr[data-field="9bad"] .field-error', { hasText: 'setting value names are 1 to 128 letters' }).waitFor();
  await screenshot(page, '19-setting-values-error');
  await page.getByRole('button', { name: 'Remove setting value 9bad' }).click();
  await page.getByRole('button', { name: 'Save setting values' }).click();
  await page.getByText('Saved 1 setting value(s)').waitFor();
  const gid = Number(/#\/groups\/(\d+)/.exec(page.url())[1]);
  assert.deepEqual((await lwdm.api('GET', `/groups/${gid}/setting-values`)).body, { apn: 'internet' });
  assertNoErrors(page);
});

test('group task: settings pane, XML errors shown at their line, then saved', async () => {
  await page.goto(`${lwdm.url}/#/groups/${bsGroup.id}/tasks`);
  await page.getByRole('link', { name: 'LwM2M bootstrap settings' }).waitFor();
  assert.match(await page.locator('table.data').textContent(), /managed by bootstrap settings/);
  await page.getByRole('link', { name: 'Add task' }).click();
  await page.getByRole('heading', { name: `Add task to “${bsGroup.name}”` }).waitFor();
  await L('Task name').fill('greet devices');
  // once: the repeat options go away; once and repeat: they come back
  await page.getByRole('radio', { name: 'Once', exact: true }).check();
  assert.equal(await L('Automatic restart').isVisible(), false);
  await page.getByRole('radio', { name: 'Once and repeat' }).check();
  await L('Automatic restart').check();
  await L('Repeat on bootstrap').check();
  await L('Priority').fill('5');
  await L('Minimum interval (s)').fill('0');
  await L('Condition').fill('${device.endpoint');
  const bad = '<config>\n  <log message="hello ${device.endpoint}"/>\n  <set key="Device.0.Manufacturer" vlaue="x"/>\n</config>\n';
  await L('Task configuration (XML)').fill(bad);
  await page.getByRole('button', { name: 'Add new task' }).click();
  await page.locator('.config-errors li').first().waitFor();
  const errs = await page.locator('.config-errors li').allTextContents();
  assert.ok(errs.some((t) => /^Line 3: unknown attribute 'vlaue' on <set>; did you mean 'value'\?/.test(t)), errs.join('\n'));
  assert.equal(await page.locator('.editor .gutter span.error').textContent(), '3');
  assert.equal(await page.locator('.editor .marks .mark').count(), 1);
  assert.ok(await page.locator('[data-field="condition"] .field-error').isVisible(), 'the condition error is shown too');
  await screenshot(page, '11-task-config-error');
  // the line button moves the caret to the line
  await page.locator('.config-errors button', { hasText: 'Line 3' }).click();
  const sel = await page.evaluate(() => { const t = document.activeElement; return t.value.slice(t.selectionStart, t.selectionEnd); });
  assert.match(sel, /vlaue/);

  await L('Condition').fill('');
  await L('Task configuration (XML)').fill('<config>\n  <log message="hello ${device.endpoint}"/>\n  <store target="greeted" value="yes"/>\n</config>\n');
  await page.getByRole('button', { name: 'Add new task' }).click();
  await page.getByRole('heading', { name: 'Task “greet devices”' }).waitFor();
  await page.getByRole('heading', { name: 'Reports' }).waitFor();
  const tasks = (await lwdm.api('GET', `/groups/${bsGroup.id}/tasks`)).body.items;
  const t = tasks.find((x) => x.name === 'greet devices');
  assert.equal(t.execution, 'onceAndRepeat');
  assert.equal(t.automaticRestart, true);
  assert.equal(t.repeatOnBootstrap, true);
  assert.equal(t.priority, 5);
  assertNoErrors(page);
});

test('a simulated device bootstraps; its report turns SUCCESS; the log is shown', async () => {
  const t = (await lwdm.api('GET', `/groups/${bsGroup.id}/tasks`)).body.items.find((x) => x.name === 'greet devices');
  await page.goto(`${lwdm.url}/#/groups/${bsGroup.id}/tasks/${t.id}/reports`);
  await page.getByRole('heading', { name: 'Reports' }).waitFor();
  await page.getByText('No target devices yet').waitFor();
  const sim = await runSim(lwdm, { count: 2, prefix: 'web-' });
  assert.equal(sim.code, 0, `lwdm-sim failed:\n${sim.stdout}\n${sim.stderr}`);
  // the page updates by itself (live events, or polling without them)
  const row = page.locator('tr[data-endpoint="web-000001"]');
  await row.waitFor({ timeout: 20000 });
  await page.waitForFunction(() => {
    const r = document.querySelector('tr[data-endpoint="web-000001"]');
    return r && r.dataset.status === 'SUCCESS';
  }, null, { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector('.count-chip[data-status="SUCCESS"] strong')?.textContent === '2', null, { timeout: 20000 });
  await screenshot(page, '12-group-task-reports');
  await row.getByRole('link', { name: 'Execution log of web-000001' }).click();
  await page.getByRole('heading', { name: 'Task report: greet devices on web-000001' }).waitFor();
  const log = await page.locator('table.log-table').textContent();
  assert.match(log, /hello web-000001/);
  assert.match(await page.locator('.kv').last().textContent(), /greeted\s*yes/);
  await screenshot(page, '13-task-report-log');
  // the group tasks list shows the counts
  await page.goto(`${lwdm.url}/#/groups/${bsGroup.id}/tasks`);
  const trow = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: 'greet devices' }) });
  await trow.waitFor();
  assert.match(await trow.textContent(), /Success\s*2/);
  await screenshot(page, '14-group-tasks');
  // the managed task is read-only
  await page.getByRole('link', { name: 'LwM2M bootstrap settings' }).click();
  await page.getByRole('link', { name: 'Settings and configuration' }).click();
  await page.getByText('is read-only here').waitFor();
  assert.equal(await L('Task configuration (XML)').isEditable(), false);
  assertNoErrors(page);
});

test('deleting a server takes its task away', async () => {
  const s = await lwdm.api('POST', '/lwm2m-servers', { name: 'extra dm', ssid: 77, uri: 'extra.example.com' });
  assert.equal(s.status, 201);
  const groups = (await lwdm.api('GET', '/groups')).body.items;
  const g = groups.find((x) => x.name === 'field devices');
  await page.goto(`${lwdm.url}/#/groups/${g.id}/tasks/new`);
  await L('Task name').fill('move to extra dm');
  await L('Task configuration (XML)').fill(`<config>\n  <lwm2mBootstrapCleanse/>\n  <lwm2mBootstrapConfiguration serverName="extra dm"/>\n  <lwm2mBootstrap performBootstrapFinish="true"/>\n</config>\n`);
  await page.getByRole('button', { name: 'Add new task' }).click();
  await page.getByRole('heading', { name: 'Task “move to extra dm”' }).waitFor();
  await page.goto(`${lwdm.url}/#/groups/${g.id}/tasks`);
  await page.getByRole('link', { name: 'move to extra dm' }).waitFor();

  await page.goto(`${lwdm.url}/#/servers`);
  const row = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: 'extra dm', exact: true }) });
  await row.getByRole('button', { name: 'Delete server extra dm' }).click();
  const dlg = page.getByRole('dialog', { name: 'Delete LwM2M server' });
  await dlg.getByText('move to extra dm').waitFor();
  await dlg.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('Deleted server “extra dm” with 1 task').waitFor();

  await page.goto(`${lwdm.url}/#/groups/${g.id}/tasks`);
  await page.getByText('No tasks on this group yet').waitFor();
  assert.equal(await page.getByRole('link', { name: 'move to extra dm' }).count(), 0);
  assertNoErrors(page);
});

test('phone width: bootstrap and group task screens fit', async () => {
  const phone = await newPage(browser, { width: 390, height: 844 });
  await uiLogin(phone, lwdm);
  for (const [hash, name] of [['#/bootstrap', '15-bootstrap-phone'], [`#/groups/${bsGroup.id}/tasks`, '16-group-tasks-phone'], [`#/groups/${bsGroup.id}/tasks/new`, '17-task-form-phone']]) {
    await phone.goto(`${lwdm.url}/${hash}`);
    await phone.locator('h1').waitFor();
    await waitUntil(() => phone.locator('.loading').count().then((n) => n === 0), 5000, 'the screen to load');
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${hash} is wider than the phone screen by ${overflow}px`);
    await screenshot(phone, name);
  }
  assertNoErrors(phone);
  await phone.context().close();
});
