'use strict';
// `_conversationStart` rejecting a creation, seen from the official JS SDK (leancloud-realtime@4): the
// server answers `error` 4305 CONVERSATION_REJECTED_BY_APP with the hook's `code` as `appCode` and its
// `detail`, so `createConversation` rejects with them, and nothing is created. The hook endpoint is a small
// HTTP server in this process that records every call.

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');

const h = require('../lib/harness');

const HOOK_KEY = 'test-hook-key-conversation-start';
const APP_CODE = 4321;
const DETAIL = 'no conversations about that';

describe('_conversationStart rejecting a creation (JS SDK createConversation)', () => {
  let endpoint;
  let server;
  let alice;

  before(async () => {
    endpoint = await h.startHookEndpoint({
      _conversationStart: (params) =>
        params.attr && params.attr.name === 'rejected-room'
          ? { reject: true, code: APP_CODE, detail: DETAIL }
          : {},
    });
    server = await h.startServer({ hooksUrl: endpoint.url, hookKey: HOOK_KEY });
    alice = await h.login(await h.realtimeFor(server), 'alice');
  });

  after(async () => {
    await h.closeClients(alice);
    if (server) await server.stop();
    if (endpoint) await endpoint.close();
    await h.stopAll();
  });

  it('createConversation rejects with code 4305 and the hook code as appCode; no conversation exists', async () => {
    const rejection = await h
      .within(alice.createConversation({ members: ['bob'], name: 'rejected-room' }), 'createConversation to settle')
      .then(
        (conv) => assert.fail(`createConversation resolved (conversation ${conv.id}) instead of rejecting`),
        (err) => err
      );
    assert.equal(rejection.code, 4305, `rejection: ${rejection.stack}`);
    assert.equal(rejection.appCode, APP_CODE);
    assert.equal(rejection.detail, DETAIL);

    // The hook was asked, with the documented parameters and the hook key.
    const calls = endpoint.calls.filter((c) => c.hook === '_conversationStart');
    assert.equal(calls.length, 1, `hook calls: ${JSON.stringify(endpoint.calls.map((c) => c.hook))}`);
    assert.equal(calls[0].headers['x-lc-hook-key'], HOOK_KEY);
    assert.equal(calls[0].headers['x-lc-id'], h.APP_ID);
    assert.equal(calls[0].params.initBy, 'alice');
    assert.deepEqual([...calls[0].params.members].sort(), ['alice', 'bob']);
    assert.equal(calls[0].params.attr.name, 'rejected-room');

    // Nothing was created.
    assert.deepEqual(await h.conversations(server), []);
  });

  it('a creation the hook lets through is created (so the check above can see conversations)', async () => {
    const conv = await h.within(
      alice.createConversation({ members: ['bob'], name: 'allowed-room' }),
      'createConversation to settle'
    );
    assert.ok(conv.id);
    const all = await h.conversations(server);
    assert.deepEqual(
      all.map((c) => [c.objectId, c.name]),
      [[conv.id, 'allowed-room']]
    );
    assert.deepEqual([...all[0].m].sort(), ['alice', 'bob']);
  });
});
