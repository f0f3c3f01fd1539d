'use strict';
// A server started with --realtime-require-signatures: logins need LeanCloud's signature
// hex(HMAC-SHA1(master key, "appid:clientid::timestamp:nonce")), and so do conversation operations.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer({ requireSignatures: true });
});
after(() => h.cleanup());

const nonce = () => crypto.randomBytes(6).toString('hex');
const seconds = () => Math.floor(Date.now() / 1000);

function loginSignature(clientId, { key = h.MASTER_KEY, appId = h.APP_ID, timestamp = seconds() } = {}) {
  const n = nonce();
  return { signature: h.hmacSha1Hex(key, `${appId}:${clientId}::${timestamp}:${n}`), timestamp, nonce: n };
}

/** conversationSignatureFactory as LeanCloud's demo writes it (the SDK passes add/remove; the string says invite/kick). */
function conversationSignature(conversationId, clientId, sortedIds, action, key = h.MASTER_KEY) {
  const timestamp = seconds();
  const n = nonce();
  const members = sortedIds.join(':');
  const text =
    action === 'create'
      ? `${h.APP_ID}:${clientId}:${members}:${timestamp}:${n}`
      : `${h.APP_ID}:${clientId}:${conversationId}:${members}:${timestamp}:${n}:${action === 'add' ? 'invite' : 'kick'}`;
  return { signature: h.hmacSha1Hex(key, text), timestamp, nonce: n };
}

const signed = (extra = {}) => ({
  signatureFactory: clientId => loginSignature(clientId),
  conversationSignatureFactory: conversationSignature,
  ...extra,
});

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return null;
}

test('the signature helper matches the test vector of protocol.md §8.8', () => {
  assert.equal(
    h.hmacSha1Hex('emuMasterKey', 'emuAppId0000000-gzGzoHsz:Tom::1700000000:n0nce'),
    'e3ecdece0a2aba0a7d3baba9d00717514b908e50'
  );
  assert.equal(
    h.hmacSha1Hex('emuMasterKey', 'emuAppId0000000-gzGzoHsz:Tom:Bob:Tom:Zed:1700000001:n1'),
    '49b3949a14e620abfa6f062b45740637cb372e20'
  );
});

test('a bad login signature is refused with 4102 SIGNATURE_FAILED', async () => {
  const cases = {
    'signed with the app key': id => loginSignature(id, { key: h.APP_KEY }),
    'signed for another client': () => loginSignature('someone-else'),
    'a garbled signature': id => ({ ...loginSignature(id), signature: '0'.repeat(40) }),
  };
  for (const [what, factory] of Object.entries(cases)) {
    // eslint-disable-next-line no-await-in-loop
    const error = await rejection(h.login(server, h.uid('mallory'), { signatureFactory: factory }));
    assert.ok(error, `${what}: the login must be refused`);
    assert.equal(error.code, 4102, `${what}: ${error.code} ${error.message}`);
  }
});

test('an unsigned login is refused with 4102', async () => {
  const error = await rejection(h.login(server, h.uid('anon')));
  assert.ok(error, 'an unsigned login must be refused');
  assert.equal(error.code, 4102, `${error.code} ${error.message}`);
});

test('a good login signature succeeds (timestamp in seconds or in ms), and the client chats', async () => {
  const a = await h.login(server, h.uid('alice'), signed());
  const b = await h.login(server, h.uid('bob'), signed({ signatureFactory: id => loginSignature(id, { timestamp: Date.now() }) }));
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'signed' }), 'create with a good signature');
  assert.ok(conv.id);
  await h.call(conv.send(new TextMessage('signed hello')), 'send');
  await h.waitMessages(b, conv.id, 1);
  assert.deepEqual(b.rec.texts(conv.id), ['signed hello']);
});

test('conversation operations check their signatures: create and add with good ones succeed, bad ones fail', async () => {
  const a = await h.login(server, h.uid('alice'), signed());
  const bId = h.uid('bob');
  const cId = h.uid('carol');
  const conv = await h.call(a.createConversation({ members: [bId], name: 'signed create' }), 'good create');
  const stored = await server.restOk('GET', `/1.1/classes/_Conversation/${conv.id}`);
  assert.deepEqual([...stored.m].sort(), [a.id, bId].sort());
  const added = await h.call(conv.add([cId]), 'good add');
  assert.deepEqual(added.successfulClientIds, [cId]);

  const bad = await h.login(server, h.uid('eve'), signed({
    conversationSignatureFactory: (cid, client, ids, action) => conversationSignature(cid, client, ids, action, h.APP_KEY),
  }));
  const error = await rejection(h.call(bad.createConversation({ members: [bId], name: 'badly signed' }), 'bad create'));
  assert.ok(error, 'a create signed with the wrong key must fail');
  assert.ok(!/timed out/.test(error.message), `refused, not ignored: ${error.message}`);
  const unsigned = await h.login(server, h.uid('uma'), { signatureFactory: id => loginSignature(id) });
  const error2 = await rejection(h.call(unsigned.createConversation({ members: [bId] }), 'unsigned create'));
  assert.ok(error2, 'an unsigned create must fail in this mode');
});
