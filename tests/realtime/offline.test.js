'use strict';
// What a client missed while offline. Protocol v3 (the default): an `unread` notification on login
// (UNREAD_MESSAGES_COUNT_UPDATE with the count since its last read(), not counting its own or transient messages),
// then the messages through queryMessages. Protocol v1 (pushOfflineMessages: true): the missed messages are pushed.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

/**
 * B reads the conversation, waits until the `read` and the `ack`s surely left the socket (the SDK sends each at
 * most once a second), and logs out.
 */
async function readAndLeave(client, conversation) {
  await h.call(conversation.read(), 'read()');
  await h.sleep(1200);
  await h.logout(client);
}

test('offline (v3): miss two messages, log in again: unread count 2, and queryMessages shows the two', async () => {
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const b = await h.login(server, bId);
  const c = await h.login(server, h.uid('carol'));
  const conv = await h.call(a.createConversation({ members: [bId, c.id], name: 'offline' }), 'create');
  const other = await h.call(c.createConversation({ members: [bId], name: 'second' }), 'create second');

  await h.call(conv.send(new TextMessage('while online')), 'A sends while B is online');
  await h.waitMessages(b, conv.id, 1);
  const convB = await h.call(b.getConversation(conv.id), 'B gets the conversation');
  assert.equal(convB.unreadMessagesCount, 1, 'the SDK counted the live message');
  await readAndLeave(b, convB);

  // While B is offline: its own message (from another device, over REST) does not count, nor a transient one.
  await server.restOk('POST', '/1.1/rtm/messages', {
    from_peer: bId, conv_id: conv.id, transient: false, message: JSON.stringify({ _lctype: -1, _lctext: 'B elsewhere' }),
  });
  await h.call(conv.send(new TextMessage('missed 1')), 'A sends missed 1');
  await h.call(conv.send(new TextMessage('not kept'), { transient: true }), 'A sends a transient message');
  const last = new TextMessage('missed 2');
  last.setAttributes({ n: 2 });
  await h.call(conv.send(last), 'A sends missed 2');
  await h.call(other.send(new TextMessage('from C')), 'C sends in the second conversation');

  const b2 = await h.login(server, bId);
  await h.waitFor(
    () => b2.rec.unreadUpdates.some(u => u.cid === conv.id) && b2.rec.unreadUpdates.some(u => u.cid === other.id),
    { what: 'UNREAD_MESSAGES_COUNT_UPDATE for both conversations', describe: () => JSON.stringify(b2.rec.unreadUpdates) }
  );
  const update = b2.rec.unreadUpdates.find(u => u.cid === conv.id);
  assert.equal(update.count, 2, 'two unread: not B\'s own, not the transient one, not the one read before');
  assert.deepEqual(update.lastMessage, { type: 'text', text: 'missed 2', attributes: { n: 2 } }, 'the last message');
  assert.equal(b2.rec.unreadUpdates.find(u => u.cid === other.id).count, 1, 'one unread in the second conversation');

  const convB2 = await h.call(b2.getConversation(conv.id), 'B gets the conversation again');
  assert.equal(convB2.unreadMessagesCount, 2);
  const newest = await h.call(convB2.queryMessages({ limit: 2 }), 'queryMessages(limit 2)');
  assert.deepEqual(
    newest.map(m => [m.from, m.getText()]),
    [[a.id, 'missed 1'], [a.id, 'missed 2']],
    'the two missed messages are the newest two, oldest first'
  );
  const all = await h.call(convB2.queryMessages({ limit: 10 }), 'queryMessages(limit 10)');
  assert.deepEqual(all.map(m => m.getText()), ['while online', 'B elsewhere', 'missed 1', 'missed 2'],
    'the history has no transient message');

  // Reading clears the count for the next login.
  await readAndLeave(b2, convB2);
  const b3 = await h.login(server, bId);
  await h.waitFor(() => b3.rec.unreadUpdates.some(u => u.cid === other.id), { what: 'the second conversation\'s update' });
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(b3.rec.unreadUpdates.filter(u => u.cid === conv.id && u.count > 0), [],
    'no unread count for the conversation B read');
});

test('offline (v1, pushOfflineMessages): the missed messages are pushed on login', async () => {
  const v1 = { realtimeOptions: { pushOfflineMessages: true } };
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const b = await h.login(server, bId, v1);
  const conv = await h.call(a.createConversation({ members: [bId], name: 'offline v1' }), 'create');
  await h.call(conv.send(new TextMessage('live')), 'A sends while B is online');
  await h.waitMessages(b, conv.id, 1);
  const convB = await h.call(b.getConversation(conv.id), 'B gets the conversation');
  await readAndLeave(b, convB);

  await h.call(conv.send(new TextMessage('offline 1')), 'A sends offline 1');
  await h.call(conv.send(new TextMessage('offline 2')), 'A sends offline 2');

  const b2 = await h.login(server, bId, v1);
  await h.waitMessages(b2, conv.id, 2, 'B (v1) to get the two offline messages pushed');
  await h.call(conv.send(new TextMessage('live again')), 'A sends after B is back');
  await h.waitMessages(b2, conv.id, 3);
  await h.sleep(h.SETTLE_MS);
  // By timestamp: pushed on login, before the conversation is cached, the SDK may emit them out of order.
  assert.deepEqual(
    [...b2.rec.in(conv.id)].sort((x, y) => x.timestamp - y.timestamp).map(m => [m.from, m.text]),
    [[a.id, 'offline 1'], [a.id, 'offline 2'], [a.id, 'live again']],
    'the missed messages in order, then live ones; nothing delivered twice'
  );
});

test('offline: a member who never logged in gets everything sent before its first login', async () => {
  const a = await h.login(server, h.uid('alice'));
  const newcomer = h.uid('nina');
  const conv = await h.call(a.createConversation({ members: [newcomer], name: 'before first login' }), 'create');
  for (const text of ['one', 'two', 'three']) {
    // eslint-disable-next-line no-await-in-loop
    await h.call(conv.send(new TextMessage(text)), `A sends ${text}`);
  }
  const n = await h.login(server, newcomer);
  await h.waitFor(() => n.rec.unreadUpdates.some(u => u.cid === conv.id), {
    what: 'an unread update for the newcomer', describe: () => JSON.stringify(n.rec.unreadUpdates),
  });
  assert.equal(n.rec.unreadUpdates.find(u => u.cid === conv.id).count, 3);
});
