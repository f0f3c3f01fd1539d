'use strict';
// Issue 16: two server instances on one PostgreSQL database, as behind a load balancer. An SDK client on
// instance A receives, in order, what reached instance B by REST and from an SDK client on B; a broadcast
// through A reaches SDK clients on both; a file saved through A with AV.File is served by B and deleted through B
// for both (issue 23: the bodies in one S3 bucket). Needs LEANCLOUD_TEST_POSTGRES and LEANCLOUD_TEST_S3
// (scripts/test.sh starts a cluster and moto).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const AV = require('leancloud-storage');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let a;
let b;
before(async () => {
  const db = h.freePostgres();
  assert.ok(db, 'LEANCLOUD_TEST_POSTGRES must name a PostgreSQL cluster (scripts/test.sh starts one)');
  // One bucket for both instances' file bodies, as several instances are deployed.
  const s3 = process.env.LEANCLOUD_TEST_S3;
  assert.ok(s3, 'LEANCLOUD_TEST_S3 must name an S3 stand-in (scripts/test.sh starts moto)');
  const bucket = `rt-${crypto.randomBytes(6).toString('hex')}`;
  assert.equal((await fetch(`${s3}/${bucket}`, { method: 'PUT' })).status, 200, 'bucket created');
  const args = ['--files-s3-bucket', bucket, '--files-s3-endpoint', s3];
  a = await h.startServer({ db, args });
  b = await h.startServer({ db, args });
  AV.init({ appId: h.APP_ID, appKey: h.APP_KEY, masterKey: h.MASTER_KEY, serverURL: a.httpUrl });
});
after(() => h.cleanup());

test('a client on instance A receives, in order, what was sent to instance B by REST and by a client on B', async () => {
  const bob = await h.login(a, h.uid('bob'));
  const alice = await h.login(b, h.uid('alice'));
  const conv = await h.call(alice.createConversation({ members: [bob.id], name: 'across' }), 'create on B');
  // The SDK orders pushes of a conversation it has cached (see chat.test.js).
  assert.ok(await h.call(bob.getConversation(conv.id), 'bob gets the conversation on A'));

  const expected = [];
  for (let i = 0; i < 10; i += 1) {
    const text = i % 2 === 0 ? `rest-${i}` : `client-${i}`;
    if (i % 2 === 0) {
      // eslint-disable-next-line no-await-in-loop
      await b.restOk('POST', '/1.1/rtm/messages', {
        from_peer: alice.id,
        conv_id: conv.id,
        transient: false,
        message: JSON.stringify({ _lctype: -1, _lctext: text }),
      });
    } else {
      // eslint-disable-next-line no-await-in-loop
      await h.call(conv.send(new TextMessage(text)), `alice sends ${text} on B`);
    }
    expected.push(text);
  }
  await h.waitMessages(bob, conv.id, expected.length);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(bob.rec.in(conv.id).map(m => m.text), expected, 'bob on A got all ten, in the order sent on B');
  assert.ok(bob.rec.in(conv.id).every(m => m.from === alice.id));
  assert.deepEqual(alice.rec.in(conv.id), [], 'alice got none of her own, from either instance');
});

test('a broadcast through instance A reaches SDK clients on A and on B', async () => {
  const onA = await h.login(a, h.uid('u'));
  const onB = await h.login(b, h.uid('u'));
  const sys = await b.restOk('POST', '/1.1/classes/_Conversation', { name: h.uid('service'), sys: true });
  await a.restOk('POST', '/1.1/rtm/broadcast', {
    from_peer: 'announcer',
    conv_id: sys.objectId,
    message: JSON.stringify({ _lctype: -1, _lctext: 'to everyone' }),
  });
  await h.waitMessages(onA, sys.objectId, 1);
  await h.waitMessages(onB, sys.objectId, 1);
  await h.sleep(h.SETTLE_MS);
  for (const client of [onA, onB]) {
    assert.deepEqual(
      client.rec.messages.map(m => [m.cid, m.from, m.text]),
      [[sys.objectId, 'announcer', 'to everyone']]
    );
  }
});

// Issue 21: a member change made through REST on one instance (what add-member and remove-member do) reaches SDK
// clients on the other: INVITED / MEMBERS_JOINED, then KICKED / MEMBERS_LEFT.
test('members added and removed through REST on instance A are told to SDK clients on instance B', async () => {
  const alice = await h.login(b, h.uid('alice'));
  const carol = await h.login(b, h.uid('carol'));
  const conv = await a.restOk('POST', '/1.1/classes/_Conversation', { name: h.uid('team'), m: [alice.id] });
  const cid = conv.objectId;

  await a.restOk('PUT', `/1.1/classes/_Conversation/${cid}`, { m: { __op: 'AddUnique', objects: [carol.id] } });
  await h.waitFor(() => carol.rec.invited.some(e => e.cid === cid), { what: 'carol on B to be INVITED' });
  await h.waitFor(() => alice.rec.membersJoined.some(e => e.cid === cid && e.members.includes(carol.id)), {
    what: 'alice on B to see MEMBERS_JOINED [carol]', describe: () => JSON.stringify(alice.rec.membersJoined),
  });

  await a.restOk('PUT', `/1.1/classes/_Conversation/${cid}`, { m: { __op: 'Remove', objects: [carol.id] } });
  await h.waitFor(() => carol.rec.kicked.some(e => e.cid === cid), { what: 'carol on B to be KICKED' });
  await h.waitFor(() => alice.rec.membersLeft.some(e => e.cid === cid && e.members.includes(carol.id)), {
    what: 'alice on B to see MEMBERS_LEFT [carol]', describe: () => JSON.stringify(alice.rec.membersLeft),
  });
});

test('a file AV.File saved through instance A is served by B, and deleted through B it is gone from both', async () => {
  const bytes = crypto.randomBytes(3 * 1024 * 1024);
  const file = new AV.File('clip.mp4', bytes);
  await h.call(file.save(), 'save through A');
  const path = new URL(file.url()).pathname;
  assert.ok(file.url().startsWith(a.httpUrl), `served at A's address: ${file.url()}`);
  const onB = await fetch(`${b.httpUrl}${path}`);
  assert.equal(onB.status, 200);
  assert.equal(onB.headers.get('content-type'), 'video/mp4');
  assert.ok(Buffer.from(await onB.arrayBuffer()).equals(bytes), 'B serves the same 3 MB');
  await b.restOk('DELETE', `/1.1/files/${file.id}`, undefined, { master: true });
  for (const server of [a, b]) {
    // eslint-disable-next-line no-await-in-loop
    const gone = await fetch(`${server.httpUrl}${path}`);
    assert.equal(gone.status, 404, `gone from ${server.httpUrl}`);
  }
});
