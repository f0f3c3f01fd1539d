// Browser tests of leancloud-server's web console (/console/): Debian's chromium driven by playwright-core.
// Starts the release server on a fresh database, seeds it over the REST API, and uses the pages as a person
// would: sign in (a wrong key first), create a conversation and add a member, send from the page, watch a
// message sent by the `send-message` Lambda function (run through the Lambda Runtime API) appear live,
// broadcast with the confirmation step, check that stored HTML is shown as text and never run, and read the push
// queue's newest jobs and their outcome on the pushes page.
// Screenshots of each page go to $CONSOLE_SCREENSHOTS (default: a new temp folder), printed at the start.
//
//   node --test console.test.mjs      (scripts/checks/50-console.sh builds what it needs and runs this)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const SERVER_BIN = process.env.CONSOLE_SERVER_BIN || path.join(TARGET, 'release', 'leancloud-server');
const FUNCTION_BIN = process.env.CONSOLE_FUNCTION_BIN || path.join(TARGET, 'debug', 'send-message');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const APP_ID = 'dev-app-id-gzGzoHsz';
const MASTER_KEY = 'dev-master-key';
const BROADCASTS_PER_DAY = 5;
const SHOTS = process.env.CONSOLE_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'console-screenshots-'));
fs.mkdirSync(SHOTS, { recursive: true });
console.log(`console screenshots: ${SHOTS}`);

const XSS_NAME = '<img src=x onerror=alert("name")>';
const XSS_ATTR = '<script>alert("attribute")</script>';
const XSS_SCRIPT = '<script>alert("message")</script>';
const XSS_IMG = '<img src=x onerror=alert("image")>';

let server; let base; let tmp; let browser; let context; let page;
const dialogs = [];
const pageErrors = [];
const ids = {};

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function rest(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'X-LC-Id': APP_ID, 'X-LC-Key': `${MASTER_KEY},master`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}
const createConversation = async (body) => (await rest('POST', '/1.1/classes/_Conversation', body)).objectId;
const sendRest = (conv, from, message) => rest('POST', '/1.1/rtm/messages', { from_peer: from, conv_id: conv, message, transient: false });
const stored = async (conv) => rest('GET', `/__admin/messages?conv_id=${encodeURIComponent(conv)}`);

async function waitHealthy(child, log) {
  for (let i = 0; i < 200; i += 1) {
    if (child.exitCode !== null) throw new Error(`leancloud-server exited: ${fs.readFileSync(log, 'utf8')}`);
    try { if ((await fetch(base + '/__admin/health')).ok) return; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('leancloud-server did not answer');
}

async function shot(name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Runs the send-message binary as Lambda runs it: the function polls the Runtime API for its next event, handles
// it, and posts its answer back. Serves one event; resolves with the answer and the time it arrived.
function invokeThroughRuntimeApi(functionBin, event) {
  return new Promise((resolve, reject) => {
    const requestId = `console-${Date.now()}`;
    const held = [];
    let served = false; let child; let output = '';
    const finish = (err, value) => {
      for (const res of held) res.destroy();
      if (child && child.exitCode === null) child.kill('SIGTERM');
      runtime.close();
      if (err) reject(new Error(`${err.message}\nfunction output:\n${output}`)); else resolve(value);
    };
    const runtime = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        if (req.method === 'GET' && req.url === '/2018-06-01/runtime/invocation/next') {
          if (served) { held.push(res); return; }
          served = true;
          res.writeHead(200, {
            'Content-Type': 'application/json',
            'Lambda-Runtime-Aws-Request-Id': requestId,
            'Lambda-Runtime-Deadline-Ms': String(Date.now() + 30000),
            'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:send-message',
            'Lambda-Runtime-Trace-Id': 'Root=1-6745a8f1-3c5e1d7b2a9f4e6d8c0b1a2f;Sampled=0',
          });
          res.end(event);
        } else if (req.method === 'POST' && req.url === `/2018-06-01/runtime/invocation/${requestId}/response`) {
          res.writeHead(202, { 'Content-Type': 'application/json' }); res.end('{"status":"OK"}');
          finish(null, { answer: JSON.parse(body), at: Date.now() });
        } else if (req.method === 'POST' && req.url.endsWith('/error')) {
          res.writeHead(202); res.end('{}');
          finish(new Error(`the function reported an error: ${body}`));
        } else {
          res.writeHead(404); res.end();
        }
      });
    });
    runtime.listen(0, '127.0.0.1', () => {
      const { port } = runtime.address();
      child = spawn(functionBin, [], {
        env: {
          PATH: process.env.PATH, HOME: process.env.HOME || '/tmp', RUST_LOG: 'info',
          AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, AWS_LAMBDA_FUNCTION_NAME: 'send-message',
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128', AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/send-message', AWS_LAMBDA_LOG_STREAM_NAME: 'console-test',
          LEANCLOUD_APP_ID: APP_ID, LEANCLOUD_APP_KEY: 'dev-app-key', LEANCLOUD_APP_MASTER_KEY: MASTER_KEY,
          LEANCLOUD_API_SERVER: base,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (d) => { output += d; });
      child.stderr.on('data', (d) => { output += d; });
      child.on('exit', (code) => { if (!served || code) finish(new Error(`send-message exited with ${code}`)); });
    });
    setTimeout(() => finish(new Error('no answer from send-message within 30 s')), 30000).unref();
  });
}

before(async () => {
  for (const [what, file] of [['leancloud-server', SERVER_BIN], ['send-message', FUNCTION_BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'console-test-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const log = path.join(tmp, 'server.log');
  const env = { ...process.env };
  for (const k of ['LEANCLOUD_APP_ID', 'LEANCLOUD_APP_KEY', 'LEANCLOUD_APP_MASTER_KEY']) delete env[k];
  server = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${port}`, '--db', path.join(tmp, 'db.sqlite3'),
    '--broadcasts-per-day', String(BROADCASTS_PER_DAY)], { env, stdio: ['ignore', fs.openSync(log, 'w'), fs.openSync(log, 'a')] });
  await waitHealthy(server, log);

  // Seed: rooms enough for two pages, a system and two transient conversations, and one full of HTML.
  ids.system = await createConversation({ name: 'Announcements', sys: true, purpose: 'broadcasts' });
  for (let i = 1; i <= 22; i += 1) {
    const id = await createConversation({ name: `Team room ${i}`, m: ['alice', `member${i}`], c: 'alice' });
    if (i % 4 === 0) await sendRest(id, 'alice', `Morning update #${i}`);
  }
  for (let i = 1; i <= 2; i += 1) await createConversation({ name: `Lobby ${i}`, tr: true });
  ids.xss = await createConversation({ name: XSS_NAME, m: ['mallory', 'alice'], note: XSS_ATTR });
  await sendRest(ids.xss, 'mallory', XSS_SCRIPT);
  await sendRest(ids.xss, 'mallory', XSS_IMG);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(r, 12000).unref(); });
  }
  if (tmp && !process.env.KEEP_LOGS) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a wrong master key is refused with a clear message', async () => {
  await page.goto(base + '/console/');
  await page.locator('#master-key').waitFor();
  await shot('01-sign-in');
  await page.fill('#master-key', 'not-the-key');
  await page.click('#signin-button');
  const error = page.locator('#signin-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.textContent(), /Wrong master key/);
  assert.ok(await page.locator('#app').isHidden(), 'the console stays closed');
  assert.equal((await context.cookies()).length, 0, 'no session cookie');
  await shot('02-sign-in-refused');
});

test('signing in with the master key opens the conversations page, with an HttpOnly session cookie', async () => {
  await page.fill('#master-key', MASTER_KEY);
  await page.click('#signin-button');
  await page.locator('#conversations tbody tr').first().waitFor();
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].name, 'lc_console');
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.notEqual(cookies[0].value, MASTER_KEY);
  assert.ok(!page.url().includes(MASTER_KEY), 'the key is not in the URL');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read the cookie');
  assert.equal(await page.locator('#conversations tbody tr').count(), 20, 'one page of 20');
  assert.match(await page.locator('#page-info').textContent(), /1–20 of 26/);
  await shot('03-conversations');

  // Paging, filter, search.
  await page.click('#next-page');
  await page.waitForFunction(() => /21–26 of 26/.test(document.querySelector('#page-info')?.textContent || ''));
  await page.selectOption('#kind-filter', 'system');
  await page.waitForFunction(() => /of 1$/.test(document.querySelector('#page-info')?.textContent || ''));
  assert.equal(await page.locator('#conversations tbody tr .conv-name').textContent(), 'Announcements');
  await page.selectOption('#kind-filter', '');
  await page.fill('#search', 'member7');
  await page.press('#search', 'Enter');
  await page.waitForFunction(() => /of 1$/.test(document.querySelector('#page-info')?.textContent || ''));
  assert.equal(await page.locator('#conversations tbody tr .conv-name').textContent(), 'Team room 7');
});

test('a conversation is created and a member added through the page', async () => {
  await page.goto(base + '/console/#/conversations');
  await page.click('#new-conversation');
  await page.fill('#new-name', 'Console room');
  await page.fill('#new-members', 'alice, bob');
  await page.fill('#new-attributes', '{"topic": "orders", "priority": 2}');
  await page.click('#create-submit');
  await page.locator('#conv-title').waitFor();
  assert.match(await page.locator('#conv-title').textContent(), /Console room/);
  ids.room = decodeURIComponent(page.url().split('#/conversation/')[1]);
  assert.ok(ids.room, page.url());
  await page.fill('#add-member', 'carol');
  await page.click('#add-member-submit');
  await page.locator('#member-list .member', { hasText: 'carol' }).waitFor();
  const conv = await rest('GET', `/1.1/classes/_Conversation/${ids.room}`);
  assert.deepEqual(conv.m, ['alice', 'bob', 'carol']);
  assert.equal(conv.topic, 'orders');
  assert.match(await page.locator('#attribute-list').textContent(), /topic.*orders/s);
});

test('a message sent from the page is in the list and in the store', async () => {
  await page.fill('#send-from', 'alice');
  await page.fill('#send-text', 'Hello from the console');
  await page.click('#send-submit');
  await page.locator('#messages-body tr', { hasText: 'Hello from the console' }).first().waitFor();
  const messages = await stored(ids.room);
  assert.equal(messages.at(-1).data, 'Hello from the console');
  assert.equal(messages.at(-1).from, 'alice');
  // An error is shown as the server gave it.
  await page.fill('#send-from', '');
  await page.fill('#send-text', 'no sender');
  await page.click('#send-submit');
  const error = page.locator('#send-form .error');
  await error.waitFor();
  assert.match(await error.textContent(), /HTTP 400 · code 1 · Missing required parameter from\./);
});

test('a message sent by the send-message function through the Lambda Runtime API appears live without a reload', async () => {
  await page.locator('#live-status.on').waitFor();
  await page.evaluate(() => { window.__sameDocument = true; });
  const event = fs.readFileSync(path.join(ROOT, 'events', 'send-message.http.json'), 'utf8')
    .replaceAll('NORMAL_CONVERSATION_ID', ids.room);
  const { answer, at } = await invokeThroughRuntimeApi(FUNCTION_BIN, event);
  assert.equal(answer.statusCode, 200, JSON.stringify(answer));
  const text = JSON.parse(JSON.parse(event).body).message;
  await page.locator('#messages-body tr', { hasText: text }).first().waitFor({ timeout: 1000 });
  const seenAfter = Date.now() - at;
  assert.ok(seenAfter <= 1000, `shown ${seenAfter} ms after the function answered`);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
  console.log(`  send-message's message shown ${seenAfter} ms after the function answered`);
  // A fuller page for the screenshot: a reply or two, then a reload for the fresh fields.
  await sendRest(ids.room, 'bob', 'Thanks! Tracking number, please?');
  await sendRest(ids.room, 'carol', 'Sent it by email 👍');
  await page.reload();
  await page.locator('#messages-body tr', { hasText: 'Sent it by email' }).waitFor();
  await page.locator('#live-status.on').waitFor();
  await shot('04-conversation');
});

test('the Live page shows the app-wide stream as messages are stored', async () => {
  await page.goto(base + '/console/#/live');
  await page.locator('#live-status.on').waitFor();
  await sendRest(ids.room, 'bob', 'Live from the REST API');
  await sendRest(ids.system, 'ops', 'System notice for subscribers');
  await page.locator('#live-body tr', { hasText: 'System notice for subscribers' }).waitFor({ timeout: 1000 });
  assert.equal(await page.locator('#live-body tr').count(), 2);
  await shot('05-live');
});

test('a broadcast needs a confirmation, and the remaining daily quota is shown', async () => {
  await page.goto(base + '/console/#/send?conv=' + encodeURIComponent(ids.system));
  await page.waitForFunction((n) => (document.querySelector('#quota')?.textContent || '').includes(`${n} of ${n}`), BROADCASTS_PER_DAY);
  await page.fill('#bc-from', 'ops');
  await page.fill('#bc-text', 'Maintenance tonight at 02:00 UTC');
  await page.click('#bc-review');
  await page.locator('#bc-confirm').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#bc-preview').textContent(), 'Maintenance tonight at 02:00 UTC');
  await shot('06-send-confirm');
  // Cancel sends nothing.
  await page.click('#bc-cancel');
  assert.equal((await stored(ids.system)).filter((m) => m.kind === 'broadcast').length, 0, 'nothing before the confirmation');
  await page.click('#bc-review');
  await page.click('#bc-confirm-button');
  await page.locator('#bc-result .ok').waitFor();
  const broadcasts = (await stored(ids.system)).filter((m) => m.kind === 'broadcast');
  assert.equal(broadcasts.length, 1);
  assert.equal(broadcasts[0].data, 'Maintenance tonight at 02:00 UTC');
  await page.waitForFunction((n) => (document.querySelector('#quota')?.textContent || '').includes(`${n - 1} of ${n}`), BROADCASTS_PER_DAY);
  // A system message to chosen clients, and a server error shown as given.
  await page.fill('#sys-from', 'ops');
  await page.fill('#sys-to', 'alice, bob');
  await page.fill('#sys-text', 'Your invoice is ready');
  await page.click('#sys-submit');
  await page.locator('#sys-result .ok').waitFor();
  const last = (await stored(ids.system)).at(-1);
  assert.deepEqual([last.kind, last.recipients, last.data], ['to_clients', ['alice', 'bob'], 'Your invoice is ready']);
  await page.fill('#msg-conv', 'no-such-conversation');
  await page.fill('#msg-from', 'alice');
  await page.fill('#msg-text', 'hello?');
  await page.click('#msg-submit');
  await page.locator('#msg-result .error').waitFor();
  assert.match(await page.locator('#msg-result .error').textContent(), /HTTP 400 · code 4401 · INVALID_MESSAGING_TARGET|code 4401/);
  await shot('07-send');
});

test('stored HTML in names, attributes and messages is shown as text and never run', async () => {
  await page.goto(base + '/console/#/conversation/' + encodeURIComponent(ids.xss));
  await page.locator('#messages-body tr', { hasText: XSS_SCRIPT }).waitFor();
  await page.locator('#messages-body tr', { hasText: XSS_IMG }).waitFor();
  assert.ok(await page.locator('#messages-body td.message-text', { hasText: XSS_SCRIPT }).isVisible());
  assert.match(await page.locator('#conv-title').textContent(), /<img src=x onerror=alert\("name"\)>/);
  assert.match(await page.locator('#attribute-list').textContent(), /<script>alert\("attribute"\)<\/script>/);
  await page.goto(base + '/console/#/conversations?q=mallory');
  await page.locator('#conversations .conv-name', { hasText: XSS_NAME }).waitFor();
  await page.goto(base + '/console/#/conversation/' + encodeURIComponent(ids.xss));
  await page.locator('#messages-body tr', { hasText: XSS_IMG }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element was made from the payloads');
  assert.equal(await page.locator('main script').count(), 0);
  assert.deepEqual(dialogs, [], 'no dialog fired');
  await shot('08-xss-as-text');
});

// Opens a realtime session for `peer` from another tab: LeanCloud's protocol, one protobuf GenericCommand
// (session/open) encoded by hand. Resolves once the server answered `opened`; the socket stays open.
async function realtimeClient(peer) {
  const tab = await context.newPage();
  await tab.goto(base + '/__admin/health'); // same origin: no local-network-access prompt
  const opened = await tab.evaluate(async ({ url, appId, peer: id }) => {
    const bytes = [];
    const varint = (n) => { while (n > 127) { bytes.push((n & 127) | 128); n >>>= 7; } bytes.push(n); };
    const str = (field, s) => { const b = new TextEncoder().encode(s); varint((field << 3) | 2); varint(b.length); bytes.push(...b); };
    const ua = new TextEncoder().encode('console-test');
    varint(1 << 3); varint(0); // cmd = session
    varint(2 << 3); varint(1); // op = open
    str(3, appId); str(4, id);
    varint(5 << 3); varint(1); // i = 1
    varint((102 << 3) | 2); varint(ua.length + 2); varint((4 << 3) | 2); varint(ua.length); bytes.push(...ua);
    const ws = new WebSocket(url, 'lc.protobuf2.3');
    ws.binaryType = 'arraybuffer';
    window.__ws = ws;
    return new Promise((resolve) => {
      ws.onopen = () => ws.send(new Uint8Array(bytes));
      ws.onmessage = (ev) => resolve(new Uint8Array(ev.data).length > 0);
      ws.onerror = () => resolve(false);
      setTimeout(() => resolve(false), 5000);
    });
  }, { url: base.replace('http', 'ws') + '/', appId: APP_ID, peer });
  assert.ok(opened, `realtime session for ${peer}`);
  return tab;
}

test('the operations page shows the per-minute chart, the buckets and the connected clients', async () => {
  const tom = await realtimeClient('tom');
  await page.goto(base + '/console/#/operations');
  await page.locator('#clients td', { hasText: 'tom' }).waitFor();
  assert.equal(await page.locator('#online-clients').textContent(), '1');
  assert.equal(await page.locator('#session-count').textContent(), '1');
  await page.locator('#chart').waitFor();
  assert.equal(await page.locator('#chart rect.bar').count(), 60, 'one bar per minute of the last hour');
  const lastHour = Number(await page.locator('#messages-hour').textContent());
  assert.ok(lastHour >= 12, `messages in the last hour: ${lastHour}`);
  assert.match(await page.locator('#buckets').textContent(), /Broadcasts \/ day\s*5\s*1\s*4/);
  await shot('09-operations');
  await tom.close();
});

test('class permissions are shown, opened and reset from the permissions page', async () => {
  const appKeyCreate = async () => (await fetch(base + '/1.1/classes/_Conversation', {
    method: 'POST',
    headers: { 'X-LC-Id': APP_ID, 'X-LC-Key': 'dev-app-key', 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'from a client', m: ['ann'] }),
  })).status;
  assert.equal(await appKeyCreate(), 403);
  await page.goto(base + '/console/#/permissions');
  const row = page.locator('#permissions tr[data-class="_Conversation"]');
  await row.waitFor();
  assert.match(await row.textContent(), /_Conversation \(default\)master key only/);
  await row.locator('button', { hasText: 'Edit' }).click();
  assert.equal(await page.inputValue('#perm-class'), '_Conversation');
  assert.equal(await page.inputValue('#perm-create'), 'named');
  await page.selectOption('#perm-create', 'everyone');
  await page.selectOption('#perm-find', 'named');
  await page.fill('#perm-find-roles', 'Staff, Admins');
  await page.click('#perm-save');
  await page.locator('.notice.ok', { hasText: 'Saved the permissions of _Conversation.' }).waitFor();
  await page.locator('#permissions tr[data-class="_Conversation"] td', { hasText: 'roles: Staff, Admins' }).waitFor();
  await shot('10-permissions');
  const stored = await rest('GET', '/__admin/class-permissions/_Conversation');
  assert.deepEqual(stored.permissions.create, { '*': true });
  assert.deepEqual(stored.permissions.find, { users: [], roles: ['Staff', 'Admins'] });
  assert.equal(await appKeyCreate(), 201);
  // A bad class name is refused with the server's message, and nothing changes.
  await page.fill('#perm-class', 'no-dash');
  await page.click('#perm-save');
  await page.locator('.notice.error', { hasText: 'code 103' }).waitFor();
  await page.fill('#perm-class', '_Conversation');
  await page.click('#perm-reset');
  await page.locator('.notice.ok', { hasText: '_Conversation has its default permissions again.' }).waitFor();
  assert.equal(await page.inputValue('#perm-create'), 'named');
  assert.equal(await appKeyCreate(), 403);
});

test('the pushes page shows the newest push jobs, their outcome and counts, filtered by state', async () => {
  // An iPhone (no APNs configured here: its job fails) and a Huawei phone (a vendor this server does not deliver
  // to: its job is unsupported from the start, with no device token), both on the channel `bob`; the alert holds
  // HTML.
  const token = 'ab12cd34'.repeat(8);
  const iphone = await rest('POST', '/1.1/installations', { deviceType: 'ios', deviceToken: token, channels: ['bob'] });
  const huawei = await rest('POST', '/1.1/installations',
    { deviceType: 'android', installationId: 'huawei-bob', vendor: 'huawei', registrationId: 'hms-bob', channels: ['bob'] });
  assert.ok(iphone.objectId && huawei.objectId);
  const sent = await rest('POST', '/1.1/push', { channels: ['bob'], data: { alert: XSS_IMG } });
  // The worker runs every second: wait until it has settled the iPhone's job.
  let jobs = [];
  for (let i = 0; i < 100; i += 1) {
    jobs = await rest('GET', `/__admin/pushes?ref_id=${sent.objectId}`);
    if (jobs.length === 2 && jobs.every((j) => j.state !== 'pending')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(jobs.map((j) => j.state).sort(), ['failed', 'unsupported']);

  await page.goto(base + '/console/#/pushes');
  await page.locator('#pushes tbody tr').nth(1).waitFor();
  assert.equal(await page.locator('#nav a.active').textContent(), 'Pushes');
  // Each row's cells as shown (the id and the payload under it apart, the created and done times as 'time' when
  // there is one), sorted by platform.
  const rows = async () => (await page.locator('#pushes tbody tr').evaluateAll((trs) => trs.map((tr) =>
    [...tr.querySelectorAll('td')].flatMap((td, i) => {
      if (i === 2) return [td.querySelector('a').textContent, td.querySelector('.push-payload').textContent];
      return [(i === 0 || i === 8) && td.textContent !== '—' ? 'time' : td.textContent];
    }))))
    .sort((a, b) => a[4].localeCompare(b[4]));
  const payload = JSON.stringify({ alert: XSS_IMG });
  assert.deepEqual(await rows(), [
    ['time', 'Push API', sent.objectId, payload, 'android/huawei', '—', 'unsupported', '0', '—', 'time'],
    ['time', 'Push API', sent.objectId, payload, 'ios', 'ab12cd34…', 'failed', '1', 'APNs is not configured (--apns-key)', 'time'],
  ]);
  assert.equal(await page.locator('#pushes img').count(), 0, 'the payload is text, not HTML');
  assert.equal(await page.locator('#pushes tr[data-state="failed"] .badge').getAttribute('class'), 'badge state-failed');
  assert.equal(await page.locator('#push-total').textContent(), '2 newest jobs:');
  const counts = {};
  for (const s of ['pending', 'sent', 'failed', 'invalid', 'unsupported', 'expired']) {
    counts[s] = await page.locator(`#push-count-${s}`).textContent();
  }
  assert.deepEqual(counts, { pending: '0', sent: '0', failed: '1', invalid: '0', unsupported: '1', expired: '0' });
  await shot('11-pushes');

  // The filter by state: only the failed job; none sent; all again.
  await page.selectOption('#push-state', 'failed');
  await page.waitForFunction(() => location.hash === '#/pushes?state=failed'
    && document.querySelectorAll('#pushes tbody tr').length === 1);
  assert.deepEqual((await rows()).map((r) => [r[4], r[6], r[1]]), [['ios', 'failed', 'Push API']]);
  assert.equal(await page.locator('#push-count-unsupported').textContent(), '1', 'the counts stay those of all the newest jobs');
  await page.selectOption('#push-state', 'sent');
  await page.locator('.empty', { hasText: 'No sent job among the newest 100.' }).waitFor();
  assert.equal(await page.locator('#pushes tbody tr').count(), 0);
  await page.click('#push-clear');
  await page.waitForFunction(() => location.hash === '#/pushes' && document.querySelectorAll('#pushes tbody tr').length === 2);
  assert.equal(await page.inputValue('#push-state'), '');

  // Refresh shows a newer push first; a notification's id shows only its jobs; a bad state is refused with the
  // server's message.
  const second = await rest('POST', '/1.1/push', { where: { deviceToken: token }, data: { alert: 'second' } });
  await page.click('#push-refresh');
  await page.waitForFunction(() => document.querySelectorAll('#pushes tbody tr').length === 3);
  assert.equal(await page.locator('#pushes tbody tr').first().locator('a').textContent(), second.objectId);
  await page.locator('#pushes a', { hasText: sent.objectId }).first().click();
  await page.locator('#push-ref', { hasText: sent.objectId }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#pushes tbody tr').length === 2);
  assert.deepEqual((await rows()).map((r) => [r[2], r[4], r[6]]),
    [[sent.objectId, 'android/huawei', 'unsupported'], [sent.objectId, 'ios', 'failed']]);
  const bad = await page.evaluate(async () => {
    const r = await fetch('/console/api/pushes?state=lost');
    return [r.status, (await r.json()).error];
  });
  assert.deepEqual(bad, [400, 'state: one of pending, sent, failed, invalid, unsupported, expired expected.']);
});

test('signing out ends the session', async () => {
  await page.click('#signout');
  await page.locator('#signin-form').waitFor({ state: 'visible' });
  const res = await page.evaluate(async () => (await fetch('/console/api/conversations')).status);
  assert.equal(res, 401);
  // The refused sign-in, the signed-out check and the error cases above answered 400/401 on purpose.
  const expected = /^Failed to load resource: the server responded with a status of 40[01]/;
  assert.deepEqual(pageErrors.filter((e) => !expected.test(e)), [], 'no script errors or CSP violations');
  assert.deepEqual(dialogs, []);
});
