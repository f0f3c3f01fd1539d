'use strict';
// Issue 22 with the official SDK, 4.x and 5.0.0-rc.8 alike: delivery and read receipts arriving at the sender
// (`receipt: true` → message DELIVERED, lastDeliveredAt, lastReadAt; `fetchReceiptTimestamps`), an edit and a
// recall seen by the other member (MESSAGE_UPDATE, MESSAGE_RECALL) and in history (`queryMessages`, the REST
// history), only the sender may patch, anonymous login and `client.ping`.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helper');

const SDKS = [
  ['4.x', require('leancloud-realtime')],
  ['5.0.0-rc.8', require('leancloud-realtime-5')],
];

let server;
before(async () => {
  // RT_BACKEND=postgres: the server on a new database of the LEANCLOUD_TEST_POSTGRES cluster instead of SQLite.
  const db = process.env.RT_BACKEND === 'postgres' ? h.freePostgres() : undefined;
  if (process.env.RT_BACKEND === 'postgres') assert.ok(db, 'RT_BACKEND=postgres needs LEANCLOUD_TEST_POSTGRES');
  server = await h.startServer({ db });
});
after(() => h.cleanup());

// SDK 5 allows one Realtime per app id and process: its clients share that one's socket (the server takes several
// client ids per socket). With 4.x each client gets its own.
const shared = new Map();
// Each client's Realtime (its connection).
const owner = new WeakMap();

/** Log `id` (a new one when omitted: anonymous) in with `sdk`. */
async function login(sdk, id) {
  let realtime = shared.get(sdk);
  if (!realtime) {
    realtime = await h.newRealtime(server, { sdk });
    if (sdk === SDKS[1][1]) shared.set(sdk, realtime);
  }
  const client = await h.login(realtime, id);
  owner.set(client, realtime);
  return client;
}

/** A and B logged in with `sdk`, and a one-on-one conversation A created (B has it). */
async function pair(sdk) {
  const a = await login(sdk, h.uid('alice'));
  const b = await login(sdk, h.uid('bob'));
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'receipts' }), 'create');
  const convB = await h.call(b.getConversation(conv.id), 'getConversation');
  assert.ok(convB, `B could not get conversation ${conv.id}`);
  return { a, b, conv, convB };
}

/** Messages (and patches) `client` receives, by event. */
function listen(client) {
  const seen = { message: [], update: [], recall: [] };
  client.on('message', m => seen.message.push(m));
  client.on('messageupdate', m => seen.update.push(m));
  client.on('messagerecall', m => seen.recall.push(m));
  return seen;
}

for (const [version, sdk] of SDKS) {
  const { TextMessage, RecalledMessage, MessageStatus } = sdk;

  test(`[${version}] a message sent with receipt: true is marked delivered, then read, at the sender`, async () => {
    const { a, b, conv, convB } = await pair(sdk);
    const inbox = listen(b);
    const events = [];
    conv.on('lastdeliveredatupdate', () => events.push('delivered'));
    conv.on('lastreadatupdate', () => events.push('read'));

    const sent = await h.call(conv.send(new TextMessage('please confirm'), { receipt: true }), 'send');
    await h.waitFor(() => inbox.message.length === 1, { what: 'B receives the message' });
    // B's SDK acks on its own; the receipt makes A's message DELIVERED.
    await h.waitFor(() => sent.status === MessageStatus.DELIVERED, {
      what: 'the message to become DELIVERED at A',
      describe: () => String(sent.status),
    });
    assert.ok(sent.deliveredAt instanceof Date, 'deliveredAt set from the rcp');
    assert.ok(sent.deliveredAt.getTime() >= sent.timestamp.getTime(), 'delivered after it was sent');
    assert.ok(conv.lastDeliveredAt instanceof Date, 'lastDeliveredAt set');
    assert.ok(conv.lastReadAt == null, 'not read yet');

    await h.call(convB.read(), 'B reads');
    await h.waitFor(() => conv.lastReadAt instanceof Date, { what: 'lastReadAt at A' });
    assert.ok(conv.lastReadAt.getTime() >= sent.timestamp.getTime());
    assert.deepEqual(events.slice(0, 2), ['delivered', 'read']);

    // The server's positions (`conv/max_read`): B's, as the SDK's group-receipt call reads them.
    const tuples = await h.call(conv._fetchAllReceiptTimestamps(), '_fetchAllReceiptTimestamps');
    assert.deepEqual(
      tuples.map(t => [t.pid, t.lastDeliveredAt instanceof Date, t.lastReadAt instanceof Date]),
      [[b.id, true, true]]
    );
    assert.ok(tuples[0].lastReadAt.getTime() >= sent.timestamp.getTime());
    assert.ok(tuples[0].lastReadAt.getTime() <= Date.now());
    await h.call(conv.fetchReceiptTimestamps(), 'fetchReceiptTimestamps');
    assert.equal(conv.lastReadAt.getTime(), tuples[0].lastReadAt.getTime());
    // B's view: A never acked nor read anything of B's.
    await h.call(convB.fetchReceiptTimestamps(), 'fetchReceiptTimestamps (B)');
    assert.ok(convB.lastReadAt == null && convB.lastDeliveredAt == null);
    assert.deepEqual(await h.call(convB._fetchAllReceiptTimestamps(), 'B: all'), []);
  });

  test(`[${version}] an edit and a recall reach the other member and history shows them`, async () => {
    const { a, b, conv, convB } = await pair(sdk);
    const inbox = listen(b);
    const own = listen(a);
    const first = await h.call(conv.send(new TextMessage('original')), 'send 1');
    const second = await h.call(conv.send(new TextMessage('regret')), 'send 2');
    await h.waitFor(() => inbox.message.length === 2, { what: 'B receives both' });

    const edited = await h.call(conv.update(first, new TextMessage('edited')), 'update');
    const recalled = await h.call(conv.recall(second), 'recall');
    assert.ok(recalled instanceof RecalledMessage);
    assert.equal(edited.id, first.id);

    await h.waitFor(() => inbox.update.length === 1 && inbox.recall.length === 1, {
      what: 'B sees MESSAGE_UPDATE and MESSAGE_RECALL',
      describe: () => JSON.stringify({ update: inbox.update.length, recall: inbox.recall.length }),
    });
    const [update] = inbox.update;
    assert.ok(update instanceof TextMessage, 'the edit is a TextMessage');
    assert.deepEqual(
      { id: update.id, text: update.getText(), from: update.from, cid: update.cid },
      { id: first.id, text: 'edited', from: a.id, cid: conv.id }
    );
    assert.ok(update.updatedAt instanceof Date, 'updatedAt from patchTimestamp');
    const [recall] = inbox.recall;
    assert.ok(recall instanceof RecalledMessage, 'the recall is a RecalledMessage');
    assert.deepEqual({ id: recall.id, from: recall.from }, { id: second.id, from: a.id });
    await h.sleep(h.SETTLE_MS);
    assert.deepEqual([own.update.length, own.recall.length], [0, 0], 'the sender is not told of its own patches');

    // History: the SDK's `logs` and the REST history have the new versions.
    const history = await h.call(convB.queryMessages({ limit: 10 }), 'queryMessages');
    assert.deepEqual(
      history.map(m => [m.id, m instanceof RecalledMessage ? 'recalled' : m.getText()]),
      [
        [first.id, 'edited'],
        [second.id, 'recalled'],
      ]
    );
    assert.ok(history.every(m => m.updatedAt instanceof Date), 'patched messages carry updatedAt');
    const rest = await server.rest('GET', `/1.1/rtm/messages/history?convid=${conv.id}`);
    assert.equal(rest.status, 200);
    const byId = Object.fromEntries(rest.body.map(r => [r['msg-id'], JSON.parse(r.data)]));
    assert.equal(byId[first.id]._lctext, 'edited');
    assert.deepEqual(byId[second.id], { _lctype: -127 });

    // Only the sender may patch: B (bypassing the SDK's own check with a bare {id, timestamp}) is refused.
    await assert.rejects(
      convB.recall({ id: first.id, timestamp: first.timestamp }),
      error => error.code === 4403,
      'MESSAGE_OWNERSHIP_REQUIRED'
    );
  });

  test(`[${version}] an anonymous login gets an id from the server, and ping tells who is online`, async () => {
    const anon = await login(sdk);
    assert.equal(typeof anon.id, 'string');
    assert.ok(anon.id.length > 0, 'the server chose an id');
    const other = await login(sdk);
    assert.notEqual(anon.id, other.id);
    const watcher = await login(sdk, h.uid('watcher'));
    const gone = await login(sdk, h.uid('gone'));
    await h.logout(gone);

    const online = await h.call(watcher.ping([anon.id, gone.id, 'nobody-here', other.id]), 'ping');
    assert.deepEqual(online, [anon.id, other.id]);

    // The chosen id works like any other: a conversation with it, and messages both ways.
    const inbox = listen(anon);
    const conv = await h.call(watcher.createConversation({ members: [anon.id] }), 'create');
    await h.call(conv.send(new TextMessage('hello anonymous')), 'send');
    await h.waitFor(() => inbox.message.length === 1, { what: 'the anonymous client receives' });
    assert.equal(inbox.message[0].getText(), 'hello anonymous');
  });
}

// 4.x only: SDK 5 has one Realtime per process, so the sender could not stay online while the recipient's
// connection is paused.
test('[4.x] a recall and an edit made while the other member was offline reach it when it reconnects', async () => {
  const sdk = SDKS[0][1];
  const { TextMessage, RecalledMessage } = sdk;
  const { b, conv } = await pair(sdk);
  const inbox = listen(b);
  const kept = await h.call(conv.send(new TextMessage('keep, but edit')), 'send 1');
  const gone = await h.call(conv.send(new TextMessage('recall me')), 'send 2');
  await h.waitFor(() => inbox.message.length === 2, { what: 'B receives both' });

  // B's network goes away (the SDK's pause: its socket is closed), A patches, B's network comes back.
  const bRealtime = owner.get(b);
  bRealtime.pause();
  await h.sleep(300);
  await h.call(conv.update(kept, new TextMessage('edited while away')), 'update');
  await h.call(conv.recall(gone), 'recall');
  await h.sleep(300);
  assert.deepEqual([inbox.update.length, inbox.recall.length], [0, 0], 'nothing reaches B while offline');
  bRealtime.resume();

  // The reconnect sends lastPatchTime; the server answers with both patches.
  await h.waitFor(() => inbox.update.length === 1 && inbox.recall.length === 1, {
    what: 'B sees the missed MESSAGE_UPDATE and MESSAGE_RECALL after reconnecting',
    describe: () => JSON.stringify({ update: inbox.update.length, recall: inbox.recall.length }),
  });
  assert.deepEqual([inbox.update[0].id, inbox.update[0].getText()], [kept.id, 'edited while away']);
  assert.ok(inbox.recall[0] instanceof RecalledMessage);
  assert.equal(inbox.recall[0].id, gone.id);
});
