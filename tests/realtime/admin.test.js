'use strict';
// Issue 22, conversation administration with the official SDK, 4.x and 5.0.0-rc.8 alike: member roles
// (`updateMemberRole`, `getAllMemberInfo` / `getMemberInfo`, the MEMBER_INFO_UPDATED event; a member cannot
// promote itself, nobody becomes owner), the owner who cannot quit (CONVERSATION_NEED_OWNER), muting members
// (`muteMembers` / `unmuteMembers` / `queryMutedMembers`; a muted member's send is refused), blocking
// (`blockMembers` / `unblockMembers` / `queryBlockedMembers`; the blocked one is kicked and cannot rejoin), and
// (4.x) a kick while offline delivered on reconnect through `GET /1.1/rtm/notifications`.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helper');

const SDKS = [
  ['4.x', require('leancloud-realtime')],
  ['5.0.0-rc.8', require('leancloud-realtime-5')],
];

let server;
before(async () => {
  const db = process.env.RT_BACKEND === 'postgres' ? h.freePostgres() : undefined;
  if (process.env.RT_BACKEND === 'postgres') assert.ok(db, 'RT_BACKEND=postgres needs LEANCLOUD_TEST_POSTGRES');
  server = await h.startServer({ db });
});
after(() => h.cleanup());

// SDK 5 allows one Realtime per app id and process: its clients share that one's socket.
const shared = new Map();
const owner = new WeakMap();

async function login(sdk, id) {
  let realtime = shared.get(sdk);
  if (!realtime) {
    // `server`: the REST API too (getAllMemberInfo, and rtm/notifications after a reconnect).
    realtime = await h.newRealtime(server, { sdk, server: server.httpUrl });
    if (sdk === SDKS[1][1]) shared.set(sdk, realtime);
    else overHttp(realtime);
  }
  const client = await h.login(realtime, id);
  owner.set(client, realtime);
  return client;
}

/**
 * SDK 4.x prefixes `https://` to `server` in its REST requests, and the suite's server speaks plain http on
 * loopback: send them there as the SDK would (method, `/1.1` path, query with objects as JSON, its headers).
 */
function overHttp(realtime) {
  // eslint-disable-next-line no-param-reassign
  realtime._request = async ({ method = 'GET', version = '1.1', path, query = {}, headers = {}, data }) => {
    const url = new URL(`${server.httpUrl}/${version}${path}`);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
    }
    const res = await fetch(url, {
      method,
      headers: {
        'X-LC-Id': realtime._options.appId,
        'X-LC-Key': realtime._options.appKey,
        'Content-Type': 'application/json',
        ...headers,
      },
      body: method === 'GET' ? undefined : JSON.stringify(data || {}),
    });
    const body = await res.json();
    if (!res.ok) throw Object.assign(new Error(body.error || `HTTP ${res.status}`), body);
    return body;
  };
}

/** Every `event` of `emitter`, recorded. */
function record(emitter, ...events) {
  const seen = {};
  for (const event of events) {
    seen[event] = [];
    emitter.on(event, payload => seen[event].push(payload));
  }
  return seen;
}

/** The owner's conversation with a member and one more client, and the member's view of it. */
async function group(sdk, name) {
  const member = await login(sdk, h.uid('member'));
  const own = await login(sdk, h.uid('owner'));
  const third = h.uid('third');
  const conv = await h.call(own.createConversation({ members: [member.id, third], name, unique: false }), 'create');
  const convM = await h.call(member.getConversation(conv.id), 'member gets it');
  assert.ok(convM, 'the member finds the conversation');
  return { own, member, third, conv, convM };
}

for (const [version, sdk] of SDKS) {
  const { TextMessage, ConversationMemberRole } = sdk;

  test(`[${version}] roles: only the owner promotes; member info and its update event`, async () => {
    const { own, member, conv, convM } = await group(sdk, 'roles');
    await assert.rejects(convM.updateMemberRole(member.id, ConversationMemberRole.MANAGER), err => {
      assert.equal(err.code, 4320);
      assert.equal(err.message, 'CONVERSATION_OPERATION_UNAUTHORIZED');
      return true;
    });
    // Refused by the SDK itself, before anything is sent.
    await assert.rejects(conv.updateMemberRole(member.id, ConversationMemberRole.OWNER), { code: 5130 });

    const infos = await h.call(conv.getAllMemberInfo(), 'getAllMemberInfo');
    assert.equal(infos.length, 3);
    assert.deepEqual((await conv.getMemberInfo(own.id)).toJSON(), {
      conversationId: conv.id, memberId: own.id, role: ConversationMemberRole.OWNER, isOwner: true,
    });
    assert.deepEqual((await conv.getMemberInfo(member.id)).toJSON(), {
      conversationId: conv.id, memberId: member.id, role: ConversationMemberRole.MEMBER, isOwner: false,
    });

    const seen = record(convM, 'memberinfoupdated');
    await h.call(conv.updateMemberRole(member.id, ConversationMemberRole.MANAGER), 'promote');
    await h.waitFor(() => seen.memberinfoupdated.length === 1, { what: 'MEMBER_INFO_UPDATED at the member' });
    const [{ member: who, memberInfo, updatedBy }] = seen.memberinfoupdated;
    assert.deepEqual([who, memberInfo.role, memberInfo.isOwner, updatedBy], [member.id, 'Manager', false, own.id]);
    const fresh = await h.call(convM.getAllMemberInfo({ noCache: true }), 'member reads the roles');
    assert.equal(fresh.find(i => i.memberId === member.id).role, 'Manager');
    const rest = await server.rest('GET', `/1.1/classes/_ConversationMemberInfo?where=${encodeURIComponent(JSON.stringify({ cid: conv.id }))}`);
    assert.deepEqual(rest.body.results.map(r => [r.clientId, r.role]).sort(), [[member.id, 'Manager'], [own.id, 'Owner']].sort());
  });

  test(`[${version}] the owner cannot quit while it has managers; a partial remove names it`, async () => {
    const { own, member, third, conv } = await group(sdk, 'need owner');
    await h.call(conv.updateMemberRole(member.id, ConversationMemberRole.MANAGER), 'promote');
    await assert.rejects(conv.quit(), err => err.message === 'CONVERSATION_NEED_OWNER' && err.code === 4324);
    const result = await h.call(conv.remove([own.id, third]), 'remove');
    assert.deepEqual(result.successfulClientIds, [third]);
    assert.equal(result.failures.length, 1);
    assert.equal(result.failures[0].message, 'CONVERSATION_NEED_OWNER');
    assert.deepEqual(result.failures[0].clientIds, [own.id]);
    assert.ok(conv.members.includes(own.id), 'the owner stays');

    // Without managers, the creator may leave.
    const other = await h.call(own.createConversation({ members: [member.id], name: 'no roles', unique: false }), 'create');
    await h.call(other.quit(), 'quit without managers');
    assert.ok(!other.members.includes(own.id));
  });

  test(`[${version}] a muted manager cannot unmute itself; managers mute plain members`, async () => {
    const { own, member, third, conv, convM } = await group(sdk, 'manager rights');
    await h.call(conv.updateMemberRole(member.id, ConversationMemberRole.MANAGER), 'promote');
    const muted = await h.call(convM.muteMembers(third), 'the manager mutes a member');
    assert.deepEqual(muted.successfulClientIds, [third]);
    await h.call(conv.muteMembers(member.id), 'the owner mutes the manager');
    await assert.rejects(convM.unmuteMembers(member.id), { code: 4320 });
    await assert.rejects(convM.blockMembers(own.id).then(r => { throw r.failures[0]; }), { code: 4324 });
  });

  test(`[${version}] mute and unmute a member`, async () => {
    const { own, member, conv, convM } = await group(sdk, 'shutups');
    const atMember = record(convM, 'muted', 'membersunmuted', 'unmuted');
    const atOwner = record(conv, 'membersmuted');
    await h.call(conv.muteMembers(member.id), 'mute');
    await h.waitFor(() => atOwner.membersmuted.length === 1 && atMember.muted.length === 1, { what: 'MEMBERS_MUTED and MUTED' });
    assert.deepEqual(atOwner.membersmuted[0], { members: [member.id], mutedBy: own.id });
    assert.deepEqual(atMember.muted[0], { mutedBy: own.id });

    assert.deepEqual((await h.call(convM.queryMutedMembers(), 'query')).results, [member.id]);
    await assert.rejects(convM.send(new TextMessage('muted?')), { code: 4563 });
    await assert.rejects(convM.unmuteMembers(member.id), { code: 4320 });

    await h.call(conv.unmuteMembers(member.id), 'unmute');
    await h.waitFor(() => atMember.membersunmuted.length === 1 && atMember.unmuted.length === 1, { what: 'MEMBERS_UNMUTED' });
    assert.deepEqual(atMember.membersunmuted[0], { members: [member.id], unmutedBy: own.id });
    await h.call(convM.send(new TextMessage('I may speak')), 'send after unmute');
  });

  test(`[${version}] block and unblock a member`, async () => {
    const { own, member, conv, convM } = await group(sdk, 'blacklist');
    const atMember = record(convM, 'blocked', 'kicked');
    const atOwner = record(conv, 'membersblocked', 'membersleft', 'membersunblocked');
    const result = await h.call(conv.blockMembers(member.id), 'block');
    assert.deepEqual(result.successfulClientIds, [member.id]);
    await h.waitFor(
      () => atOwner.membersblocked.length === 1 && atOwner.membersleft.length === 1
        && atMember.blocked.length === 1 && atMember.kicked.length === 1,
      { what: 'MEMBERS_BLOCKED, MEMBERS_LEFT, BLOCKED, KICKED', describe: () => JSON.stringify({ atOwner, atMember }) }
    );
    assert.deepEqual(atOwner.membersblocked[0], { members: [member.id], blockedBy: own.id });
    assert.deepEqual(atMember.blocked[0], { blockedBy: own.id });
    assert.ok(!conv.members.includes(member.id), 'removed');

    assert.deepEqual((await h.call(conv.queryBlockedMembers(), 'query')).results, [member.id]);
    await assert.rejects(convM.join(), err => err.code === 4548);
    const readd = await h.call(conv.add([member.id]), 'add again');
    assert.deepEqual([readd.successfulClientIds, readd.failures[0].code], [[], 4548]);
    await assert.rejects(convM.unblockMembers(member.id), { code: 4320 });

    await h.call(conv.unblockMembers(member.id), 'unblock');
    await h.waitFor(() => atOwner.membersunblocked.length === 1, { what: 'MEMBERS_UNBLOCKED' });
    assert.deepEqual(atOwner.membersunblocked[0], { members: [member.id], unblockedBy: own.id });
    await h.call(convM.join(), 'join after unblock');
  });
}

// 4.x only: SDK 5 has one Realtime per process, so the owner could not stay online while the member's
// connection is paused.
test('[4.x] a kick while offline reaches the member when it reconnects (rtm/notifications)', async () => {
  const sdk = SDKS[0][1];
  const { own, member, conv } = await group(sdk, 'offline kick');
  const seen = record(member, 'kicked');
  await h.sleep(50);

  const realtime = owner.get(member);
  realtime.pause();
  await h.sleep(300);
  await h.call(conv.remove([member.id]), 'kick while away');
  await h.sleep(300);
  assert.equal(seen.kicked.length, 0, 'nothing reaches the member while offline');
  realtime.resume();

  await h.waitFor(() => seen.kicked.length === 1, { what: 'KICKED after reconnecting' });
  assert.equal(seen.kicked[0].kickedBy, own.id);
});
