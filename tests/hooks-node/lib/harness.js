'use strict';
// Shared pieces of the hook tests: free ports, the release server and the leanengine app as child
// processes (always stopped), a recording hook endpoint, REST calls with the master key, and SDK clients
// that keep what they receive. Every wait is bounded (at most 5 s).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { Realtime, Event } = require('leancloud-realtime');

const APP_ID = 'dev-app-id-gzGzoHsz';
const APP_KEY = 'dev-app-key';
const MASTER_KEY = 'dev-master-key';
const WAIT_MS = 5000;

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SERVER_BIN =
  process.env.LEANCLOUD_SERVER_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'release', 'leancloud-server');
const ENGINE_JS = path.join(__dirname, '..', 'engine.js');

/** A loopback port nobody listens on (bound, read, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns something truthy; rejects after `ms`. */
async function waitUntil(fn, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(25);
  }
}

/**
 * Starts `cmd args` with `env`, resolving once a stdout line matches `ready` (with the match), rejecting if
 * it exits first or takes longer than 5 s. The child's output is kept for diagnostics and assertions.
 */
function startProcess(name, cmd, args, env, ready) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = {
    name,
    child,
    output: '',
    exited: false,
    stop() {
      return stopProcess(proc);
    },
  };
  const started = new Promise((resolve, reject) => {
    let lineBuf = '';
    child.stdout.on('data', (chunk) => {
      const text = chunk.toString();
      proc.output += text;
      lineBuf += text;
      let nl;
      while ((nl = lineBuf.indexOf('\n')) >= 0) {
        const line = lineBuf.slice(0, nl);
        lineBuf = lineBuf.slice(nl + 1);
        const m = line.match(ready);
        if (m) resolve(m);
      }
    });
    child.stderr.on('data', (chunk) => {
      proc.output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      proc.exited = true;
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready:\n${proc.output}`));
    });
  });
  running.add(proc);
  return within(started, `${name} to start`).then(
    (match) => ({ proc, match }),
    async (err) => {
      await stopProcess(proc);
      err.message += `\n--- ${name} output\n${proc.output}`;
      throw err;
    }
  );
}

const running = new Set();

/** SIGTERM, then SIGKILL if it has not exited within 5 s. */
async function stopProcess(proc) {
  running.delete(proc);
  if (proc.exited || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  try {
    await within(exited, `${proc.name} to stop`);
  } catch {
    proc.child.kill('SIGKILL');
  }
}

/** Stops every child still running (the tests call it in `after`; the process exit handler is the net). */
async function stopAll() {
  await Promise.all([...running].map(stopProcess));
}
process.on('exit', () => {
  for (const proc of running) {
    try {
      proc.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The environment of a child: ours without any LEANCLOUD_* the caller may have set, plus `extra`. */
function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LEANCLOUD_') && !k.startsWith('LC_')) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined) env[k] = String(v);
  }
  return env;
}

/**
 * The release server on `port` (or a free one) with a fresh database, calling the hooks at `hooksUrl` with
 * `hookKey` (`LEANCLOUD_APP_HOOK_KEY`; unset when undefined).
 */
async function startServer({ port, hooksUrl, hookKey, args = [] } = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`${SERVER_BIN} is missing: cargo build --release -p leancloud-server`);
  }
  port = port || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hooks-node-'));
  const argv = ['--listen', `127.0.0.1:${port}`, '--db', path.join(dir, 'db.sqlite3'), ...args];
  if (hooksUrl) argv.push('--hooks-url', hooksUrl);
  const env = childEnv({
    LEANCLOUD_APP_ID: APP_ID,
    LEANCLOUD_APP_KEY: APP_KEY,
    LEANCLOUD_APP_MASTER_KEY: MASTER_KEY,
    LEANCLOUD_APP_HOOK_KEY: hookKey,
    RUST_LOG: process.env.RUST_LOG || 'info',
  });
  const { proc } = await startProcess('leancloud-server', SERVER_BIN, argv, env, /listening on (\S+)/);
  const stop = proc.stop;
  proc.stop = async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return Object.assign(proc, { port, url: `http://127.0.0.1:${port}` });
}

/** `engine.js` (a real leanengine app) on a free port, its storage SDK pointed at `serverUrl`. */
async function startEngine({ hookKey, serverUrl }) {
  const env = childEnv({
    LEANCLOUD_APP_ID: APP_ID,
    LEANCLOUD_APP_KEY: APP_KEY,
    LEANCLOUD_APP_MASTER_KEY: MASTER_KEY,
    LEANCLOUD_APP_HOOK_KEY: hookKey,
    LEANCLOUD_API_SERVER: serverUrl,
    LEANCLOUD_APP_PORT: 0,
    NODE_ENV: 'production',
  });
  const { proc, match } = await startProcess(
    'leanengine app',
    process.execPath,
    [ENGINE_JS],
    env,
    /engine listening on (\d+)/
  );
  const port = Number(match[1]);
  return Object.assign(proc, { port, url: `http://127.0.0.1:${port}` });
}

/**
 * A hook endpoint in this process: `answers[hook](params, req)` gives the `result` (or `{status, body}` via
 * `raw`); every call is recorded as `{hook, params, headers}`. `defined` is what `_ops/metadatas` lists.
 */
async function startHookEndpoint(answers) {
  const calls = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const reply = (status, json) => {
        res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(json));
      };
      if (req.method === 'GET' && req.url === '/1.1/functions/_ops/metadatas') {
        return reply(200, { result: Object.keys(answers) });
      }
      const m = req.url.match(/^\/1\.1\/functions\/([A-Za-z_]+)$/);
      if (req.method !== 'POST' || !m || !answers[m[1]]) {
        return reply(404, { code: 1, error: `no such hook ${req.method} ${req.url}` });
      }
      let params;
      try {
        params = JSON.parse(body || '{}');
      } catch {
        return reply(400, { code: 1, error: 'body is not JSON' });
      }
      calls.push({ hook: m[1], params, headers: req.headers });
      return reply(200, { result: answers[m[1]](params, req) || {} });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A REST call to the server with the master key; resolves `{status, body}`. */
async function rest(server, method, urlPath, body) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: {
      'X-LC-Id': APP_ID,
      'X-LC-Key': `${MASTER_KEY},master`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/** `_Conversation` objects matching `where`, through REST. */
async function conversations(server, where = {}) {
  const q = new URLSearchParams({ where: JSON.stringify(where) });
  const { status, body } = await rest(server, 'GET', `/1.1/classes/_Conversation?${q}`);
  if (status !== 200) throw new Error(`GET _Conversation: ${status} ${JSON.stringify(body)}`);
  return body.results;
}

/**
 * An SDK `Realtime` pointed at the server's WebSocket only: `server` names a closed loopback port, so even
 * the SDK's REST calls (made only after a reconnect) never leave this machine.
 */
async function realtimeFor(server) {
  const unused = await freePort();
  return new Realtime({
    appId: APP_ID,
    appKey: APP_KEY,
    RTMServers: `ws://127.0.0.1:${server.port}/`,
    server: `127.0.0.1:${unused}`,
  });
}

/** Logs `id` in; the client keeps every message it receives in `client.inbox`. */
async function login(realtime, id) {
  const client = await within(realtime.createIMClient(id), `${id} to log in`);
  client.inbox = [];
  client.on(Event.MESSAGE, (message, conversation) => {
    client.inbox.push({ text: message.text, from: message.from, cid: conversation.id, message });
  });
  return client;
}

/** The first message in `client.inbox` satisfying `pred` (waits at most 5 s). */
function received(client, pred, what) {
  return waitUntil(() => client.inbox.find(pred), `${client.id} to receive ${what}`);
}

/** Closes the SDK clients, ignoring failures and never waiting more than 5 s. */
async function closeClients(...clients) {
  await within(
    Promise.allSettled(clients.filter(Boolean).map((c) => c.close())),
    'SDK clients to close'
  ).catch(() => {});
}

module.exports = {
  APP_ID,
  APP_KEY,
  MASTER_KEY,
  SERVER_BIN,
  freePort,
  within,
  waitUntil,
  sleep,
  startServer,
  startEngine,
  startHookEndpoint,
  stopAll,
  rest,
  conversations,
  realtimeFor,
  login,
  received,
  closeClients,
};
