'use strict';
// Two clients chat through the server: typed messages with attributes, in order, never echoed to the sending
// session; history through `logs`; several clients on one socket; no session of the sender; unique
// conversations; chat rooms.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage, Message, ChatRoom } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

/** A and B logged in on separate sockets, and a conversation A created with B in it (B has it cached). */
async function pair(options = {}) {
  const a = await h.login(server, h.uid('alice'), options);
  const b = await h.login(server, h.uid('bob'), options);
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'A & B', topic: 'chat' }), 'create');
  const convB = await h.call(b.getConversation(conv.id), 'getConversation');
  assert.ok(convB, `B could not get conversation ${conv.id}`);
  return { a, b, conv, convB };
}

test('two clients chat: each receives the other\'s typed messages, in order, and never its own', async () => {
  const { a, b, conv, convB } = await pair();
  assert.deepEqual([...conv.members].sort(), [a.id, b.id].sort());

  const fromA = ['a1', 'a2', 'a3', 'a4', 'a5'];
  for (const [i, text] of fromA.entries()) {
    const message = new TextMessage(text);
    message.setAttributes({ seq: i, from: 'A' });
    const sent = await h.call(conv.send(message), `A sends ${text}`);
    assert.ok(sent.id, 'the ack gave the message an id');
    assert.ok(sent.timestamp instanceof Date && !Number.isNaN(sent.timestamp.getTime()), 'the ack gave a timestamp');
  }
  const fromB = ['b1', 'b2', 'b3'];
  for (const [i, text] of fromB.entries()) {
    const message = new TextMessage(text);
    message.setAttributes({ seq: i, nested: { k: 'v' } });
    await h.call(convB.send(message), `B sends ${text}`);
  }
  await h.call(convB.send(new Message('a plain string')), 'B sends a plain Message');

  await h.waitMessages(b, conv.id, fromA.length);
  await h.waitMessages(a, conv.id, fromB.length + 1);
  await h.sleep(h.SETTLE_MS);

  const gotB = b.rec.in(conv.id);
  assert.deepEqual(
    gotB.map(m => ({ type: m.type, text: m.text, attributes: m.attributes, from: m.from })),
    fromA.map((text, i) => ({ type: 'text', text, attributes: { seq: i, from: 'A' }, from: a.id })),
    'B received A\'s five TextMessages with their attributes, in order'
  );
  const gotA = a.rec.in(conv.id);
  assert.deepEqual(
    gotA.map(m => ({ type: m.type, text: m.text, content: m.content, attributes: m.attributes, from: m.from })),
    [
      ...fromB.map((text, i) => ({
        type: 'text', text, content: undefined, attributes: { seq: i, nested: { k: 'v' } }, from: b.id,
      })),
      { type: 'message', text: undefined, content: 'a plain string', attributes: undefined, from: b.id },
    ],
    'A received B\'s TextMessages and the plain Message, in order'
  );
  assert.ok(gotA.every(m => m.from !== a.id), 'A never received its own messages');
  assert.ok(gotB.every(m => m.from !== b.id), 'B never received its own messages');
  assert.equal(a.rec.messages.length, gotA.length, 'A received nothing outside the conversation');
  assert.equal(b.rec.messages.length, gotB.length, 'B received nothing outside the conversation');
  for (const m of [...gotA, ...gotB]) {
    assert.ok(m.id, 'a pushed message has an id');
    assert.ok(m.timestamp instanceof Date && m.timestamp.getTime() > 0, 'a pushed message has a timestamp');
    assert.equal(m.conversationClass, 'Conversation');
  }
  const ids = new Set([...gotA, ...gotB].map(m => m.id));
  assert.equal(ids.size, gotA.length + gotB.length, 'message ids are distinct');
});

test('queryMessages returns the history, oldest first, and pages back with createMessagesIterator', async () => {
  const { a, b, conv, convB } = await pair();
  const sent = [];
  for (let i = 1; i <= 5; i += 1) {
    const [who, c] = i % 2 ? [a, conv] : [b, convB];
    const message = new TextMessage(`m${i}`);
    message.setAttributes({ i });
    // eslint-disable-next-line no-await-in-loop
    const ack = await h.call(c.send(message), `send m${i}`);
    sent.push({ id: ack.id, text: `m${i}`, from: who.id });
  }
  await h.waitMessages(b, conv.id, 3);
  await h.waitMessages(a, conv.id, 2);

  const all = await h.call(conv.queryMessages({ limit: 10 }), 'queryMessages(limit 10)');
  assert.deepEqual(
    all.map(m => ({ id: m.id, text: m.getText(), from: m.from })),
    sent,
    'the whole history, oldest first, with the ids the acks gave'
  );
  assert.ok(all.every(m => m instanceof TextMessage), 'history items are TextMessages');
  assert.deepEqual(all.map(m => m.getAttributes()), [1, 2, 3, 4, 5].map(i => ({ i })), 'attributes kept');
  for (let i = 1; i < all.length; i += 1) {
    assert.ok(all[i - 1].timestamp <= all[i].timestamp, 'timestamps ascend');
  }

  const lastTwo = await h.call(convB.queryMessages({ limit: 2 }), 'queryMessages(limit 2)');
  assert.deepEqual(lastTwo.map(m => m.getText()), ['m4', 'm5'], 'limit 2 gives the two newest, older first');

  const iterator = conv.createMessagesIterator({ limit: 2 });
  const pages = [];
  for (let n = 0; n < 5; n += 1) {
    // eslint-disable-next-line no-await-in-loop
    const { value, done } = await h.call(iterator.next(), 'iterator.next()');
    pages.push(value.map(m => m.getText()));
    if (done) break;
  }
  assert.deepEqual(pages, [['m4', 'm5'], ['m2', 'm3'], ['m1']], 'pages go back in time, each oldest first');

  const since = await h.call(
    conv.queryMessages({ startTime: all[1].timestamp, startMessageId: all[1].id, limit: 10 }),
    'queryMessages before m2'
  );
  assert.deepEqual(since.map(m => m.getText()), ['m1'], 'older than m2 (exclusive)');
});

test('several clients on one Realtime share a socket and each gets its own messages', async () => {
  const realtime = await h.newRealtime(server);
  const a = await h.login(realtime, h.uid('alice'));
  const b = await h.login(realtime, h.uid('bob'));
  const c = await h.login(server, h.uid('carol'));
  const conv = await h.call(a.createConversation({ members: [b.id, c.id], name: 'shared socket' }), 'create');
  await h.call(b.getConversation(conv.id), 'B gets the conversation');
  await h.call(conv.send(new TextMessage('from A')), 'A sends');
  const convC = await h.call(c.getConversation(conv.id), 'C gets the conversation');
  await h.call(convC.send(new TextMessage('from C')), 'C sends');

  await h.waitMessages(b, conv.id, 2);
  await h.waitMessages(a, conv.id, 1);
  await h.waitMessages(c, conv.id, 1);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(b.rec.texts(), ['from A', 'from C'], 'B (same socket as A) gets A\'s and C\'s messages');
  assert.deepEqual(a.rec.texts(), ['from C'], 'A gets only C\'s');
  assert.deepEqual(c.rec.texts(), ['from A'], 'C gets only A\'s');
});

test('no session of the sender receives what it sent, over WebSocket or REST', async () => {
  const aId = h.uid('alice');
  const a1 = await h.login(server, aId);
  const a2 = await h.login(server, aId);
  const b = await h.login(server, h.uid('bob'));
  const conv = await h.call(a1.createConversation({ members: [b.id], name: 'two devices' }), 'create');
  // Cached first: the SDK resolves an unknown conversation per message and may then emit out of order.
  await h.call(b.getConversation(conv.id), 'B gets the conversation');
  await h.call(conv.send(new TextMessage('sent on device 1')), 'A (device 1) sends');
  await server.restOk('POST', '/1.1/rtm/messages', {
    from_peer: aId, conv_id: conv.id, transient: false, message: 'sent by the backend as A',
  });

  await h.waitMessages(b, conv.id, 2);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(b.rec.texts(), ['sent on device 1', 'sent by the backend as A']);
  assert.deepEqual(a1.rec.messages, [], 'the sending session received nothing');
  assert.deepEqual(a2.rec.messages, [], 'nor did the sender\'s other session');
});

test('a unique conversation is found again by its member set; custom attributes come back top-level', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const first = await h.call(
    a.createConversation({ members: [b.id], name: 'uniq', unique: true, color: 'red', level: 3 }),
    'create unique'
  );
  const second = await h.call(b.createConversation({ members: [a.id], name: 'uniq', unique: true }), 'again');
  assert.equal(second.id, first.id, 'the same conversation for the same members');
  const fetched = await h.call(b.getConversation(first.id, true), 'getConversation (no cache)');
  assert.equal(fetched.get('color'), 'red');
  assert.equal(fetched.get('level'), 3);
  assert.equal(fetched.name, 'uniq');
  assert.equal(fetched.creator, a.id);
  assert.deepEqual([...fetched.members].sort(), [a.id, b.id].sort());
});

test('a chat room (transient) delivers to its online members', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const c = await h.login(server, h.uid('carol'));
  const room = await h.call(a.createChatRoom({ name: 'lobby' }), 'createChatRoom');
  assert.ok(room instanceof ChatRoom);
  const roomB = await h.call(b.getConversation(room.id), 'B gets the room');
  assert.ok(roomB instanceof ChatRoom, `B sees a ChatRoom (got ${roomB && roomB.constructor.name})`);
  await h.call(roomB.join(), 'B joins');
  await h.call(room.send(new TextMessage('hello room')), 'A sends to the room');
  await h.waitMessages(b, room.id, 1);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(b.rec.in(room.id).map(m => [m.from, m.text, m.conversationClass]), [[a.id, 'hello room', 'ChatRoom']]);
  assert.deepEqual(a.rec.messages, [], 'the sender got nothing');
  assert.deepEqual(c.rec.messages, [], 'a non-member got nothing');
});
