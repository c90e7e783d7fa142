// Browser test: the devices list (search, state), the device page
// (registration, last bootstrap, objects, task reports, live events), group
// members, keyboard use and phone width. Devices come from lwdm-sim.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lwdm, openBrowser, newPage, assertNoErrors, screenshot, uiLogin, stopAll, runSim } from './helpers.mjs';
import { MiniDevice } from './minidevice.mjs';

let lwdm;
let browser;
let page;
let dev1;
let mini;

before(async () => {
  lwdm = await new Lwdm().start();
  const sim = await runSim(lwdm, { count: 3, prefix: 'dev-' });
  assert.equal(sim.code, 0, `lwdm-sim failed:\n${sim.stdout}\n${sim.stderr}`);
  dev1 = (await lwdm.api('GET', '/devices?q=dev-000001')).body.items[0];
  // dev-000001 also registers (a small client that answers Read/Write/Execute on /3/0)
  mini = new MiniDevice('dev-000001');
  await mini.register(lwdm.ports.coap);
  browser = await openBrowser();
  page = await newPage(browser);
  await uiLogin(page, lwdm);
});

after(async () => {
  if (mini) mini.close();
  if (browser) await browser.close();
  await stopAll();
});

test('devices list: every device with its state; search', async () => {
  await page.goto(`${lwdm.url}/#/devices`);
  await page.locator('tr[data-endpoint="dev-000003"]').waitFor();
  assert.equal(await page.locator('table.data tbody tr').count(), 3);
  for (const st of await page.locator('table.data tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.state))) {
    assert.ok(['online', 'offline', 'asleep', 'bootstrapping'].includes(st), st);
  }
  assert.match(await page.locator('tr[data-endpoint="dev-000001"]').textContent(), /success/);
  assert.equal(await page.locator('tr[data-endpoint="dev-000001"]').getAttribute('data-state'), 'online');
  assert.equal(await page.locator('tr[data-endpoint="dev-000002"]').getAttribute('data-state'), 'offline');
  // the state filter (?state=), where the API has it
  const filtered = await lwdm.api('GET', '/devices?state=registered');
  if (filtered.status === 200 && filtered.body.total === 1) {
    await page.getByLabel('State', { exact: true }).selectOption('registered');
    await page.waitForFunction(() => document.querySelectorAll('table.data tbody tr').length === 1);
    await page.getByLabel('State', { exact: true }).selectOption('');
    await page.locator('tr[data-endpoint="dev-000003"]').waitFor();
  }
  await screenshot(page, '20-devices-list');
  await page.getByLabel('Search', { exact: true }).fill('dev-000002');
  await page.waitForFunction(() => document.querySelectorAll('table.data tbody tr').length === 1);
  await page.getByLabel('Search', { exact: true }).fill('no-such-device');
  await page.getByText('No device matches.').waitFor();
  await page.getByLabel('Search', { exact: true }).fill('');
  await page.locator('tr[data-endpoint="dev-000003"]').waitFor();
  assertNoErrors(page);
});

test('device page: registration state, last bootstrap steps, device details', async () => {
  await page.locator('tr[data-endpoint="dev-000001"]').locator('td').nth(1).click();
  await page.getByRole('heading', { name: 'Device dev-000001' }).waitFor();
  await page.getByRole('heading', { name: 'Registration' }).waitFor();
  const reg = await page.locator('section', { has: page.getByRole('heading', { name: 'Registration' }) }).textContent();
  assert.match(reg, /LwM2M version\s*1\.1/);
  assert.match(reg, /Binding\s*U/);
  assert.match(reg, /Lifetime\s*300 s/);
  assert.match(await page.locator('.dev-groups').textContent(), /bootstrap/);
  const bs = await page.locator('section', { has: page.getByRole('heading', { name: 'Last bootstrap' }) }).textContent();
  assert.match(bs, /success/);
  assert.match(bs, /finish/);
  assert.match(bs, /discover/);
  await screenshot(page, '21-device-page');
  assertNoErrors(page);
});

test('device objects: the tree, Read, Write and Execute on a registered device', async () => {
  await page.getByRole('link', { name: 'Objects' }).click();
  await page.getByRole('heading', { name: 'Objects', exact: true }).waitFor();
  const obj3 = page.locator('details[data-object="3"]');
  await obj3.locator('summary').click();
  await obj3.getByRole('button', { name: 'Read /3/0' }).click();
  const row14 = obj3.locator('tr[data-path="/3/0/14"]');
  await row14.waitFor();
  assert.match(await obj3.locator('tr[data-path="/3/0/0"]').textContent(), /Manufacturer.*lwdm test maker/);
  await row14.getByRole('button', { name: 'Write /3/0/14' }).click();
  await row14.getByLabel('New value of /3/0/14').fill('+02');
  await row14.getByRole('button', { name: 'Save' }).click();
  await row14.getByText('written (2.04)').waitFor();
  assert.equal(mini.values[14], '+02', 'the device got the write');
  await screenshot(page, '22-device-objects');
  await page.getByLabel('Path', { exact: true }).fill('/3/0/4');
  await page.getByRole('button', { name: 'Execute' }).click();
  await page.locator('.op-result', { hasText: 'Done: 2.04' }).waitFor();
  assert.deepEqual(mini.executed, [4], 'the device got the execute');
  // an offline device: the operation's error in words
  const dev2 = (await lwdm.api('GET', '/devices?q=dev-000002')).body.items[0];
  await page.goto(`${lwdm.url}/#/devices/${dev2.id}/objects`);
  await page.getByText('The device is not registered').waitFor();
  await page.getByLabel('Path', { exact: true }).fill('/3/0');
  await page.getByRole('button', { name: 'Read', exact: true }).click();
  const out = page.locator('.op-result');
  await out.locator('h4', { hasText: 'Read /3/0' }).waitFor();
  // registered: the values; not registered (or no data API yet): the error in words
  await page.waitForFunction(() => {
    const o = document.querySelector('.op-result');
    return o && (o.querySelector('table') || o.querySelector('.banner-error'));
  });
  assert.match(await out.textContent(), /\(503\): device offline/);
  await page.getByLabel('Path', { exact: true }).fill('3/x');
  await page.getByRole('button', { name: 'Execute' }).click();
  await out.getByText('The path must look like').waitFor();
  await page.getByLabel('Path', { exact: true }).fill('/3/0/4');
  await page.getByRole('button', { name: 'Execute' }).click();
  await page.waitForFunction(() => /Execute \/3\/0\/4/.test(document.querySelector('.op-result h4')?.textContent || '') && document.querySelector('.op-result p, .op-result .banner'));
  await screenshot(page, '22b-device-objects-offline');
  await page.goto(`${lwdm.url}/#/devices/${dev1.id}`);
  assertNoErrors(page);
});

test('device task reports and the report log', async () => {
  await page.getByRole('link', { name: 'Task reports' }).click();
  await page.getByRole('heading', { name: 'Task reports' }).waitFor();
  await page.getByRole('link', { name: 'LwM2M bootstrap settings' }).click();
  await page.getByRole('heading', { name: 'Task report: LwM2M bootstrap settings on dev-000001' }).waitFor();
  const log = await page.locator('table.log-table').textContent();
  assert.match(log, /Bootstrap-Discover/);
  assert.match(log, /finish \/bs/);
  assertNoErrors(page);
});

test('live events of a device, without reloading', async () => {
  await page.goto(`${lwdm.url}/#/devices/${dev1.id}/events`);
  await page.getByRole('heading', { name: 'Live events' }).waitFor();
  const state = await page.waitForFunction(() => {
    const s = document.getElementById('live-state').dataset.state;
    return s === 'live' || s === 'unavailable' ? s : null;
  }, null, { timeout: 15000 }).then((h) => h.jsonValue());
  if (state === 'live') {
    const sim = await runSim(lwdm, { count: 1, prefix: 'dev-' });
    assert.equal(sim.code, 0);
    await page.locator('.events-log li[data-type]').first().waitFor({ timeout: 15000 });
    const types = await page.locator('.events-log li[data-type]').evaluateAll((l) => l.map((x) => x.dataset.type));
    assert.ok(types.some((t) => t.startsWith('bootstrap')), types.join(','));
  } else {
    await page.getByText('Live events are not available from this lwdm').waitFor();
  }
  await screenshot(page, '23-device-events');
  assertNoErrors(page);
});

test('group members: the bootstrap group lists the devices; add one to another group', async () => {
  const g = await lwdm.api('POST', '/groups', { name: 'pilot' });
  assert.equal(g.status, 201);
  const bs = (await lwdm.api('GET', '/groups')).body.items.find((x) => x.bootstrap);
  await page.goto(`${lwdm.url}/#/groups/${bs.id}/members`);
  await page.getByRole('link', { name: 'dev-000002' }).waitFor();
  await page.goto(`${lwdm.url}/#/groups/${g.body.id}/members`);
  await page.getByText('No members yet').waitFor();
  await page.getByLabel('Device endpoint name', { exact: true }).fill('nope');
  await page.getByRole('button', { name: 'Add member' }).click();
  await page.getByText('no device with the endpoint name “nope”').waitFor();
  await page.getByLabel('Device endpoint name', { exact: true }).fill('dev-000003');
  await page.getByRole('button', { name: 'Add member' }).click();
  await page.getByRole('link', { name: 'dev-000003' }).waitFor();
  await screenshot(page, '24-group-members');
  await page.getByRole('button', { name: 'Remove dev-000003 from the group' }).click();
  await page.getByText('No members yet').waitFor();
  assertNoErrors(page);
});

test('keyboard: skip link, tabs and rows are reachable without a mouse', async () => {
  await page.goto(`${lwdm.url}/#/devices`);
  await page.reload();
  await page.locator('tr[data-endpoint="dev-000001"]').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  // from the search box, Tab goes to the state filter, then into the table
  await page.getByLabel('Search', { exact: true }).focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'state');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'dev-000001');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Device dev-000001' }).waitFor();
  // every visible input, select and textarea has a label
  for (const hash of ['#/devices', `#/devices/${dev1.id}/objects`, '#/servers/new', '#/bootstrap', '#/groups', '#/groups/1/tasks/new', '#/groups/1/values', '#/groups/1/members']) {
    await page.goto(`${lwdm.url}/${hash}`);
    await page.locator('h1').waitFor();
    await page.waitForFunction(() => !document.querySelector('.loading'));
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((c) => c.type !== 'hidden' && !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
      .map((c) => c.outerHTML.slice(0, 120)));
    assert.deepEqual(unlabelled, [], `${hash}: controls without a label`);
  }
  assertNoErrors(page);
});

test('phone width: devices list and device page fit', async () => {
  const phone = await newPage(browser, { width: 390, height: 844 });
  await uiLogin(phone, lwdm);
  for (const [hash, name] of [['#/devices', '25-devices-list-phone'], [`#/devices/${dev1.id}`, '26-device-page-phone']]) {
    await phone.goto(`${lwdm.url}/${hash}`);
    await phone.locator('h1').waitFor();
    await phone.waitForFunction(() => !document.querySelector('.loading'));
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${hash} is wider than the phone screen by ${overflow}px`);
    await screenshot(phone, name);
  }
  assertNoErrors(phone);
  await phone.context().close();
});
