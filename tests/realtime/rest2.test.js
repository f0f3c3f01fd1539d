'use strict';
// Issue 26, the REST API 1.2 seen by the official SDK (4.x): what a backend does through `/1.2/rtm/…` reaches a
// logged-in client as the SDK's own events — members added (INVITED, MEMBERS_JOINED), a message edited and
// recalled (MESSAGE_UPDATE, MESSAGE_RECALL), silenced (its next send refused with 4563, or 4315 for a while),
// blocked (KICKED and BLOCKED; its join refused with 4548), and kicked off the server (CLOSE with 4115
// KICKED_BY_APP).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

/** Every `event` of `emitter`, recorded. */
function record(emitter, ...events) {
  const seen = {};
  for (const event of events) {
    seen[event] = [];
    emitter.on(event, (...payload) => seen[event].push(payload));
  }
  return seen;
}

/** A conversation owned by a fresh `owner` with a fresh member logged in with the SDK, made through 1.2. */
async function group(name) {
  const owner = h.uid('owner');
  const member = await h.login(server, h.uid('member'));
  const created = await server.restOk('POST', '/1.2/rtm/conversations', { name, c: owner, m: [owner, member.id] });
  const conv = await h.call(member.getConversation(created.objectId), 'the member gets the conversation');
  return { owner, member, cid: created.objectId, conv };
}

test('members added through 1.2 are INVITED and the others see MEMBERS_JOINED', async () => {
  const { owner, cid, member, conv } = await group('invitations');
  const newcomer = await h.login(server, h.uid('newcomer'));
  const atNewcomer = record(newcomer, 'invited');
  const atMember = record(conv, 'membersjoined');
  await server.restOk('POST', `/1.2/rtm/conversations/${cid}/members`, { client_ids: [newcomer.id] });
  await h.waitFor(() => atNewcomer.invited.length === 1 && atMember.membersjoined.length === 1, {
    what: 'INVITED and MEMBERS_JOINED',
    describe: () => JSON.stringify({ atNewcomer, atMember }),
  });
  assert.deepEqual(atMember.membersjoined[0][0].members, [newcomer.id]);
  assert.ok(conv.members.includes(newcomer.id), 'the SDK added the newcomer to its member list');
  const { result } = await server.restOk('GET', `/1.2/rtm/conversations/${cid}/members`);
  assert.deepEqual(result.sort(), [owner, member.id, newcomer.id].sort());
});

test('a message edited and recalled through 1.2 reaches the member as MESSAGE_UPDATE and MESSAGE_RECALL', async () => {
  const { owner, member, cid } = await group('recall');
  const inbox = record(member, 'message', 'messageupdate', 'messagerecall');
  const sent = await server.restOk('POST', `/1.2/rtm/conversations/${cid}/messages`, {
    from_client: owner,
    message: JSON.stringify({ _lctype: -1, _lctext: 'regrettable' }),
  });
  await h.waitFor(() => inbox.message.length === 1, { what: 'the message' });
  const path = `/1.2/rtm/conversations/${cid}/messages/${sent['msg-id']}`;
  await server.restOk('PUT', path, {
    from_client: owner,
    message: JSON.stringify({ _lctype: -1, _lctext: 'better' }),
    timestamp: sent.timestamp,
  });
  await server.restOk('PUT', `${path}/recall`, { from_client: owner, timestamp: sent.timestamp });
  await h.waitFor(() => inbox.messageupdate.length === 1 && inbox.messagerecall.length === 1, {
    what: 'MESSAGE_UPDATE and MESSAGE_RECALL',
  });
  assert.equal(inbox.messageupdate[0][0].text, 'better');
  const [recalled] = inbox.messagerecall[0];
  assert.equal(recalled.id, sent['msg-id']);
  assert.equal(recalled.type, -127, 'a RecalledMessage');
});

test('a member silenced through 1.2 cannot send: 4563 for good, 4315 for a while', async () => {
  const { cid, member, conv } = await group('silence');
  await h.call(conv.send(new TextMessage('before')), 'send before');
  await server.restOk('POST', `/1.2/rtm/conversations/${cid}/permanent-silenceds`, { client_ids: [member.id] });
  await assert.rejects(conv.send(new TextMessage('muted')), { code: 4563 });
  await server.restOk('DELETE', `/1.2/rtm/conversations/${cid}/permanent-silenceds`, { client_ids: [member.id] });
  await server.restOk('POST', `/1.2/rtm/conversations/${cid}/temporary-silenceds`, { client_id: member.id, ttl: 60 });
  await assert.rejects(conv.send(new TextMessage('quiet')), { code: 4315 });
  await server.restOk('DELETE', `/1.2/rtm/conversations/${cid}/temporary-silenceds?client_id=${member.id}`);
  await h.call(conv.send(new TextMessage('after')), 'send after the silence is lifted');
});

test('a member blocked through 1.2 is KICKED and BLOCKED and cannot join again: 4548', async () => {
  const { cid, member, conv } = await group('block');
  const seen = record(conv, 'kicked', 'blocked');
  await server.restOk('POST', `/1.2/rtm/conversations/${cid}/blacklists`, { client_ids: [member.id] });
  await h.waitFor(() => seen.kicked.length === 1 && seen.blocked.length === 1, {
    what: 'KICKED and BLOCKED',
    describe: () => JSON.stringify(seen),
  });
  await assert.rejects(conv.join(), err => err.code === 4548);
  const { client_ids: blocked } = await server.restOk('GET', `/1.2/rtm/conversations/${cid}/blacklists`);
  assert.deepEqual(blocked, [member.id]);
  await server.restOk('DELETE', `/1.2/rtm/conversations/${cid}/blacklists`, { client_ids: [member.id] });
  await h.call(conv.join(), 'join after unblock');
});

test('a client kicked through 1.2 is closed with 4115 KICKED_BY_APP and shows offline', async () => {
  const client = await h.login(server, h.uid('kicked'));
  const seen = record(client, 'close');
  const online = await server.restOk('POST', '/1.2/rtm/clients/check-online', { client_ids: [client.id, 'nobody'] });
  assert.deepEqual(online, { results: [client.id] });
  await server.restOk('POST', `/1.2/rtm/clients/${client.id}/kick`, { reason: 'bye' });
  await h.waitFor(() => seen.close.length === 1, { what: 'CLOSE', describe: () => JSON.stringify(seen) });
  assert.deepEqual(seen.close[0][0], { code: 4115, reason: 'KICKED_BY_APP' });
  const after = await server.restOk('POST', '/1.2/rtm/clients/check-online', { client_ids: [client.id] });
  assert.deepEqual(after, { results: [] });
});
