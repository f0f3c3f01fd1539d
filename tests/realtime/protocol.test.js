'use strict';
// The wire: binary (lc.protobuf2.*) and base64 (lc.proto2base64.*) modes both deliver; the four subprotocols are
// echoed and others refused with HTTP 400; GET /v1/route answers the public WebSocket URL; `echo` heartbeats;
// idle connections are closed; bad frames never take the server down.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

for (const [modeA, modeB] of [[false, false], [true, true], [false, true]]) {
  const name = mode => (mode ? 'base64' : 'binary');
  test(`${name(modeA)} client and ${name(modeB)} client chat (noBinary ${modeA}/${modeB})`, async () => {
    const a = await h.login(server, h.uid('alice'), { realtimeOptions: { noBinary: modeA } });
    const b = await h.login(server, h.uid('bob'), { realtimeOptions: { noBinary: modeB } });
    const conv = await h.call(a.createConversation({ members: [b.id], name: 'modes', mode: name(modeA) }), 'create');
    // Cached first: the SDK resolves an unknown conversation per message and may then emit out of order.
    const convB = await h.call(b.getConversation(conv.id), 'B gets the conversation');
    const texts = ['ascii', 'ünïcödé ✓ 📦', 'x'.repeat(3000)];
    for (const text of texts) {
      const message = new TextMessage(text);
      message.setAttributes({ len: text.length });
      // eslint-disable-next-line no-await-in-loop
      await h.call(conv.send(message), 'A sends');
    }
    await h.waitMessages(b, conv.id, texts.length);
    assert.equal(convB.get('mode'), name(modeA));
    await h.call(convB.send(new TextMessage('reply')), 'B replies');
    await h.waitMessages(a, conv.id, 1);
    await h.sleep(h.SETTLE_MS);
    assert.deepEqual(b.rec.in(conv.id).map(m => [m.text, m.attributes]), texts.map(t => [t, { len: t.length }]));
    assert.deepEqual(a.rec.texts(conv.id), ['reply']);
    const history = await h.call(convB.queryMessages({ limit: 10 }), 'queryMessages');
    assert.deepEqual(history.map(m => m.getText()), [...texts, 'reply']);
  });
}

/** Open a raw WebSocket offering `protocol`; resolves {ws, protocol} once open, or {status} if refused. */
function rawOpen(protocol, path = '/') {
  return h.withTimeout(
    new Promise(resolve => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, protocol);
      ws.on('open', () => resolve({ ws, protocol: ws.protocol }));
      ws.on('unexpected-response', (req, res) => {
        resolve({ status: res.statusCode });
        req.destroy();
      });
      ws.on('error', error => resolve({ error: error.message }));
    }),
    h.CALL_MS,
    `WebSocket open (${protocol})`
  );
}

test('the four subprotocols are echoed (at any path); an unknown one is refused with HTTP 400', async () => {
  for (const [protocol, path] of [
    ['lc.protobuf2.3', '/'],
    ['lc.proto2base64.3', '/'],
    ['lc.protobuf2.1', '/some/path?x=1'],
    ['lc.proto2base64.1', '/v1/ws'],
  ]) {
    // eslint-disable-next-line no-await-in-loop
    const opened = await rawOpenOk(protocol, path);
    assert.equal(opened.protocol, protocol, `${protocol} at ${path}: the subprotocol is echoed`);
    opened.ws.terminate();
  }
  for (const protocol of ['lc.json.3', 'lc.protobuf2.2', 'chat']) {
    // eslint-disable-next-line no-await-in-loop
    const refused = await rawOpen(protocol);
    if (refused.ws) refused.ws.terminate();
    assert.equal(refused.status, 400, `${protocol} must be refused with 400: ${JSON.stringify({ ...refused, ws: undefined })}`);
  }
});

test('GET /v1/route answers the configured public WebSocket URL', async () => {
  const res = await fetch(`${server.httpUrl}/v1/route?appId=${encodeURIComponent(h.APP_ID)}&secure=true`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.server, server.wsUrl);
  assert.ok(typeof body.ttl === 'number' && body.ttl > 0, `ttl: ${JSON.stringify(body)}`);
});

/** rawOpen that must succeed: resolves {ws, protocol}. */
async function rawOpenOk(protocol, path) {
  const opened = await rawOpen(protocol, path);
  assert.ok(opened.ws, `a WebSocket offering ${protocol} must open: ${JSON.stringify(opened)}`);
  return opened;
}

/** Collect every frame a raw socket receives. */
function collect(ws) {
  const frames = [];
  ws.on('message', (data, isBinary) => frames.push({ data: Buffer.from(data), isBinary }));
  return frames;
}

// {cmd: echo (14), i: n} = 08 0e 28 <n>  (protocol.md §3.7)
const echoFrame = i => Buffer.from([0x08, 0x0e, 0x28, i]);

test('echo is answered with the same serial, in binary and in base64 mode', async () => {
  const bin = await rawOpenOk('lc.protobuf2.3');
  const b64 = await rawOpenOk('lc.proto2base64.3');
  const binFrames = collect(bin.ws);
  const b64Frames = collect(b64.ws);
  bin.ws.send(echoFrame(4));
  b64.ws.send(echoFrame(5).toString('base64'));
  await h.waitFor(() => binFrames.length >= 1 && b64Frames.length >= 1, { what: 'both echo replies' });
  assert.equal(binFrames[0].isBinary, true);
  assert.equal(binFrames[0].data.toString('hex'), '080e2804');
  assert.equal(b64Frames[0].isBinary, false, 'base64 mode answers in a text frame');
  assert.equal(Buffer.from(b64Frames[0].data.toString('utf8'), 'base64').toString('hex'), '080e2805');
  bin.ws.terminate();
  b64.ws.terminate();
});

test('garbage frames get an error or a close, never a crash', async () => {
  const sock = await rawOpenOk('lc.protobuf2.3');
  const closed = new Promise(resolve => sock.ws.on('close', code => resolve(code)));
  sock.ws.on('error', () => {});
  sock.ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
  sock.ws.send('not protobuf at all');
  await Promise.race([closed, h.sleep(1500)]);
  sock.ws.terminate();
  const b64 = await rawOpenOk('lc.proto2base64.3');
  b64.ws.on('error', () => {});
  b64.ws.send('%%% not base64 %%%');
  await h.sleep(500);
  b64.ws.terminate();

  const health = await fetch(`${server.httpUrl}/__admin/health`);
  assert.equal(health.status, 200, 'the server still answers');
  const a = await h.login(server, h.uid('alice'));
  assert.ok(a.id, 'and still logs clients in');
});

// `session/open` as a binary frame: cmd session (0), op open (1), appId, peerId, i 127.
const openFrame = peer => {
  const app = Buffer.from(h.APP_ID);
  const id = Buffer.from(peer);
  return Buffer.concat([
    Buffer.from([0x08, 0x00, 0x10, 0x01, 0x1a, app.length]), app,
    Buffer.from([0x22, id.length]), id,
    Buffer.from([0x28, 0x7f]),
  ]);
};

test('an idle connection is closed after --realtime-idle-timeout-secs; echo keeps one with a session open', async () => {
  const idle = await h.startServer({ idleTimeoutSecs: 2 });
  const open = protocol =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(idle.wsUrl, protocol);
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });
  const quiet = await open('lc.protobuf2.3');
  const busy = await open('lc.protobuf2.3');
  const closedAt = {};
  const started = Date.now();
  quiet.on('close', () => { closedAt.quiet = Date.now() - started; });
  busy.on('close', () => { closedAt.busy = Date.now() - started; });
  quiet.on('error', () => {});
  busy.on('error', () => {});
  const busyFrames = collect(busy);
  // Only a connection with a session counts its frames as activity (review part 3, R4).
  busy.send(openFrame('busy-echoer'));
  let i = 0;
  const timer = setInterval(() => {
    i += 1;
    if (busy.readyState === WebSocket.OPEN) busy.send(echoFrame(i));
  }, 500);
  try {
    await h.waitFor(() => closedAt.quiet !== undefined, { timeout: 8000, what: 'the idle socket to be closed' });
    assert.ok(closedAt.quiet >= 1500, `closed after ${closedAt.quiet} ms, not before the 2 s timeout`);
    await h.sleep(Math.max(0, 4000 - (Date.now() - started)));
    assert.equal(closedAt.busy, undefined, 'the socket sending echo every 0.5 s stays open');
    assert.ok(busyFrames.length >= 5, `opened, and echoes answered: ${busyFrames.length}`);
  } finally {
    clearInterval(timer);
    quiet.terminate();
    busy.terminate();
    await idle.stop();
  }
});
