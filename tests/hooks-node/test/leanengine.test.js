'use strict';
// The official `leanengine` Node SDK as the hook endpoint: engine.js (AV.Cloud.onIMMessageReceived,
// AV.Cloud.onIMConversationStart, served by express) runs as its own process on loopback, its storage SDK
// pointed at the server; the release server calls it with --hooks-url and LEANCLOUD_APP_HOOK_KEY; two
// official JS SDK clients chat through the server.

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');

const { TextMessage } = require('leancloud-realtime');
const h = require('../lib/harness');

const HOOK_KEY = 'test-hook-key-leanengine';
// What engine.js answers.
const SPAM_CODE = 4242;
const FORBIDDEN_CODE = 4343;

/** The texts the REST history holds for `convId`, oldest first. */
async function historyTexts(server, convId) {
  const q = new URLSearchParams({ convid: convId, limit: '100' });
  const { status, body } = await h.rest(server, 'GET', `/1.1/rtm/messages/history?${q}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body
    .map((m) => {
      try {
        return JSON.parse(m.data)._lctext;
      } catch {
        return m.data;
      }
    })
    .reverse();
}

/** Two SDK clients (separate connections) and a conversation `name` alice starts with bob. */
async function chat(server, name) {
  const alice = await h.login(await h.realtimeFor(server), 'alice');
  const bob = await h.login(await h.realtimeFor(server), 'bob');
  const conv = await h.within(alice.createConversation({ members: ['bob'], name }), `conversation ${name}`);
  return { alice, bob, conv };
}

/** The last lines of the processes' output, for failure messages. */
function logs(...procs) {
  const tail = (text) => text.trimEnd().split('\n').slice(-15).join('\n');
  return procs
    .filter(Boolean)
    .map((p) => `\n--- ${p.name} output (last lines)\n${tail(p.output)}`)
    .join('');
}

describe('a real leanengine app as the hook endpoint', () => {
  let engine;
  let server;
  let alice;
  let bob;
  let conv;

  before(async () => {
    // The server's port is chosen first so that the engine's storage SDK can point at it.
    const serverPort = await h.freePort();
    engine = await h.startEngine({ hookKey: HOOK_KEY, serverUrl: `http://127.0.0.1:${serverPort}` });
    server = await h.startServer({ port: serverPort, hooksUrl: engine.url, hookKey: HOOK_KEY });
    ({ alice, bob, conv } = await chat(server, 'moderated'));
  });

  after(async () => {
    await h.closeClients(alice, bob);
    if (server) await server.stop();
    if (engine) await engine.stop();
    await h.stopAll();
  });

  it('a message with a bad word arrives rewritten at the other client (onIMMessageReceived content)', async () => {
    const sent = await h.within(conv.send(new TextMessage('well darn it')), 'send to be acked');
    assert.ok(sent.id, 'the send was acked with a message id');
    const got = await h.received(bob, (m) => m.cid === conv.id && m.message.id === sent.id, 'the message');
    assert.equal(got.text, 'well d**n it', logs(engine, server));
    assert.equal(got.from, 'alice');
    assert.deepEqual(await historyTexts(server, conv.id), ['well d**n it'], logs(engine, server));
  });

  it('a spam message is rejected at the sender with 4402 and the app code, and never arrives', async () => {
    const seen = bob.inbox.length;
    const rejection = await h.within(conv.send(new TextMessage('cheap spam here')), 'send to settle').then(
      (msg) => assert.fail(`send resolved (message ${msg.id}) instead of rejecting${logs(engine, server)}`),
      (err) => err
    );
    assert.equal(rejection.code, 4402, `rejection: ${rejection.stack}${logs(engine, server)}`);
    assert.equal(rejection.appCode, SPAM_CODE);

    // A later message from the same sender arrives; the spam did not arrive before it.
    const marker = await h.within(conv.send(new TextMessage('a clean message after it')), 'send to be acked');
    await h.received(bob, (m) => m.message.id === marker.id, 'the clean message after it');
    const since = bob.inbox.slice(seen).map((m) => m.text);
    assert.deepEqual(since, ['a clean message after it']);
    assert.ok(!(await historyTexts(server, conv.id)).some((t) => /spam here/.test(t)), 'spam was stored');
  });

  it('a conversation named "forbidden" is refused (onIMConversationStart reject)', async () => {
    const rejection = await h
      .within(alice.createConversation({ members: ['bob'], name: 'forbidden' }), 'createConversation to settle')
      .then(
        (c) => assert.fail(`createConversation resolved (conversation ${c.id}) instead of rejecting${logs(engine, server)}`),
        (err) => err
      );
    assert.equal(rejection.code, 4305, `rejection: ${rejection.stack}${logs(engine, server)}`);
    assert.equal(rejection.appCode, FORBIDDEN_CODE);
    assert.deepEqual(await h.conversations(server, { name: 'forbidden' }), []);
  });

  it('leanengine checks the hook key: with a wrong key it answers 401 and the message arrives unmodified (fail-open)', async () => {
    // leanengine itself refuses a wrong X-LC-Hook-Key, even from a caller with the app key.
    const res = await fetch(`${engine.url}/1.1/functions/_messageReceived`, {
      method: 'POST',
      headers: {
        'X-LC-Id': h.APP_ID,
        'X-LC-Key': h.APP_KEY,
        'X-LC-Hook-Key': 'not-the-hook-key',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ content: 'darn' }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /Hook key check failed/);

    // A second server, configured with the wrong key: every hook call fails, the server fails open. The
    // call above logged one refusal; the server's must log another.
    const refusals = () => (engine.output.match(/_messageReceived: 401: [^\n]*Hook key check failed/g) || []).length;
    const wrong = await h.startServer({ hooksUrl: engine.url, hookKey: 'not-the-hook-key' });
    let clients = {};
    try {
      clients = await chat(wrong, 'wrong-key');
      const sent = await h.within(clients.conv.send(new TextMessage('darn, no moderation')), 'send to be acked');
      const got = await h.received(clients.bob, (m) => m.message.id === sent.id, 'the message');
      assert.equal(got.text, 'darn, no moderation');
      await h
        .waitUntil(() => refusals() >= 2, 'leanengine to log the refused _messageReceived call ("Hook key check failed")')
        .catch((err) => {
          err.message += logs(engine, wrong);
          throw err;
        });
    } finally {
      await h.closeClients(clients.alice, clients.bob);
      await wrong.stop();
    }
  });
});
