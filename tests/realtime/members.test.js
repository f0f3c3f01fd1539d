'use strict';
// Membership over WebSocket: a third client joins and leaves (the others see MEMBERS_JOINED / MEMBERS_LEFT, and
// after leaving it receives nothing); add and remove of others (INVITED / KICKED for the one concerned).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TextMessage } = require('leancloud-realtime');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
});
after(() => h.cleanup());

test('a third client joins and leaves: the others are told, and after leaving it receives nothing', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const c = await h.login(server, h.uid('carol'));
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'join and leave' }), 'create');
  const convB = await h.call(b.getConversation(conv.id), 'B gets it');

  // LeanCloud's JS guide ("自身主动加入"): a client that is not a member gets the conversation by id and join()s it;
  // getQuery() searches all conversations ("默认是查询全部对话的").
  const convC = await h.call(c.getConversation(conv.id), 'C gets it (not a member yet)');
  assert.ok(convC, 'conv/query must find a normal conversation by id for a client that is not (yet) a member, so that it can join()');
  await h.call(convC.join(), 'C joins');
  assert.ok(convC.members.includes(c.id), 'C is a member after join()');

  for (const [who, label] of [[a, 'A'], [b, 'B']]) {
    // eslint-disable-next-line no-await-in-loop
    await h.waitFor(() => who.rec.membersJoined.some(e => e.cid === conv.id && e.members.includes(c.id)), {
      what: `${label} to see MEMBERS_JOINED [C]`,
      describe: () => JSON.stringify(who.rec.membersJoined),
    });
  }
  const joined = a.rec.membersJoined.find(e => e.cid === conv.id);
  assert.deepEqual(joined.members, [c.id]);
  assert.equal(joined.invitedBy, c.id, 'join() is initiated by the joiner');
  await h.waitFor(() => conv.members.includes(c.id), { what: 'A\'s conversation to list C' });

  await h.call(conv.send(new TextMessage('welcome C')), 'A sends while C is a member');
  await h.waitMessages(c, conv.id, 1);
  await h.waitMessages(b, conv.id, 1);

  await h.call(convC.quit(), 'C quits');
  assert.ok(!convC.members.includes(c.id), 'C is no member after quit()');
  for (const [who, label] of [[a, 'A'], [b, 'B']]) {
    // eslint-disable-next-line no-await-in-loop
    await h.waitFor(() => who.rec.membersLeft.some(e => e.cid === conv.id && e.members.includes(c.id)), {
      what: `${label} to see MEMBERS_LEFT [C]`,
      describe: () => JSON.stringify(who.rec.membersLeft),
    });
  }
  const left = b.rec.membersLeft.find(e => e.cid === conv.id);
  assert.deepEqual(left.members, [c.id]);
  assert.equal(left.kickedBy, c.id, 'quit() is initiated by the leaver');
  await h.waitFor(() => !conv.members.includes(c.id), { what: 'A\'s conversation to drop C' });

  await h.call(conv.send(new TextMessage('C has gone')), 'A sends after C left');
  await h.call(convB.send(new TextMessage('B too')), 'B sends after C left');
  await h.waitMessages(b, conv.id, 2);
  await h.waitMessages(a, conv.id, 1);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(c.rec.texts(), ['welcome C'], 'C received only the message sent while it was a member');
  assert.deepEqual(b.rec.texts(conv.id), ['welcome C', 'C has gone']);
  assert.deepEqual(a.rec.texts(conv.id), ['B too']);

  const stored = await server.restOk('GET', `/1.1/classes/_Conversation/${conv.id}`);
  assert.deepEqual([...stored.m].sort(), [a.id, b.id].sort(), 'the stored member list is back to A and B');
});

test('a third client is added, then leaves by itself: the others see MEMBERS_LEFT, and it receives nothing more', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const c = await h.login(server, h.uid('carol'));
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'added then quits' }), 'create');
  await h.call(b.getConversation(conv.id), 'B gets it');
  await h.call(conv.add([c.id]), 'A adds C');
  await h.waitFor(() => b.rec.membersJoined.some(e => e.cid === conv.id && e.members.includes(c.id)), {
    what: 'B to see MEMBERS_JOINED [C]', describe: () => JSON.stringify(b.rec.membersJoined),
  });
  await h.waitFor(() => c.rec.invited.some(e => e.cid === conv.id), { what: 'C to be INVITED' });
  await h.call(conv.send(new TextMessage('hello C')), 'A sends');
  await h.waitMessages(c, conv.id, 1);

  const convC = await h.call(c.getConversation(conv.id), 'C (a member now) gets the conversation');
  assert.ok(convC, 'a member finds the conversation');
  await h.call(convC.quit(), 'C quits');
  for (const [who, label] of [[a, 'A'], [b, 'B']]) {
    // eslint-disable-next-line no-await-in-loop
    await h.waitFor(() => who.rec.membersLeft.some(e => e.cid === conv.id && e.members.includes(c.id)), {
      what: `${label} to see MEMBERS_LEFT [C]`, describe: () => JSON.stringify(who.rec.membersLeft),
    });
  }
  assert.equal(a.rec.membersLeft.find(e => e.cid === conv.id).kickedBy, c.id, 'quit() is initiated by the leaver');
  await h.call(conv.send(new TextMessage('after C left')), 'A sends after C left');
  await h.waitMessages(b, conv.id, 2);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(c.rec.texts(), ['hello C'], 'C received nothing after it left');
  const stored = await server.restOk('GET', `/1.1/classes/_Conversation/${conv.id}`);
  assert.deepEqual([...stored.m].sort(), [a.id, b.id].sort());
});

test('add and remove of another client: INVITED / KICKED for it, MEMBERS_JOINED / LEFT for the rest', async () => {
  const a = await h.login(server, h.uid('alice'));
  const b = await h.login(server, h.uid('bob'));
  const d = await h.login(server, h.uid('dave'));
  const conv = await h.call(a.createConversation({ members: [b.id], name: 'add and remove' }), 'create');

  const added = await h.call(conv.add([d.id]), 'A adds D');
  assert.deepEqual(added.successfulClientIds, [d.id]);
  await h.waitFor(() => d.rec.invited.some(e => e.cid === conv.id), {
    what: 'D to be INVITED',
    describe: () => JSON.stringify(d.rec),
  });
  assert.equal(d.rec.invited.find(e => e.cid === conv.id).invitedBy, a.id);
  await h.waitFor(() => b.rec.membersJoined.some(e => e.cid === conv.id && e.members.includes(d.id)), {
    what: 'B to see MEMBERS_JOINED [D]',
  });

  await h.call(conv.send(new TextMessage('hi D')), 'A sends');
  await h.waitMessages(d, conv.id, 1);

  const removed = await h.call(conv.remove([d.id]), 'A removes D');
  assert.deepEqual(removed.successfulClientIds, [d.id]);
  await h.waitFor(() => d.rec.kicked.some(e => e.cid === conv.id), { what: 'D to be KICKED' });
  assert.equal(d.rec.kicked.find(e => e.cid === conv.id).kickedBy, a.id);
  await h.waitFor(() => b.rec.membersLeft.some(e => e.cid === conv.id && e.members.includes(d.id)), {
    what: 'B to see MEMBERS_LEFT [D]',
  });

  await h.call(conv.send(new TextMessage('bye D')), 'A sends after removing D');
  await h.waitMessages(b, conv.id, 2);
  await h.sleep(h.SETTLE_MS);
  assert.deepEqual(d.rec.texts(), ['hi D'], 'D got nothing after it was removed');
});
