// The pages of mailed links in a real browser (Debian's chromium, playwright-core): the release leancloud-server
// runs with --smtp-url pointing at a stand-in SMTP server here (it speaks the protocol the server's mailer
// speaks and keeps every mail). A user asks for a password reset and an e-mail verification over the REST API as
// the SDKs do, the link is read out of the mail, and opened and used in the browser as a person would.
//
//   node --test mail-links.test.mjs      (scripts/checks/50-console.sh builds what it needs and runs this)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const SERVER_BIN = process.env.CONSOLE_SERVER_BIN || path.join(TARGET, 'release', 'leancloud-server');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const APP_ID = 'dev-app-id-gzGzoHsz';
const APP_KEY = 'dev-app-key';
const SHOTS = process.env.CONSOLE_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'mail-screenshots-'));
fs.mkdirSync(SHOTS, { recursive: true });

let server; let base; let tmp; let browser; let page; let sink;
const mails = [];
const pageErrors = [];

// The stand-in SMTP server: EHLO, MAIL, RCPT, DATA, QUIT; each message kept with its recipients.
function startSink() {
  return new Promise((resolve) => {
    const srv = net.createServer((socket) => {
      let buffer = ''; let inData = false; let data = []; let to = [];
      socket.write('220 sink ESMTP\r\n');
      socket.on('data', (chunk) => {
        buffer += chunk.toString('utf8');
        let nl;
        while ((nl = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 2);
          if (inData) {
            if (line === '.') {
              inData = false;
              mails.push({ to, text: unquote(data.join('\n')) });
              data = []; to = [];
              socket.write('250 OK queued\r\n');
            } else {
              data.push(line.startsWith('.') ? line.slice(1) : line);
            }
            continue;
          }
          const upper = line.toUpperCase();
          if (upper.startsWith('EHLO') || upper.startsWith('HELO')) socket.write('250 sink\r\n');
          else if (upper.startsWith('MAIL FROM:')) socket.write('250 OK\r\n');
          else if (upper.startsWith('RCPT TO:')) { to.push(line.slice(8).trim().split(/\s/)[0].replace(/[<>]/g, '')); socket.write('250 OK\r\n'); }
          else if (upper === 'DATA') { inData = true; socket.write('354 go on\r\n'); }
          else if (upper === 'QUIT') { socket.end('221 bye\r\n'); }
          else socket.write('250 OK\r\n');
        }
      });
      socket.on('error', () => {});
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

// Quoted-printable undone (soft breaks and =XX).
function unquote(text) {
  return Buffer.from(text.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function api(method, p, body, session) {
  const headers = { 'X-LC-Id': APP_ID, 'X-LC-Key': APP_KEY, 'Content-Type': 'application/json' };
  if (session) headers['X-LC-Session'] = session;
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function nextMail(count) {
  for (let i = 0; i < 100 && mails.length < count; i += 1) await new Promise((r) => setTimeout(r, 50));
  assert.equal(mails.length, count, 'mails received');
  return mails[count - 1];
}

function linkIn(mail, pagePath) {
  const match = mail.text.match(new RegExp(`(http://127\\.0\\.0\\.1:\\d+/auth/${pagePath}#token=[0-9a-f]{64})`));
  assert.ok(match, `a link to ${pagePath} in:\n${mail.text}`);
  return match[1];
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  for (const [what, file] of [['leancloud-server', SERVER_BIN], ['chromium', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} not found at ${file}`);
  }
  sink = await startSink();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mail-links-test-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const log = path.join(tmp, 'server.log');
  const env = { ...process.env };
  for (const k of ['LEANCLOUD_APP_ID', 'LEANCLOUD_APP_KEY', 'LEANCLOUD_APP_MASTER_KEY', 'LEANCLOUD_SMTP_URL']) delete env[k];
  server = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${port}`, '--db', path.join(tmp, 'db.sqlite3'),
    '--smtp-url', `smtp://127.0.0.1:${sink.address().port}`, '--mail-from', 'Chat App <noreply@chat.example>'],
  { env, stdio: ['ignore', fs.openSync(log, 'w'), fs.openSync(log, 'a')] });
  for (let i = 0; ; i += 1) {
    if (server.exitCode !== null || i > 200) throw new Error(`leancloud-server did not start: ${fs.readFileSync(log, 'utf8')}`);
    try { if ((await fetch(base + '/__admin/health')).ok) break; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  page = await (await browser.newContext({ viewport: { width: 900, height: 700 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Errors of the page itself (an answered 400, such as a used link, is not one).
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(r, 12000).unref(); });
  }
  if (sink) sink.close();
  if (tmp && !process.env.KEEP_LOGS) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a password reset link opens a form that sets the new password, once', async () => {
  const signUp = await api('POST', '/1.1/users', { username: 'dana', password: 'old-secret', email: 'dana@example.com' });
  assert.equal(signUp.status, 201, JSON.stringify(signUp.body));
  assert.deepEqual(await api('POST', '/1.1/requestPasswordReset', { email: 'dana@example.com' }), { status: 200, body: {} });
  const mail = await nextMail(1);
  assert.deepEqual(mail.to, ['dana@example.com']);
  assert.match(mail.text, /^From: "Chat App" <noreply@chat\.example>$/m);
  const link = linkIn(mail, 'reset-password');

  await page.goto(link);
  await page.locator('#reset').waitFor({ state: 'visible' });
  assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  await shot('mail-01-reset-form');
  await page.fill('#password', 'new-secret');
  await page.fill('#repeat', 'new-secreT');
  await page.click('#reset button');
  await page.locator('#status.error', { hasText: 'The two passwords differ.' }).waitFor();
  await page.fill('#repeat', 'new-secret');
  await page.click('#reset button');
  await page.locator('#status.ok', { hasText: 'Your password is reset' }).waitFor();
  assert.ok(await page.locator('#reset').isHidden(), 'the form is gone');
  await shot('mail-02-reset-done');

  assert.equal((await api('POST', '/1.1/login', { username: 'dana', password: 'old-secret' })).body.code, 210);
  const login = await api('POST', '/1.1/login', { username: 'dana', password: 'new-secret' });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.emailVerified, true);

  // The same link a second time: the page says so.
  await page.goto(link);
  await page.fill('#password', 'third-secret');
  await page.fill('#repeat', 'third-secret');
  await page.click('#reset button');
  await page.locator('#status.error', { hasText: 'already used or has expired' }).waitFor();
  await shot('mail-03-reset-link-used');
  assert.equal((await api('POST', '/1.1/login', { username: 'dana', password: 'third-secret' })).body.code, 210);
});

test('a verification link verifies the address as soon as it is opened', async () => {
  const signUp = await api('POST', '/1.1/users', { username: 'eli', password: 'secret', email: 'eli@example.com' });
  assert.equal(signUp.status, 201, JSON.stringify(signUp.body));
  assert.equal(signUp.body.emailVerified, false);
  assert.deepEqual(await api('POST', '/1.1/requestEmailVerify', { email: 'eli@example.com' }), { status: 200, body: {} });
  const link = linkIn(await nextMail(2), 'verify-email');
  await page.goto(link);
  await page.locator('#status.ok', { hasText: 'Your e-mail address is verified' }).waitFor();
  await shot('mail-04-verified');
  const me = await api('GET', '/1.1/users/me', undefined, signUp.body.sessionToken);
  assert.equal(me.body.emailVerified, true);
});

test('a link without its token says it is incomplete, and the pages raise no errors', async () => {
  await page.goto(base + '/auth/reset-password');
  await page.locator('#status.error', { hasText: 'This link is incomplete' }).waitFor();
  assert.ok(await page.locator('#reset').isHidden());
  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations');
});
