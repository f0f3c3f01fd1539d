'use strict';
// The WebSocket gateway and the REST API share one store: conversations created on either side are seen by the
// other, REST sends are delivered to online clients like client sends, and client.getQuery() runs LeanCloud
// queries (where, sort, limit, skip; service conversations with sys:true).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage, ServiceConversation } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

const whereQuery = where => `/1.1/classes/_Conversation?where=${encodeURIComponent(JSON.stringify(where))}`;

test('a conversation created over WebSocket is visible through GET /1.1/classes/_Conversation', async () => {
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const tag = h.uid('tag');
  const conv = await h.call(
    a.createConversation({ members: [bId], name: 'made over ws', tag, level: 7, meta: { k: 'v' } }),
    'create'
  );
  const { results } = await server.restOk('GET', whereQuery({ objectId: conv.id }));
  assert.equal(results.length, 1, `GET _Conversation where objectId = ${conv.id}`);
  const row = results[0];
  assert.equal(row.objectId, conv.id);
  assert.equal(row.name, 'made over ws');
  assert.deepEqual([...row.m].sort(), [a.id, bId].sort());
  assert.equal(row.c, a.id, 'creator stored as c');
  assert.equal(row.tag, tag, 'custom attributes stored top-level');
  assert.equal(row.level, 7);
  assert.deepEqual(row.meta, { k: 'v' });
  assert.ok(row.createdAt && row.updatedAt);

  const byAttr = await server.restOk('GET', whereQuery({ tag }));
  assert.deepEqual(byAttr.results.map(r => r.objectId), [conv.id], 'queryable by a custom attribute');
  const byMember = await server.restOk('GET', whereQuery({ m: bId }));
  assert.deepEqual(byMember.results.map(r => r.objectId), [conv.id], 'queryable by member');
});

test('a conversation created over REST is used over WebSocket; REST sends reach the members', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const outsider = await h.login(server, h.uid('olivia'));
  const created = await server.restOk('POST', '/1.1/classes/_Conversation', { name: 'made over rest', m: [a.id, b.id], color: 'teal' });
  const cid = created.objectId;
  assert.ok(cid);

  const convA = await h.call(a.getConversation(cid), 'A gets the REST conversation');
  assert.ok(convA, 'conv/query finds the REST-created conversation');
  assert.equal(convA.name, 'made over rest');
  assert.equal(convA.get('color'), 'teal');
  assert.deepEqual([...convA.members].sort(), [a.id, b.id].sort());
  await h.call(b.getConversation(cid), 'B gets it too (cached: messages are then emitted in order)');

  await h.call(convA.send(new TextMessage('over ws')), 'A sends over ws');
  await h.waitMessages(b, cid, 1);

  const sent = await server.restOk('POST', '/1.1/rtm/messages', {
    from_peer: 'rest-bot',
    conv_id: cid,
    transient: false,
    message: JSON.stringify({ _lctype: -1, _lctext: 'over rest', _lcattrs: { via: 'rest' } }),
  });
  assert.ok(sent['msg-id'], 'REST send answered a msg-id');
  await server.restOk('POST', '/1.1/rtm/messages', { from_peer: 'rest-bot', conv_id: cid, transient: false, message: 'plain rest' });

  await h.waitMessages(a, cid, 2);
  await h.waitMessages(b, cid, 3);
  await h.sleep(h.SETTLE_MS);
  const strip = m => ({ from: m.from, type: m.type, text: m.text, content: m.content, attributes: m.attributes });
  const restMessages = [
    { from: 'rest-bot', type: 'text', text: 'over rest', content: undefined, attributes: { via: 'rest' } },
    { from: 'rest-bot', type: 'message', text: undefined, content: 'plain rest', attributes: undefined },
  ];
  assert.deepEqual(a.rec.in(cid).map(strip), restMessages, 'A got the two REST messages (and not its own)');
  assert.deepEqual(
    b.rec.in(cid).map(strip),
    [{ from: a.id, type: 'text', text: 'over ws', content: undefined, attributes: undefined }, ...restMessages],
    'B got A\'s message then the REST ones'
  );
  assert.equal(a.rec.in(cid).find(m => m.text === 'over rest').id, sent['msg-id'], 'pushed id = REST msg-id');
  assert.deepEqual(outsider.rec.messages, [], 'a non-member got nothing');

  const history = await h.call(convA.queryMessages({ limit: 10 }), 'queryMessages');
  assert.deepEqual(history.map(m => m.from), [a.id, 'rest-bot', 'rest-bot'], 'REST sends are in the history');
});

test('a system conversation: to_peers reaches only those clients; a REST broadcast reaches every online client', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const c = await h.login(server, h.uid('carol'));
  const sys = await server.restOk('POST', '/1.1/classes/_Conversation', { name: h.uid('service'), sys: true });
  await server.restOk('POST', '/1.1/rtm/messages', {
    from_peer: 'notifier',
    conv_id: sys.objectId,
    transient: false,
    message: JSON.stringify({ _lctype: -1, _lctext: 'for B only' }),
    to_peers: [b.id],
  });
  await server.restOk('POST', '/1.1/rtm/broadcast', {
    from_peer: 'announcer',
    conv_id: sys.objectId,
    message: JSON.stringify({ _lctype: -1, _lctext: 'to everyone' }),
  });
  await h.waitMessages(b, sys.objectId, 2);
  await h.waitMessages(a, sys.objectId, 1);
  await h.waitMessages(c, sys.objectId, 1);
  await h.sleep(h.SETTLE_MS);
  // By timestamp: the SDK may emit two pushes for a conversation it has not cached yet out of order.
  const seen = client =>
    [...client.rec.messages].sort((x, y) => x.timestamp - y.timestamp).map(m => [m.cid, m.from, m.text, m.conversationClass]);
  const bcast = [sys.objectId, 'announcer', 'to everyone', 'ServiceConversation'];
  assert.deepEqual(seen(b), [[sys.objectId, 'notifier', 'for B only', 'ServiceConversation'], bcast]);
  assert.deepEqual(seen(a), [bcast]);
  assert.deepEqual(seen(c), [bcast]);
});

test('client.getQuery(): where, sort, limit, skip, members; service conversations with sys:true', async () => {
  const a = await h.login(server, h.uid('alice'));
  const bId = h.uid('bob');
  const batch = h.uid('batch');
  const made = [];
  for (const rank of [2, 1, 3]) {
    // eslint-disable-next-line no-await-in-loop
    made[rank] = await h.call(
      a.createConversation({ members: [bId], name: `q${rank}`, batch, rank }),
      `create q${rank}`
    );
  }
  const names = list => list.map(conv => conv.name);
  const q = () => a.getQuery().equalTo('batch', batch);

  assert.deepEqual(names(await h.call(q().ascending('rank').find(), 'ascending')), ['q1', 'q2', 'q3']);
  assert.deepEqual(names(await h.call(q().descending('rank').limit(2).find(), 'descending, limit')), ['q3', 'q2']);
  assert.deepEqual(names(await h.call(q().ascending('rank').skip(1).limit(1).find(), 'skip')), ['q2']);
  assert.deepEqual(
    names(await h.call(q().greaterThan('rank', 1).ascending('rank').find(), '$gt')),
    ['q2', 'q3']
  );
  assert.deepEqual(
    names(await h.call(q().containsMembers([bId]).ascending('rank').find(), 'containsMembers')),
    ['q1', 'q2', 'q3']
  );
  assert.deepEqual(await h.call(q().containsMembers([h.uid('nobody')]).find(), 'no match'), []);
  const [one] = await h.call(q().equalTo('rank', 3).find(), 'equalTo rank');
  assert.equal(one.id, made[3].id);
  assert.equal(one.get('batch'), batch);

  const sysName = h.uid('service');
  const sys = await server.restOk('POST', '/1.1/classes/_Conversation', { name: sysName, sys: true });
  const found = await h.call(a.getServiceConversationQuery().equalTo('name', sysName).find(), 'sys:true query');
  assert.equal(found.length, 1);
  assert.equal(found[0].id, sys.objectId);
  assert.ok(found[0] instanceof ServiceConversation, `a ServiceConversation (got ${found[0].constructor.name})`);
  const normal = await h.call(a.getQuery().equalTo('name', sysName).equalTo('sys', false).find(), 'sys:false');
  assert.deepEqual(normal, []);
});
