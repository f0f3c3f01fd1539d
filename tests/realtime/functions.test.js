'use strict';
// The four Lambda functions, run by `cargo lambda watch` through the Lambda runtime API (started by
// scripts/checks/40-realtime.sh via scripts/lib/lambda-local.sh, against a realtime-enabled server), reach real SDK
// clients: create-conversation, add-member, send-message (to the conversation, and with to_clients in a system
// conversation) and broadcast. Every MESSAGE event of every client is collected and compared with what it should
// have received, as a multiset: nobody receives anything else.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helper');

const API = process.env.RT_FUNCTIONS_API;
const LAMBDA = process.env.RT_LAMBDA_URL;
// Run standalone (`node --test`), the functions are not there: skip. scripts/checks/40-realtime.sh starts them.
const skip = !(API && LAMBDA) && 'needs RT_FUNCTIONS_API and RT_LAMBDA_URL (run scripts/checks/40-realtime.sh)';

let server;
before(() => {
  if (!skip) server = h.externalServer(API);
});
after(() => h.cleanup());

/** POST (or `method`) through a function URL of the emulator; resolves {status, body}. The first call may start the
 * binary. */
async function invoke(fn, path, body, method = 'POST') {
  const res = await h.withTimeout(
    fetch(`${LAMBDA}/lambda-url/${fn}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
    120000,
    `${fn} ${path}`
  );
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

async function invokeOk(fn, path, body, status, method = 'POST') {
  const answer = await invoke(fn, path, body, method);
  assert.equal(answer.status, status, `${fn} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Every client's messages as comparable records. */
const received = clients =>
  clients.flatMap(c => c.rec.messages.map(m => ({
    to: c.id, cid: m.cid, kind: m.conversationClass, from: m.from, type: m.type, text: m.text ?? null,
    content: m.content ?? null, attributes: m.attributes ?? null,
  })));

test('the functions create, add, send, send to a chosen client and broadcast; each client gets exactly its share', { skip }, async () => {
  const [alice, bob, carol, dave] = await Promise.all(
    ['alice', 'bob', 'carol', 'dave'].map(name => h.login(server, h.uid(name)))
  );
  const bot = h.uid('shop-bot');

  const conv = await invokeOk('create-conversation', '/conversations', {
    name: 'Order support', members: [alice.id, bob.id], creator: alice.id, attributes: { order_id: 1042 },
  }, 201);
  const sys = await invokeOk('create-conversation', '/conversations', { name: h.uid('Announcements'), system: true }, 201);
  const convId = conv.objectId;
  const sysId = sys.objectId;
  assert.ok(convId && sysId);

  const added = await invokeOk('add-member', `/conversations/${convId}/members`, { client_ids: [carol.id] }, 200);
  assert.deepEqual(added.client_ids, [carol.id]);
  const stored = await server.restOk('GET', `/1.1/classes/_Conversation/${convId}`);
  assert.deepEqual([...stored.m].sort(), [alice.id, bob.id, carol.id].sort(), 'the store has the three members');

  const sent = await invokeOk('send-message', `/conversations/${convId}/messages`, {
    from_client: bot, message: 'Your order #1042 has shipped', push_data: { alert: 'shipped' },
  }, 200);
  assert.equal(sent.messages.length, 1);
  await invokeOk('send-message', `/conversations/${sysId}/messages`, {
    from_client: 'notifier', to_clients: [bob.id],
    message: { _lctype: -1, _lctext: 'Your invoice is ready', _lcattrs: { invoice: 'INV-42' } },
  }, 200);
  await invokeOk('broadcast', `/conversations/${sysId}/broadcasts`, {
    from_client: 'announcer', message: { _lctype: -1, _lctext: 'Maintenance tonight' },
  }, 200);

  const shipped = to => ({
    to, cid: convId, kind: 'Conversation', from: bot, type: 'message', text: null,
    content: 'Your order #1042 has shipped', attributes: null,
  });
  const invoice = to => ({
    to, cid: sysId, kind: 'ServiceConversation', from: 'notifier', type: 'text', text: 'Your invoice is ready',
    content: null, attributes: { invoice: 'INV-42' },
  });
  const maintenance = to => ({
    to, cid: sysId, kind: 'ServiceConversation', from: 'announcer', type: 'text', text: 'Maintenance tonight',
    content: null, attributes: null,
  });
  const expected = [
    shipped(alice.id), shipped(bob.id), shipped(carol.id),
    invoice(bob.id),
    maintenance(alice.id), maintenance(bob.id), maintenance(carol.id), maintenance(dave.id),
  ];
  const everyone = [alice, bob, carol, dave];
  await h.waitFor(() => received(everyone).length >= expected.length, {
    what: `${expected.length} deliveries`,
    describe: () => JSON.stringify(received(everyone)),
  });
  await h.sleep(h.SETTLE_MS);
  h.assertSameMultiset(received(everyone), expected, 'exactly who received what');
});

test('a broadcast with valid_till reaches a client that logs in later', { skip }, async () => {
  const sys = await invokeOk('create-conversation', '/conversations', { name: h.uid('Later'), system: true }, 201);
  const online = await h.login(server, h.uid('olga'));
  await invokeOk('broadcast', `/conversations/${sys.objectId}/broadcasts`, {
    from_client: 'announcer', message: { _lctype: -1, _lctext: 'still valid' }, valid_till: Date.now() + 3600 * 1000,
  }, 200);
  await h.waitMessages(online, sys.objectId, 1);
  const late = await h.login(server, h.uid('lena'));
  await h.waitMessages(late, sys.objectId, 1, 'the late client to get the broadcast');
  await h.sleep(h.SETTLE_MS);
  const mine = late.rec.in(sys.objectId).map(m => [m.from, m.text, m.conversationClass]);
  assert.deepEqual(mine, [['announcer', 'still valid', 'ServiceConversation']]);
  assert.ok(late.rec.messages.every(m => m.conversationClass === 'ServiceConversation'),
    `the late client got only broadcasts: ${JSON.stringify(late.rec.messages.map(m => m.text))}`);
});

// Issue 21: a member added or removed by the functions (REST writes of `m`) is told to the online clients, as a
// WebSocket invite or kick is: INVITED / KICKED for the client concerned, MEMBERS_JOINED / MEMBERS_LEFT for the rest.
test('add-member and remove-member tell online SDK clients: INVITED and MEMBERS_JOINED, KICKED and MEMBERS_LEFT', { skip }, async () => {
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(name => h.login(server, h.uid(name))));
  const conv = await invokeOk('create-conversation', '/conversations', {
    name: h.uid('team'), members: [alice.id, bob.id], creator: alice.id,
  }, 201);
  const cid = conv.objectId;

  await invokeOk('add-member', `/conversations/${cid}/members`, { client_ids: [carol.id] }, 200);
  await h.waitFor(() => carol.rec.invited.some(e => e.cid === cid), {
    what: 'carol to be INVITED', describe: () => JSON.stringify(carol.rec.invited),
  });
  for (const [who, label] of [[alice, 'alice'], [bob, 'bob']]) {
    // eslint-disable-next-line no-await-in-loop
    await h.waitFor(() => who.rec.membersJoined.some(e => e.cid === cid && e.members.includes(carol.id)), {
      what: `${label} to see MEMBERS_JOINED [carol]`, describe: () => JSON.stringify(who.rec.membersJoined),
    });
  }

  await invokeOk('remove-member', `/conversations/${cid}/members`, { client_ids: [bob.id] }, 200, 'DELETE');
  await h.waitFor(() => bob.rec.kicked.some(e => e.cid === cid), {
    what: 'bob to be KICKED', describe: () => JSON.stringify(bob.rec.kicked),
  });
  for (const [who, label] of [[alice, 'alice'], [carol, 'carol']]) {
    // eslint-disable-next-line no-await-in-loop
    await h.waitFor(() => who.rec.membersLeft.some(e => e.cid === cid && e.members.includes(bob.id)), {
      what: `${label} to see MEMBERS_LEFT [bob]`, describe: () => JSON.stringify(who.rec.membersLeft),
    });
  }
  await h.sleep(h.SETTLE_MS);
  assert.equal(carol.rec.invited.filter(e => e.cid === cid).length, 1, 'carol was invited once');
  assert.deepEqual(bob.rec.membersLeft.filter(e => e.cid === cid), [], 'bob, removed, hears KICKED, not MEMBERS_LEFT');
  assert.deepEqual(alice.rec.invited.filter(e => e.cid === cid), [], 'alice, the creator, is not invited to her own');
});
