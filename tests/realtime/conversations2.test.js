'use strict';
// Issue 22, conversation queries and settings with the official SDK, 4.x and 5.0.0-rc.8 alike: `matches` (with
// and without `i`), `contains`, `startsWith`, `endsWith` ($regex), `limit(0)`, `compact()`,
// `withLastMessagesRefreshed()`; `count()`; `mute()` / `unmute()` (`mutedMembers`); `queryMessages` with
// `limit: 0` and `type`; temporary conversations (`createTemporaryConversation`: received, found by the other
// member, the same one for the same members, expiry enforced by the server); (4.x) `unreadMessagesMentioned`.
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

// SDK 5 allows one Realtime per app id and process: its clients share that one's socket.
const shared = new Map();

async function login(sdk, id) {
  let realtime = shared.get(sdk);
  if (!realtime) {
    realtime = await h.newRealtime(server, { sdk });
    if (sdk === SDKS[1][1]) shared.set(sdk, realtime);
  }
  return h.login(realtime, id);
}

for (const [version, sdk] of SDKS) {
  const { TextMessage } = sdk;

  test(`[${version}] conversation queries: regex, limit 0, compact, last message`, async () => {
    const a = await login(sdk, h.uid('alice'));
    const b = await login(sdk, h.uid('bob'));
    const tag = h.uid('q').replace(/[^a-z0-9]/gi, '');
    // Not unique (SDK 5's default): two conversations of the same members.
    const conv = await h.call(a.createConversation({ members: [b.id], name: `js-${tag}-testconv`, unique: false }), 'create');
    const other = await h.call(
      a.createConversation({ members: [b.id], name: `JS-${tag.toUpperCase()}.other`, unique: false }),
      'create 2'
    );
    await h.call(conv.send(new TextMessage('first')), 'send 1');
    const last = await h.call(conv.send(new TextMessage('the last one')), 'send 2');

    const find = query => h.call(query.find(), 'find');
    const names = list => list.map(c => c.id).sort();
    assert.deepEqual(names(await find(a.getQuery().matches('name', new RegExp(`${tag}`, 'i')))), [conv.id, other.id].sort());
    assert.deepEqual(names(await find(a.getQuery().matches('name', new RegExp(`${tag.toUpperCase()}`)))), [other.id]);
    assert.deepEqual(names(await find(a.getQuery().contains('name', `${tag}-test`))), [conv.id]);
    // contains quotes its text: '.' matches only a dot.
    assert.deepEqual(names(await find(a.getQuery().contains('name', '.other').contains('m', b.id))), [other.id]);
    assert.deepEqual(names(await find(a.getQuery().startsWith('name', `js-${tag}`))), [conv.id]);
    assert.deepEqual(names(await find(a.getQuery().endsWith('name', 'testconv').contains('name', tag))), [conv.id]);

    assert.deepEqual(await find(a.getQuery().equalTo('objectId', conv.id).limit(0)), []);

    const [compact] = await find(a.getQuery().equalTo('objectId', conv.id).compact(true));
    assert.equal(compact.id, conv.id);
    assert.deepEqual(compact.members, [], 'compact: no members');

    const [withLast] = await find(a.getQuery().equalTo('objectId', conv.id).withLastMessagesRefreshed());
    const message = withLast.lastMessage;
    assert.ok(message instanceof sdk.Message, 'lastMessage is a Message');
    assert.deepEqual(
      { id: message.id, from: message.from, text: message.getText(), at: message.timestamp.getTime() },
      { id: last.id, from: a.id, text: 'the last one', at: last.timestamp.getTime() }
    );
    assert.deepEqual(withLast.members.slice().sort(), [a.id, b.id].sort());
  });

  test(`[${version}] count, mute and unmute`, async () => {
    const a = await login(sdk, h.uid('alice'));
    const b = await login(sdk, h.uid('bob'));
    const conv = await h.call(a.createConversation({ members: [b.id, h.uid('carol')], name: 'settings' }), 'create');
    assert.equal(await h.call(conv.count(), 'count'), 3);

    await h.call(conv.mute(), 'mute');
    assert.equal(conv.muted, true);
    const convB = await h.call(b.getConversation(conv.id, true), 'B fetches');
    assert.deepEqual(convB.mutedMembers, [a.id], 'the server kept A in mu');
    assert.equal(convB.muted, false, 'muted for A only');
    const rest = await server.rest('GET', `/1.1/classes/_Conversation/${conv.id}`);
    assert.deepEqual(rest.body.mu, [a.id]);

    await h.call(conv.unmute(), 'unmute');
    assert.equal(conv.muted, false);
    const again = await server.rest('GET', `/1.1/classes/_Conversation/${conv.id}`);
    assert.deepEqual(again.body.mu, []);
  });

  test(`[${version}] queryMessages with limit 0 and with a type`, async () => {
    const a = await login(sdk, h.uid('alice'));
    const conv = await h.call(a.createConversation({ members: [h.uid('bob')], name: 'typed' }), 'create');
    const t1 = await h.call(conv.send(new TextMessage('one')), 'send 1');
    await h.call(conv.send(new sdk.Message({ custom: true })), 'send a plain message');
    const t2 = await h.call(conv.send(new TextMessage('two')), 'send 2');
    assert.deepEqual(await h.call(conv.queryMessages({ limit: 0 }), 'limit 0'), []);
    const texts = await h.call(conv.queryMessages({ type: TextMessage.TYPE }), 'type -1');
    assert.deepEqual(texts.map(m => m.id), [t1.id, t2.id]);
    assert.deepEqual(await h.call(conv.queryMessages({ type: 1000 }), 'type 1000'), []);
  });

  test(`[${version}] temporary conversations: received, shared by the same members, expired`, async () => {
    const a = await login(sdk, h.uid('alice'));
    const b = await login(sdk, h.uid('bob'));
    const got = [];
    b.on('message', (message, conversation) => got.push({ message, conversation }));
    const before = Date.now();
    const conv = await h.call(a.createTemporaryConversation({ members: [b.id], ttl: 60 }), 'create');
    assert.match(conv.id, /^_tmp:/);
    assert.ok(conv.expiredAt instanceof Date, 'expiredAt from tempConvTTL');
    const ttl = conv.expiredAt.getTime() - before;
    assert.ok(ttl > 55000 && ttl <= 61000, `expires in about 60 s, not ${ttl} ms`);
    assert.equal(conv.expired, false);

    const sent = await h.call(conv.send(new TextMessage('temporary hi')), 'send');
    await h.waitFor(() => got.length === 1, { what: 'B receives in the temporary conversation' });
    const [{ message, conversation }] = got;
    assert.deepEqual([message.id, message.getText(), conversation.id], [sent.id, 'temporary hi', conv.id]);
    assert.ok(conversation.expiredAt instanceof Date, 'B has the expiry too (conv/query tempConvIds)');
    assert.equal(conversation.expired, false);
    assert.deepEqual(conversation.members.slice().sort(), [a.id, b.id].sort());

    // SDK 5 starts them with `unique: true`: the same members get the same conversation; 4.x asks for a new one.
    const fromB = await h.call(b.createTemporaryConversation({ members: [a.id] }), 'B creates');
    if (version === '4.x') assert.notEqual(fromB.id, conv.id, 'unique: false, a new one');
    else assert.equal(fromB.id, conv.id, 'the same members: the same conversation');

    const short = await h.call(a.createTemporaryConversation({ members: [h.uid('dli')], ttl: 1 }), 'create short');
    await h.sleep(1100);
    // The server checks too: with the SDK's own expiry pushed back, the send is still refused.
    short.expiredAt = Date.now() + 1000000;
    await assert.rejects(short.send(new TextMessage('too late')), {
      code: 4323,
      name: 'TEMPORARY_CONVERSATION_EXPIRED',
      message: 'Temporary conversation expired or does not exist.',
    });
  });
}

// 4.x: the recipient logs in on its own Realtime after the mentions were sent.
test('[4.x] unreadMessagesMentioned on login where an unread message mentions the client', async () => {
  const { TextMessage } = SDKS[0][1];
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const mentioned = await h.call(a.createConversation({ members: [bId], name: 'mentioned' }), 'create 1');
  const everyone = await h.call(a.createConversation({ members: [bId], name: 'everyone' }), 'create 2');
  const quiet = await h.call(a.createConversation({ members: [bId, h.uid('carol')], name: 'quiet' }), 'create 3');
  await h.call(mentioned.send(new TextMessage('hey you').setMentionList([bId])), 'mention B');
  await h.call(mentioned.send(new TextMessage('and then')), 'plain');
  await h.call(everyone.send(new TextMessage('all of you').mentionAll()), 'mention all');
  await h.call(quiet.send(new TextMessage('nothing for B')), 'no mention');

  const b = await h.login(server, bId);
  await h.waitFor(() => [mentioned, everyone, quiet].every(c => b.rec.unreadUpdates.some(u => u.cid === c.id)), {
    what: 'unread updates for the three conversations',
    describe: () => JSON.stringify(b.rec.unreadUpdates),
  });
  const flags = {};
  for (const conv of [mentioned, everyone, quiet]) {
    const mine = await h.call(b.getConversation(conv.id), 'B gets');
    flags[conv.name] = [mine.unreadMessagesCount, mine.unreadMessagesMentioned];
  }
  assert.deepEqual(flags, { mentioned: [2, true], everyone: [1, true], quiet: [1, false] });
});

// 4.x: two devices of one client, each its own Realtime.
test('[4.x] a read on one device clears the unread count on the other', async () => {
  const { TextMessage } = SDKS[0][1];
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const phone = await h.login(server, bId);
  const laptop = await h.login(server, bId);
  const conv = await h.call(a.createConversation({ members: [bId], name: 'two devices' }), 'create');
  await h.call(conv.send(new TextMessage('one')), 'send 1');
  const last = await h.call(conv.send(new TextMessage('two')), 'send 2');
  await h.waitMessages(laptop, conv.id, 2);
  await h.waitMessages(phone, conv.id, 2);
  const onLaptop = await h.call(laptop.getConversation(conv.id), 'laptop gets');
  await h.waitFor(() => onLaptop.unreadMessagesCount === 2, { what: 'two unread on the laptop' });

  const onPhone = await h.call(phone.getConversation(conv.id), 'phone gets');
  await h.call(onPhone.read(), 'the phone reads');

  await h.waitFor(() => onLaptop.unreadMessagesCount === 0, {
    what: 'the laptop count cleared',
    describe: () => String(onLaptop.unreadMessagesCount),
  });
  assert.equal(onLaptop.unreadMessagesMentioned, false);
  assert.equal(onLaptop.lastMessage.id, last.id);
});
