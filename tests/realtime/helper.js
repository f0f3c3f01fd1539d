'use strict';
// Shared by the realtime suite: start and stop leancloud-server (release binary, random free port, temp database),
// log the official `leancloud-realtime` SDK in over loopback only, record every event each client sees, poll with
// bounded waits, and call the server's REST API with the master key.
//
// Environment (all optional):
//   RT_SERVER_BIN        the server binary (default: $CARGO_TARGET_DIR or <repo>/target, then release/leancloud-server)
//   RT_KEEP_LOGS=1       keep each server's temp dir (database + log) and print where it is
//   RT_FUNCTIONS_API     base URL of an already running server the Lambda functions talk to (functions.test.js)
//   RT_LAMBDA_URL        base URL of `cargo lambda watch` serving the four functions (functions.test.js)
//   LEANCLOUD_APP_ID / LEANCLOUD_APP_KEY / LEANCLOUD_APP_MASTER_KEY   credentials (default: the dev ones)

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const { Realtime, Event, TextMessage } = require('leancloud-realtime');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const APP_ID = process.env.LEANCLOUD_APP_ID || 'dev-app-id-gzGzoHsz';
const APP_KEY = process.env.LEANCLOUD_APP_KEY || 'dev-app-key';
const MASTER_KEY = process.env.LEANCLOUD_APP_MASTER_KEY || 'dev-master-key';

// How long to wait for something that should happen (a message, an event): generous but bounded.
const WAIT_MS = 5000;
// How long to keep listening after everything expected arrived, to see that nothing else does.
const SETTLE_MS = 700;
// An SDK call (login, send, query): the SDK's own command timeout is 20 s; fail sooner and say what hung.
const CALL_MS = 10000;

function serverBin() {
  if (process.env.RT_SERVER_BIN) return process.env.RT_SERVER_BIN;
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, 'target');
  return path.join(target, 'release', 'leancloud-server');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** A TCP port on 127.0.0.1 that was free a moment ago. */
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

/** Reject with a message naming `what` if `promise` has not settled after `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/**
 * Poll `predicate` until it returns a truthy value (returned) or `timeout` ms have passed (throws, with `what`
 * and, if given, `describe()` of the state seen last).
 */
async function waitFor(predicate, { timeout = WAIT_MS, interval = 25, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const seen = describe ? `; seen: ${describe()}` : '';
      const err = lastError ? `; last error: ${lastError.message || lastError}` : '';
      throw new assert.AssertionError({ message: `timed out after ${timeout} ms waiting for ${what}${seen}${err}` });
    }
    await sleep(interval);
  }
}

let idCounter = 0;
/** A client or conversation name unique to this run and this call. */
function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${process.pid.toString(36)}${idCounter}${crypto.randomBytes(3).toString('hex')}`;
}

function hmacSha1Hex(key, text) {
  return crypto.createHmac('sha1', key).update(text).digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

class Server {
  constructor({ port, child, dir, logFile }) {
    this.port = port;
    this.child = child;
    this.dir = dir;
    this.logFile = logFile;
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/`;
  }

  /** The last lines of the server's log (for failure messages). */
  logTail(lines = 40) {
    if (!this.logFile) return '(external server: no log)';
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (error) {
      return `(no log: ${error.message})`;
    }
  }

  /** REST call: `method path [body]`, master key unless `{master: false}`. Resolves {status, body}. */
  async rest(method, urlPath, body, { master = true, headers = {} } = {}) {
    const res = await withTimeout(
      fetch(this.httpUrl + urlPath, {
        method,
        headers: {
          'X-LC-Id': APP_ID,
          'X-LC-Key': master ? `${MASTER_KEY},master` : APP_KEY,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
      CALL_MS,
      `${method} ${urlPath}`
    );
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  /** REST call that must answer 2xx; resolves the parsed body. */
  async restOk(method, urlPath, body, options) {
    const { status, body: answer } = await this.rest(method, urlPath, body, options);
    assert.ok(status >= 200 && status < 300, `${method} ${urlPath} answered ${status}: ${JSON.stringify(answer)}`);
    return answer;
  }

  async stop() {
    const { child } = this;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 12000);
      await exited;
      clearTimeout(timer);
    }
    if (process.env.RT_KEEP_LOGS) {
      process.stderr.write(`realtime: server log and database kept in ${this.dir}\n`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

const servers = new Set();

/**
 * Start the release server on a free loopback port with a fresh database; resolves a Server once
 * `GET /__admin/health` answers. Options: requireSignatures, idleTimeoutSecs, args (extra flags), db (a
 * PostgreSQL URL, see freshPostgres, instead of a SQLite file of its own).
 */
async function startServer({ requireSignatures = false, idleTimeoutSecs, args = [], db } = {}) {
  const bin = serverBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`server binary ${bin} not found: build it with \`cargo build --release -p leancloud-server\``);
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-suite-'));
  const logFile = path.join(dir, 'server.log');
  const log = fs.openSync(logFile, 'a');
  const argv = [
    '--listen', `127.0.0.1:${port}`,
    '--db', path.join(dir, 'leancloud.sqlite3'),
    '--realtime-public-url', `ws://127.0.0.1:${port}/`,
    ...(requireSignatures ? ['--realtime-require-signatures'] : []),
    ...(idleTimeoutSecs === undefined ? [] : ['--realtime-idle-timeout-secs', String(idleTimeoutSecs)]),
    ...args,
  ];
  const child = spawn(bin, argv, {
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      LEANCLOUD_APP_ID: APP_ID,
      LEANCLOUD_APP_KEY: APP_KEY,
      LEANCLOUD_APP_MASTER_KEY: MASTER_KEY,
      RUST_LOG: process.env.RUST_LOG || 'info',
      ...(db ? { LEANCLOUD_DATABASE_URL: db } : {}),
    },
  });
  fs.closeSync(log);
  const server = new Server({ port, child, dir, logFile });
  servers.add(server);
  let exitInfo = null;
  child.once('exit', (code, signal) => {
    exitInfo = { code, signal };
  });
  const what = `${bin} ${argv.join(' ')}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exitInfo) {
      const tail = server.logTail();
      await server.stop();
      servers.delete(server);
      throw new Error(`server exited (${JSON.stringify(exitInfo)}) before answering: ${what}\nits log:\n${tail}`);
    }
    try {
      const res = await fetch(`${server.httpUrl}/__admin/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = server.logTail();
      await server.stop();
      servers.delete(server);
      throw new Error(`server did not answer /__admin/health within 20 s: ${what}\nits log:\n${tail}`);
    }
    await sleep(100);
  }
}

/**
 * A new, empty database on the PostgreSQL cluster at LEANCLOUD_TEST_POSTGRES (scripts/test.sh starts one);
 * its URL, or null when no cluster is configured.
 */
function freePostgres() {
  const admin = process.env.LEANCLOUD_TEST_POSTGRES;
  if (!admin) return null;
  const name = `rt_${crypto.randomBytes(6).toString('hex')}`;
  require('node:child_process').execFileSync('psql', ['-q', admin, '-c', `CREATE DATABASE ${name}`]);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A server started by someone else (the check script's Lambda setup): same REST helpers, no stop. */
function externalServer(httpUrl) {
  const { port } = new URL(httpUrl);
  return new Server({ port: Number(port), child: null, dir: null, logFile: process.env.RT_FUNCTIONS_SERVER_LOG });
}

// ---------------------------------------------------------------------------------------------------------------
// SDK clients

/** What a test compares: the kind of message and its payload, without ids and timestamps. */
function describeMessage(message) {
  if (message instanceof TextMessage) {
    const attributes = message.getAttributes();
    return { type: 'text', text: message.getText(), ...(attributes ? { attributes } : {}) };
  }
  return { type: 'message', content: message.content };
}

/**
 * Every event one IMClient emitted, in order. `messages` entries: {to, cid, conversationClass, from, id,
 * timestamp, transient, ...describeMessage()}.
 */
class Recorder {
  constructor(client) {
    this.client = client;
    this.messages = [];
    this.membersJoined = [];
    this.membersLeft = [];
    this.invited = [];
    this.kicked = [];
    this.unreadUpdates = [];
    this.closes = [];
    this.other = [];
    client.on(Event.MESSAGE, (message, conversation) => {
      this.messages.push({
        to: client.id,
        cid: conversation.id,
        conversationClass: conversation.constructor.name,
        from: message.from,
        id: message.id,
        timestamp: message.timestamp,
        transient: message.transient,
        ...describeMessage(message),
      });
    });
    client.on(Event.MEMBERS_JOINED, (payload, conversation) => {
      this.membersJoined.push({ cid: conversation.id, members: payload.members, invitedBy: payload.invitedBy });
    });
    client.on(Event.MEMBERS_LEFT, (payload, conversation) => {
      this.membersLeft.push({ cid: conversation.id, members: payload.members, kickedBy: payload.kickedBy });
    });
    client.on(Event.INVITED, (payload, conversation) => {
      this.invited.push({ cid: conversation.id, invitedBy: payload.invitedBy });
    });
    client.on(Event.KICKED, (payload, conversation) => {
      this.kicked.push({ cid: conversation.id, kickedBy: payload.kickedBy });
    });
    client.on(Event.UNREAD_MESSAGES_COUNT_UPDATE, conversations => {
      for (const conversation of conversations) {
        this.unreadUpdates.push({
          cid: conversation.id,
          count: conversation.unreadMessagesCount,
          lastMessage: conversation.lastMessage ? describeMessage(conversation.lastMessage) : null,
        });
      }
    });
    client.on(Event.CLOSE, payload => this.closes.push(payload));
    client.on(Event.CONFLICT, payload => this.closes.push({ conflict: true, ...payload }));
    client.on(Event.UNHANDLED_MESSAGE, payload => this.other.push(payload));
  }

  /** Messages received in conversation `cid` (all when omitted). */
  in(cid) {
    return cid === undefined ? this.messages : this.messages.filter(m => m.cid === cid);
  }

  texts(cid) {
    return this.in(cid).map(m => (m.type === 'text' ? m.text : m.content));
  }
}

const realtimes = new Set();
const clients = new Set();

/**
 * A Realtime pointed at `server` only (RTMServers = its WebSocket URL; `server` = a loopback port nothing listens
 * on, for the REST calls the SDK would make after a reconnect). Every IMClient it creates gets a `rec` Recorder
 * attached before it logs in, so no event is missed.
 */
async function newRealtime(server, { noBinary = false, pushOfflineMessages = false, sdk, ...rest } = {}) {
  // `sdk`: another build of the SDK (the module), e.g. `require('leancloud-realtime-5')`; 4.x by default.
  const RealtimeClass = sdk ? sdk.Realtime : Realtime;
  const realtime = new RealtimeClass({
    appId: APP_ID,
    appKey: APP_KEY,
    RTMServers: server.wsUrl,
    server: `127.0.0.1:${await unusedPort()}`,
    noBinary,
    pushOfflineMessages,
    plugins: [
      {
        name: 'rt-suite-recorder',
        onIMClientCreate: client => {
          // eslint-disable-next-line no-param-reassign
          client.rec = new Recorder(client);
        },
      },
    ],
    ...rest,
  });
  realtimes.add(realtime);
  return realtime;
}

let deadPort;
/** A loopback port that refuses connections (bound once, then closed). */
async function unusedPort() {
  if (!deadPort) deadPort = await freePort();
  return deadPort;
}

/** Log `id` in on `realtime` (or on a new Realtime for `server`); resolves the IMClient (with `.rec`). */
async function login(serverOrRealtime, id, { realtimeOptions = {}, ...clientOptions } = {}) {
  const realtime =
    typeof serverOrRealtime.createIMClient === 'function'
      ? serverOrRealtime
      : await newRealtime(serverOrRealtime, realtimeOptions);
  const client = await withTimeout(realtime.createIMClient(id, clientOptions), CALL_MS, `createIMClient(${id})`);
  clients.add(client);
  return client;
}

/** `client.close()`, bounded. */
async function logout(client) {
  clients.delete(client);
  await withTimeout(client.close(), CALL_MS, `close(${client.id})`);
}

/** Run an SDK call with the suite's bound: `call(conversation.send(msg), 'send')`. */
function call(promise, what) {
  return withTimeout(promise, CALL_MS, what);
}

/** Close every client and socket the suite opened and stop every server it started. */
async function cleanup() {
  await Promise.allSettled([...clients].map(client => withTimeout(client.close(), 5000, 'close')));
  clients.clear();
  for (const realtime of realtimes) {
    try {
      realtime._close();
    } catch {
      // already closed
    }
  }
  realtimes.clear();
  await Promise.allSettled([...servers].map(server => server.stop()));
  servers.clear();
}

/** Wait until `client` has received `count` messages in `cid` (all conversations when cid is null). */
function waitMessages(client, cid, count, what) {
  return waitFor(() => client.rec.in(cid ?? undefined).length >= count, {
    what: what || `${client.id} to receive ${count} message(s)${cid ? ` in ${cid}` : ''}`,
    describe: () => JSON.stringify(client.rec.in(cid ?? undefined).map(m => m.text ?? m.content)),
  });
}

/** Compare two lists as multisets (order ignored) of JSON values. */
function assertSameMultiset(actual, expected, message) {
  const key = value => JSON.stringify(value, Object.keys(flatKeys(value)).sort());
  const sorted = list => list.map(key).sort();
  assert.deepEqual(sorted(actual), sorted(expected), message);
}

function flatKeys(value, out = {}) {
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out[k] = true;
      flatKeys(v, out);
    }
  }
  return out;
}

module.exports = {
  APP_ID,
  APP_KEY,
  MASTER_KEY,
  WAIT_MS,
  SETTLE_MS,
  CALL_MS,
  REPO_ROOT,
  Recorder,
  assertSameMultiset,
  call,
  cleanup,
  describeMessage,
  externalServer,
  freePort,
  hmacSha1Hex,
  login,
  logout,
  newRealtime,
  serverBin,
  sleep,
  startServer,
  freePostgres,
  uid,
  waitFor,
  waitMessages,
  withTimeout,
};
