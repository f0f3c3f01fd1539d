'use strict';
// Issue 24: users and sessions through the official `leancloud-storage` SDK, unmodified: sign-up, login by
// username and by e-mail, `AV.User.become(token)`, a wrong password (210); an object whose ACL names one user
// is that user's alone; a file is deleted by its uploader and refused to another user; and
// `realtime.createIMClient(user)` logs in through `POST /1.1/rtm/sign` on a server that requires signatures.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const AV = require('leancloud-storage');
// SDK 5: 4.x asks `POST /1.1/rtm/sign` over `https://` whatever the configured server (its `_request`), so on
// this plain-HTTP loopback server only 5.x can; apps in production run behind TLS, where both do.
const { Realtime } = require('leancloud-realtime-5');
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer({ requireSignatures: true });
  AV.init({ appId: h.APP_ID, appKey: h.APP_KEY, serverURL: server.httpUrl });
});
after(() => h.cleanup());

async function signUp(name) {
  const user = new AV.User();
  user.setUsername(name);
  user.setPassword(`${name}-password`);
  user.setEmail(`${name}@example.com`);
  await h.call(user.signUp(), `sign up ${name}`);
  return user;
}

test('sign up, log in by username and by e-mail, become a token; a wrong password is 210', async () => {
  const name = h.uid('ana');
  const user = await signUp(name);
  assert.match(user.getSessionToken(), /^[0-9a-z]{25}$/);
  assert.equal(user.get('password'), undefined, 'the password is not kept by the SDK from the answer');
  await AV.User.logOut();

  const byName = await h.call(AV.User.logIn(name, `${name}-password`), 'logIn');
  assert.equal(byName.id, user.id);
  assert.equal(byName.getSessionToken(), user.getSessionToken(), 'the same token');
  const byEmail = await h.call(AV.User.loginWithEmail(`${name}@example.com`, `${name}-password`), 'loginWithEmail');
  assert.equal(byEmail.id, user.id);
  await AV.User.logOut();
  const became = await h.call(AV.User.become(user.getSessionToken()), 'become');
  assert.equal(became.getUsername(), name);
  assert.equal(AV.User.current().id, user.id);
  await assert.rejects(AV.User.logIn(name, 'not the password'), err => err.code === 210);
  await AV.User.logOut();
});

test("an object whose ACL names one user is that user's alone", async () => {
  const ana = await signUp(h.uid('ana'));
  const note = new AV.Object('Note');
  note.set('text', 'for ana only');
  const acl = new AV.ACL();
  acl.setReadAccess(ana, true);
  acl.setWriteAccess(ana, true);
  note.setACL(acl);
  await h.call(note.save(), 'ana saves her note');

  const bob = await signUp(h.uid('bob'));
  assert.equal(AV.User.current().id, bob.id);
  const asBob = await h.call(new AV.Query('Note').find(), 'bob queries');
  assert.deepEqual(asBob.map(n => n.id).filter(id => id === note.id), [], 'bob does not see it');
  await AV.User.logOut();
  const asApp = await h.call(new AV.Query('Note').find(), 'the app key alone queries');
  assert.deepEqual(asApp.map(n => n.id).filter(id => id === note.id), []);

  await h.call(AV.User.become(ana.getSessionToken()), 'ana again');
  const asAna = await h.call(new AV.Query('Note').get(note.id), 'ana gets it');
  assert.equal(asAna.get('text'), 'for ana only');
  await AV.User.logOut();
});

test('a file is deleted by its uploader and refused to another user', async () => {
  const ana = await signUp(h.uid('ana'));
  const file = new AV.File('mine.txt', Buffer.from('ana wrote this'));
  await h.call(file.save(), 'ana uploads');
  assert.equal(file.metaData('owner'), ana.id);
  await signUp(h.uid('bob'));
  await assert.rejects(
    h.call(AV.File.createWithoutData(file.id).destroy(), 'bob deletes'),
    err => err.code === 403
  );
  assert.equal((await fetch(file.url())).status, 200, 'still there');
  await h.call(AV.User.become(ana.getSessionToken()), 'ana again');
  await h.call(AV.File.createWithoutData(file.id).destroy(), 'ana deletes');
  assert.equal((await fetch(file.url())).status, 404, 'its bytes are gone');
  await AV.User.logOut();
});

test('createIMClient(user) logs in with the signature of POST /1.1/rtm/sign where unsigned logins are refused', async () => {
  const ana = await signUp(h.uid('ana'));
  const realtime = new Realtime({ appId: h.APP_ID, appKey: h.APP_KEY, server: server.httpUrl, RTMServers: server.wsUrl });
  const client = await h.call(realtime.createIMClient(ana), 'createIMClient(ana)');
  assert.equal(client.id, ana.id, "the user's id is the client id");
  // Without a signature the server refuses the login.
  await assert.rejects(h.login(server, h.uid('unsigned')));
  const convs = await h.call(client.getQuery().find(), 'the signed-in client queries its conversations');
  assert.deepEqual(convs, []);
  await client.close();
  await AV.User.logOut();
});

test('a role grants its users, and the users of its child roles, what its ACL entry allows', async () => {
  const ana = await signUp(h.uid('ana'));
  const bob = await signUp(h.uid('bob'));
  await AV.User.logOut();
  const pointer = (className, objectId) => ({ __type: 'Pointer', className, objectId });
  const editors = await server.restOk('POST', '/1.1/roles', {
    name: h.uid('editors').replace(/[^A-Za-z0-9_]/g, '_'),
    ACL: { '*': { read: true } },
    users: { __op: 'AddRelation', objects: [pointer('_User', ana.id)] },
  });
  const readersName = h.uid('readers').replace(/[^A-Za-z0-9_]/g, '_');
  await server.restOk('POST', '/1.1/roles', {
    name: readersName,
    ACL: { '*': { read: true } },
    roles: { __op: 'AddRelation', objects: [pointer('_Role', editors.objectId)] },
  });
  const doc = await server.restOk('POST', '/1.1/classes/Doc', {
    text: 'for readers',
    ACL: { [`role:${readersName}`]: { read: true } },
  });

  await h.call(AV.User.become(ana.getSessionToken()), 'ana, an editor');
  const asAna = await h.call(new AV.Query('Doc').get(doc.objectId), 'ana reads');
  assert.equal(asAna.get('text'), 'for readers', 'editors are a child role of readers');
  await h.call(AV.User.become(bob.getSessionToken()), 'bob, in no role');
  await assert.rejects(new AV.Query('Doc').get(doc.objectId), 'bob cannot read it');
  await AV.User.logOut();
});

test('class permissions: conversations an app opens to signed-in users are created and found through the SDK', async () => {
  const Conversation = AV.Object.extend('_Conversation');
  const save = () => {
    const conv = new Conversation();
    conv.set('name', 'made by a client');
    conv.set('m', ['ana', 'bob']);
    return conv.save();
  };
  // Closed by default: the app key alone, or a user, is refused.
  await assert.rejects(save(), err => err.code === 403 && /Forbidden to create by class permissions/.test(err.message));
  await server.restOk('PUT', '/__admin/class-permissions/_Conversation', {
    create: { onlySignInUsers: true }, find: { onlySignInUsers: true }, get: { onlySignInUsers: true },
  });
  await assert.rejects(save(), err => err.code === 403, 'no session: still refused');
  const ana = await signUp(h.uid('ana'));
  const saved = await h.call(save(), 'a signed-in user creates a conversation');
  const found = await h.call(new AV.Query('_Conversation').equalTo('name', 'made by a client').find(), 'find');
  assert.deepEqual(found.map(c => c.id), [saved.id]);
  assert.deepEqual(found[0].get('m'), ['ana', 'bob']);
  assert.equal(AV.User.current().id, ana.id);
  await AV.User.logOut();
  await server.restOk('DELETE', '/__admin/class-permissions/_Conversation');
});
