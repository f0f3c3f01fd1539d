#!/usr/bin/env node
'use strict';
// A real, unmodified LeanCloud JS SDK client (leancloud-realtime 4.x, installed in tests/realtime/node_modules)
// that logs the given client ids in to the local server over WebSocket and prints every message and membership
// event they receive, so a person sees a message go from a Lambda function to a client.
//
//   node scripts/lib/rt-listen.js ws://127.0.0.1:PORT/ alice bob carol dave
//
// Prints "rt-listen: listening as …" once every client is logged in; on SIGTERM/SIGINT closes them, prints a
// summary line and exits 0. Credentials: LEANCLOUD_APP_ID / LEANCLOUD_APP_KEY (default: the dev ones).
const path = require('node:path');
const net = require('node:net');
const { createRequire } = require('node:module');

const sdkRequire = createRequire(path.join(__dirname, '..', '..', 'tests', 'realtime', 'package.json'));
let sdk;
try {
  sdk = sdkRequire('leancloud-realtime');
} catch (error) {
  console.error(`rt-listen: the SDK is not installed (cd tests/realtime && npm ci): ${error.message}`);
  process.exit(2);
}
const { Realtime, Event, TextMessage } = sdk;

const [url, ...ids] = process.argv.slice(2);
if (!url || !/^wss?:\/\//.test(url) || ids.length === 0) {
  console.error('usage: rt-listen.js ws://HOST:PORT/ CLIENT_ID...');
  process.exit(2);
}

const say = line => process.stdout.write(`${line}\n`);
const short = id => (id && id.length > 12 ? `${id.slice(0, 8)}…` : id);
const show = message => {
  if (message instanceof TextMessage) {
    const attrs = message.getAttributes();
    return `TextMessage ${JSON.stringify(message.getText())}${attrs ? ` ${JSON.stringify(attrs)}` : ''}`;
  }
  return `Message ${JSON.stringify(message.content)}`;
};

/** A loopback port nothing listens on: the SDK's REST fallback (after a reconnect) goes nowhere. */
const deadPort = () =>
  new Promise(resolve => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

async function main() {
  const realtime = new Realtime({
    appId: process.env.LEANCLOUD_APP_ID || 'dev-app-id-gzGzoHsz',
    appKey: process.env.LEANCLOUD_APP_KEY || 'dev-app-key',
    RTMServers: url,
    server: `127.0.0.1:${await deadPort()}`,
  });
  let count = 0;
  const clients = [];
  for (const id of ids) {
    // eslint-disable-next-line no-await-in-loop
    const client = await realtime.createIMClient(id);
    clients.push(client);
    client.on(Event.MESSAGE, (message, conversation) => {
      count += 1;
      const kind = conversation.constructor.name;
      const name = conversation.name ? ` "${conversation.name}"` : '';
      say(`rt-listen: ${id} <- ${message.from} in ${kind} ${short(conversation.id)}${name}: ${show(message)}`);
    });
    client.on(Event.INVITED, ({ invitedBy }, conversation) =>
      say(`rt-listen: ${id} was added to ${short(conversation.id)} by ${invitedBy}`));
    client.on(Event.MEMBERS_JOINED, ({ members, invitedBy }, conversation) =>
      say(`rt-listen: ${id} sees ${members.join(', ')} join ${short(conversation.id)} (by ${invitedBy})`));
  }
  say(`rt-listen: listening as ${ids.join(', ')} on ${url}`);

  const stop = async () => {
    await Promise.race([
      Promise.allSettled(clients.map(client => client.close())),
      new Promise(resolve => setTimeout(resolve, 3000)),
    ]);
    say(`rt-listen: ${count} message(s) received`);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch(error => {
  console.error(`rt-listen: ${error.code ? `${error.code} ` : ''}${error.message}`);
  process.exit(1);
});
