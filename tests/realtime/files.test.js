'use strict';
// Issue 23: files through the official SDKs, unmodified. `leancloud-storage`'s AV.File saves a Buffer (its `s3`
// upload: fileTokens, one PUT to the server's own upload URL, fileCallback) and reads it back byte for byte;
// only the master key deletes it; and an image message (`leancloud-realtime-plugin-typed-messages`) carries the
// file to another client, who downloads it from the server.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const AV = require('leancloud-storage');
const IM = require('leancloud-realtime');
// The plugin's module is a factory over the two SDKs it extends.
const { TypedMessagesPlugin, ImageMessage } = require('leancloud-realtime-plugin-typed-messages')(AV, IM);
const h = require('./helper');

let server;
before(async () => {
  server = await h.startServer();
  AV.init({ appId: h.APP_ID, appKey: h.APP_KEY, masterKey: h.MASTER_KEY, serverURL: server.httpUrl });
});
after(() => h.cleanup());

async function download(url) {
  const res = await h.withTimeout(fetch(url), h.CALL_MS, `GET ${url}`);
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

test('AV.File saves a buffer and reads it back byte for byte: a text and 2 MB of random bytes', async () => {
  for (const [name, bytes, type] of [
    ['hello.txt', Buffer.from('hello, files on leancloud-server\n'), 'text/plain'],
    ['noise.bin', crypto.randomBytes(2 * 1024 * 1024), 'application/octet-stream'],
  ]) {
    const file = new AV.File(name, bytes);
    // eslint-disable-next-line no-await-in-loop
    await h.call(file.save(), `save ${name}`);
    assert.ok(file.id, `${name} has an id`);
    assert.ok(file.url().startsWith(server.httpUrl), `${name} is served by this server: ${file.url()}`);
    // eslint-disable-next-line no-await-in-loop
    const got = await download(file.url());
    assert.equal(got.status, 200);
    assert.equal(got.type, type);
    assert.ok(got.bytes.equals(bytes), `${name}: the same ${bytes.length} bytes`);
    // eslint-disable-next-line no-await-in-loop
    const fetched = await h.call(AV.File.createWithoutData(file.id).fetch(), `fetch ${name}`);
    assert.equal(fetched.url(), file.url());
    assert.equal(fetched.get('name'), name);
    assert.equal(fetched.metaData('size'), bytes.length);
  }
});

test('a file is deleted by the master key only, and its bytes go with it', async () => {
  const file = new AV.File('secret.txt', Buffer.from('to be deleted'));
  await h.call(file.save(), 'save');
  await assert.rejects(h.call(file.destroy(), 'destroy with the app key'), err => err.code === 403);
  assert.equal((await download(file.url())).status, 200, 'still there');
  await h.call(file.destroy({ useMasterKey: true }), 'destroy with the master key');
  assert.equal((await download(file.url())).status, 404, 'its bytes are gone');
});

test('an image message carries its file to the other client, who downloads it', async () => {
  const realtime = () =>
    new IM.Realtime({
      appId: h.APP_ID,
      appKey: h.APP_KEY,
      RTMServers: server.wsUrl,
      server: server.httpUrl,
      plugins: [TypedMessagesPlugin],
    });
  const [alice, bob] = await Promise.all(
    [h.uid('alice'), h.uid('bob')].map(id => h.call(realtime().createIMClient(id), `login ${id}`))
  );
  const received = [];
  bob.on('message', message => received.push(message));
  const conv = await h.call(alice.createConversation({ members: [bob.id], name: 'pics' }), 'create');
  const png = crypto.randomBytes(40000);
  const file = new AV.File('photo.png', png);
  await h.call(file.save(), 'save the image');
  const image = new ImageMessage(file);
  image.setText('look at this');
  await h.call(conv.send(image), 'send the image');

  await h.waitFor(() => received.length > 0, { what: 'bob to receive the image' });
  const [got] = received;
  assert.ok(got instanceof ImageMessage, `an ImageMessage, not ${got.constructor.name}`);
  assert.equal(got.getText(), 'look at this');
  assert.equal(got.getFile().id, file.id);
  const body = await download(got.getFile().url());
  assert.equal(body.status, 200);
  assert.equal(body.type, 'image/png');
  assert.ok(body.bytes.equals(png), 'bob downloads the same bytes');
  await Promise.allSettled([alice.close(), bob.close()]);
});
