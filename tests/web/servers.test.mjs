// Browser test: login / reload / logout, and the LwM2M servers screen
// (every kind of server, conditional fields, validation errors from the API,
// edit, delete with the list of tasks that go with the server).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lwdm, openBrowser, newPage, assertNoErrors, screenshot, uiLogin, stopAll, ADMIN_PASSWORD } from './helpers.mjs';

let lwdm;
let browser;
let page;

before(async () => {
  lwdm = await new Lwdm().start();
  browser = await openBrowser();
  page = await newPage(browser);
});

after(async () => {
  if (browser) await browser.close();
  await stopAll();
});

const serverRow = (name) => page.locator('table.data tbody tr', { has: page.getByRole('link', { name, exact: true }) });

async function openAddForm() {
  await page.goto(`${lwdm.url}/#/servers`);
  await page.getByRole('link', { name: 'Add', exact: true }).click();
  await page.getByRole('heading', { name: 'Add LwM2M server' }).waitFor();
}

async function save() {
  await page.getByRole('button', { name: 'Save', exact: true }).click();
}

async function savedOk(name) {
  await page.getByRole('heading', { name: 'LwM2M servers', exact: true }).waitFor();
  await serverRow(name).waitFor();
}

async function serverByName(name) {
  const r = await lwdm.api('GET', `/lwm2m-servers?q=${encodeURIComponent(name)}`);
  return r.body.items.find((s) => s.name === name);
}

test('login: wrong password is shown in words, then log in, reload keeps the session', async () => {
  await page.goto(`${lwdm.url}/`);
  await page.getByRole('heading', { name: 'Log in to lwdm' }).waitFor();
  await page.getByLabel('User name', { exact: true }).fill('admin');
  await page.getByLabel('Password', { exact: true }).fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('wrong user name or password').waitFor();
  await screenshot(page, '01-login-error');
  await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  await page.reload();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Log in to lwdm' }).count(), 0, 'still logged in after a reload');
  assertNoErrors(page);
});

test('servers list: first-run entries, search, keyboard navigation to a server', async () => {
  await page.goto(`${lwdm.url}/#/servers`);
  await serverRow('lwdm management (NoSec)').waitFor();
  assert.equal(await page.locator('table.data tbody tr').count(), 4);
  const head = await page.locator('table.data thead th').allTextContents();
  assert.deepEqual(head.slice(0, 6), ['Name', 'Type', 'Transport', 'SSID', 'URI', 'Security mode']);
  await screenshot(page, '02-servers-list');
  await page.getByLabel('Search', { exact: true }).fill('PSK');
  await page.waitForFunction(() => document.querySelectorAll('table.data tbody tr').length === 2);
  await page.getByLabel('Search', { exact: true }).fill('');
  await page.waitForFunction(() => document.querySelectorAll('table.data tbody tr').length === 4);
  // keyboard: Tab from the search box reaches the first server link, Enter opens it
  await page.getByLabel('Search', { exact: true }).focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.textContent);
  assert.equal(focused, 'lwdm management (NoSec)');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'LwM2M server “lwdm management (NoSec)”' }).waitFor();
  assertNoErrors(page);
});

test('server form: validation errors from the API next to their fields', async () => {
  await openAddForm();
  await save();
  const nameErr = page.locator('[data-field="name"] .field-error');
  await nameErr.waitFor();
  assert.equal(await nameErr.textContent(), 'is required');
  assert.equal(await page.locator('[data-field="uri"] .field-error').textContent(), 'is required');
  assert.equal(await page.locator('[data-field="ssid"] .field-error').textContent(), 'is required for management servers');
  assert.match(await page.locator('.form-banner').textContent(), /fields are invalid/);
  // focus moved to the first invalid field
  assert.equal(await page.evaluate(() => document.activeElement.name), 'name');
  await screenshot(page, '03-server-form-errors');

  // PSK mode without a key; a coap:// scheme that contradicts PSK
  await page.getByLabel('Name', { exact: true }).fill('bad psk');
  await page.getByLabel('SSID', { exact: true }).fill('50');
  await page.getByLabel('Security mode', { exact: true }).selectOption('psk');
  await page.getByLabel('URI', { exact: true }).fill('coap://dm.example.com');
  await save();
  await page.locator('[data-field="psk"] .field-error').waitFor();
  assert.match(await page.locator('[data-field="psk"] .field-error').textContent(), /is required for securityMode psk/);
  assert.match(await page.locator('[data-field="uri"] .field-error').textContent(), /contradicts securityMode psk/);
  await screenshot(page, '04-server-form-psk-errors');
  assertNoErrors(page);
});

test('server form: conditional fields appear only where they apply', async () => {
  await openAddForm();
  const visible = (label) => page.getByLabel(label, { exact: true }).isVisible();
  assert.equal(await visible('PSK identity'), false);
  assert.equal(await visible('PSK'), false);
  assert.equal(await visible('Server certificate (DER or PEM file)'), false);
  assert.equal(await visible('Support SMS'), false, 'no SMS with binding U');
  assert.equal(await visible('API URI'), false);
  await page.getByLabel('Security mode', { exact: true }).selectOption('psk');
  assert.equal(await visible('PSK identity'), true);
  assert.equal(await visible('PSK'), true);
  await page.getByLabel('Security mode', { exact: true }).selectOption('cert');
  assert.equal(await visible('PSK identity'), false);
  assert.equal(await visible('Server certificate (DER or PEM file)'), true);
  await page.getByLabel('Security mode', { exact: true }).selectOption('certEst');
  assert.equal(await visible('Server certificate (DER or PEM file)'), true);
  await page.getByLabel('Binding', { exact: true }).selectOption('UQS');
  assert.equal(await visible('Support SMS'), true);
  assert.equal(await visible('SMS number'), false);
  await page.getByLabel('Support SMS', { exact: true }).check();
  assert.equal(await visible('SMS number'), true);
  assert.equal(await visible('SMS security mode'), true);
  await page.getByLabel('Binding', { exact: true }).selectOption('UQ');
  assert.equal(await visible('Support SMS'), false);
  assert.equal(await visible('SMS number'), false);
  await page.getByLabel('Provision credentials to the server', { exact: true }).check();
  assert.equal(await visible('API URI'), true);
  assert.equal(await visible('API user'), true);
  assert.equal(await visible('API password'), true);
  assertNoErrors(page);
});

test('create each kind of LwM2M server', async () => {
  // management, NoSec, UDP
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('dm nosec');
  await page.getByLabel('SSID', { exact: true }).fill('10');
  await page.getByLabel('URI', { exact: true }).fill('dm.example.com');
  await save();
  await savedOk('dm nosec');
  assert.match(await serverRow('dm nosec').textContent(), /coap:\/\/dm\.example\.com:5683/);

  // management, PSK with a per-device key expression
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('dm psk');
  await page.getByLabel('SSID', { exact: true }).fill('11');
  await page.getByLabel('Security mode', { exact: true }).selectOption('psk');
  await page.getByLabel('PSK', { exact: true }).fill('${string.secureRandom(16)}');
  await page.getByLabel('URI', { exact: true }).fill('dm.example.com');
  await save();
  await savedOk('dm psk');
  assert.match(await serverRow('dm psk').textContent(), /coaps:\/\/dm\.example\.com:5684/);
  assert.match(await serverRow('dm psk').textContent(), /Pre-Shared Key/);

  // management, certificate: upload a DER file
  const der = Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
  for (const [name, mode, ssid] of [['dm cert', 'cert', '12'], ['dm cert est', 'certEst', '13']]) {
    await openAddForm();
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('SSID', { exact: true }).fill(ssid);
    await page.getByLabel('Security mode', { exact: true }).selectOption(mode);
    await page.getByLabel('URI', { exact: true }).fill('[2001:db8::1]');
    await page.getByLabel('Server certificate (DER or PEM file)', { exact: true }).setInputFiles({ name: 'server.der', mimeType: 'application/octet-stream', buffer: der });
    await page.getByText('Selected server.der').waitFor();
    await save();
    await savedOk(name);
    const s = await serverByName(name);
    assert.equal(s.securityMode, mode);
    assert.equal(Buffer.from(s.serverCertificate, 'base64').toString('hex'), der.toString('hex'));
    assert.equal(s.uri, 'coaps://[2001:db8::1]:5684');
  }

  // management over TCP with SMS (UQS): a bad number first, then a good one
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('dm tcp sms');
  await page.getByLabel('SSID', { exact: true }).fill('14');
  await page.getByLabel('Transport', { exact: true }).selectOption('tcp');
  await page.getByLabel('URI', { exact: true }).fill('dm.example.com');
  await page.getByLabel('Binding', { exact: true }).selectOption('UQS');
  await page.getByLabel('Support SMS', { exact: true }).check();
  await page.getByLabel('SMS number', { exact: true }).fill('12');
  await page.getByLabel('SMS security mode', { exact: true }).selectOption('securePacket');
  await save();
  const smsErr = page.locator('[data-field="sms.number"] .field-error');
  await smsErr.waitFor();
  assert.equal(await smsErr.textContent(), 'must be a phone number: optional +, then 3 to 20 digits');
  await screenshot(page, '05-server-form-sms-error');
  await page.getByLabel('SMS number', { exact: true }).fill('+48123456789');
  await save();
  await savedOk('dm tcp sms');
  let s = await serverByName('dm tcp sms');
  assert.equal(s.uri, 'coap+tcp://dm.example.com:5683');
  assert.deepEqual(s.sms, { enabled: true, number: '+48123456789', securityMode: 'securePacket' });

  // management with "configure device on target server" + provision credentials
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('dm provisioned');
  await page.getByLabel('SSID', { exact: true }).fill('15');
  await page.getByLabel('URI', { exact: true }).fill('other-dm.example.com');
  await page.getByLabel('Configure device on target server', { exact: true }).check();
  await save();
  await page.locator('[data-field="provisionCredentials"] .field-error').waitFor();
  assert.match(await page.locator('[data-field="provisionCredentials"] .field-error').textContent(), /apiUri, user and password are required/);
  await page.getByLabel('Provision credentials to the server', { exact: true }).check();
  await page.getByLabel('API URI', { exact: true }).fill('https://other-dm.example.com/api');
  await page.getByLabel('API user', { exact: true }).fill('provisioner');
  await page.getByLabel('API password', { exact: true }).fill('s3cret');
  await save();
  await savedOk('dm provisioned');
  s = await serverByName('dm provisioned');
  assert.deepEqual(s.provisionCredentials, { apiUri: 'https://other-dm.example.com/api', user: 'provisioner', passwordSet: true });
  assert.equal(s.configureDeviceOnTargetServer, true);

  // bootstrap, PSK, no SSID
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('bs psk');
  await page.getByLabel('Server type', { exact: true }).selectOption('bootstrap');
  await page.getByLabel('Security mode', { exact: true }).selectOption('psk');
  await page.getByLabel('PSK identity', { exact: true }).fill('bs-identity');
  await page.getByLabel('PSK', { exact: true }).fill('bootstrap-key');
  await page.getByLabel('URI', { exact: true }).fill('bs.example.com');
  await page.getByLabel('Client hold off time (s)', { exact: true }).fill('5');
  await page.getByLabel('Bootstrap-server account timeout (s)', { exact: true }).fill('3600');
  await save();
  await savedOk('bs psk');
  s = await serverByName('bs psk');
  assert.equal(s.type, 'bootstrap');
  assert.equal(s.uri, 'coaps://bs.example.com:5694');
  assert.equal(s.pskIdentity, 'bs-identity');
  assert.equal(s.pskSet, true);
  assert.equal(s.clientHoldOffTime, 5);
  assert.equal(s.bootstrapAccountTimeout, 3600);

  // duplicate SSID: the API's words
  await openAddForm();
  await page.getByLabel('Name', { exact: true }).fill('dm duplicate');
  await page.getByLabel('SSID', { exact: true }).fill('10');
  await page.getByLabel('URI', { exact: true }).fill('dup.example.com');
  await save();
  await page.locator('[data-field="ssid"] .field-error', { hasText: "ssid 10 already used by server 'dm nosec'" }).waitFor();
  await page.getByRole('link', { name: 'Cancel' }).click();
  await page.getByRole('heading', { name: 'LwM2M servers', exact: true }).waitFor();
  await screenshot(page, '06-servers-list-all-kinds');
  assertNoErrors(page);
});

test('edit a server by clicking its row; changing the mode fixes up the URI', async () => {
  await page.goto(`${lwdm.url}/#/servers`);
  await serverRow('dm nosec').locator('td').nth(4).click(); // the URI cell, not the link
  await page.getByRole('heading', { name: 'LwM2M server “dm nosec”' }).waitFor();
  assert.equal(await page.getByLabel('URI', { exact: true }).inputValue(), 'coap://dm.example.com:5683');
  await page.getByLabel('Lifetime (s)', { exact: true }).fill('600');
  await page.getByLabel('Security mode', { exact: true }).selectOption('psk');
  assert.equal(await page.getByLabel('URI', { exact: true }).inputValue(), 'dm.example.com');
  await page.getByLabel('PSK', { exact: true }).fill('${string.secureRandom(8)}');
  await save();
  await savedOk('dm nosec');
  const s = await serverByName('dm nosec');
  assert.equal(s.lifetime, 600);
  assert.equal(s.uri, 'coaps://dm.example.com:5684');
  assert.equal(s.psk, '${string.secureRandom(8)}');
  // and back to NoSec: the PSK fields are dropped, the key kept out of the request
  await serverRow('dm nosec').getByRole('link').click();
  await page.getByLabel('Security mode', { exact: true }).selectOption('nosec');
  await save();
  await savedOk('dm nosec');
  const s2 = await serverByName('dm nosec');
  assert.equal(s2.securityMode, 'nosec');
  assert.equal(s2.pskSet, false);
  assert.equal(s2.uri, 'coap://dm.example.com:5683');
  assertNoErrors(page);
});

test('delete a server: the confirmation lists the tasks that go with it', async () => {
  const s = await serverByName('dm psk');
  const groups = (await lwdm.api('GET', '/groups')).body.items;
  const g = groups.find((x) => x.bootstrap);
  const t = await lwdm.api('POST', `/groups/${g.id}/tasks`, {
    name: 'give dm psk', config: `<config>\n  <lwm2mBootstrapConfiguration serverId="${s.id}"/>\n  <lwm2mBootstrap performBootstrapFinish="true"/>\n</config>\n`,
  });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  await page.goto(`${lwdm.url}/#/servers`);
  await serverRow('dm psk').getByRole('button', { name: 'Delete server dm psk' }).click();
  const dlg = page.getByRole('dialog', { name: 'Delete LwM2M server' });
  await dlg.waitFor();
  await dlg.getByText('give dm psk').waitFor();
  assert.match(await dlg.textContent(), /These will be deleted with it/);
  await screenshot(page, '07-server-delete-confirm');
  // Cancel keeps everything
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await lwdm.api('GET', `/lwm2m-servers/${s.id}`)).status, 200);
  await serverRow('dm psk').getByRole('button', { name: 'Delete server dm psk' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('Deleted server “dm psk” with 1 task and 0 task templates.').waitFor();
  await page.waitForFunction(() => ![...document.querySelectorAll('table.data a')].some((a) => a.textContent === 'dm psk'));
  assert.equal((await lwdm.api('GET', `/lwm2m-servers/${s.id}`)).status, 404);
  assert.equal((await lwdm.api('GET', `/groups/${g.id}/tasks/${t.body.id}`)).status, 404);
  // a server nobody uses says so
  await serverRow('dm cert est').getByRole('button', { name: 'Delete server dm cert est' }).click();
  await page.getByRole('dialog').getByText('No tasks or task templates use this server').waitFor();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.waitForFunction(() => ![...document.querySelectorAll('table.data a')].some((a) => a.textContent === 'dm cert est'));
  assertNoErrors(page);
});

test('phone width: the servers screen and form fit', async () => {
  const phone = await newPage(browser, { width: 390, height: 844 });
  await uiLogin(phone, lwdm);
  await phone.goto(`${lwdm.url}/#/servers`);
  await phone.locator('table.data tbody tr').first().waitFor();
  await screenshot(phone, '08-servers-list-phone');
  await phone.goto(`${lwdm.url}/#/servers/new`);
  await phone.getByRole('heading', { name: 'Add LwM2M server' }).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the form is wider than the phone screen by ${overflow}px`);
  await screenshot(phone, '09-server-form-phone');
  assertNoErrors(phone);
  await phone.context().close();
});

test('logout revokes the token and shows the login screen', async () => {
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('lwdm.session')).token);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to lwdm' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('lwdm.session')), null);
  const r = await fetch(`${lwdm.url}/api/v1/lwm2m-servers`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 401, 'the token no longer works');
  await page.reload();
  await page.getByRole('heading', { name: 'Log in to lwdm' }).waitFor();
  assertNoErrors(page);
});
