'use strict';
// A LeanCloud Cloud Engine app as an app would re-host it: the official `leanengine` Node SDK, its realtime
// hooks defined with `AV.Cloud.onIM*`, served by express. It is configured the way LeanCloud configured
// engine containers, through the environment: LEANCLOUD_APP_ID, LEANCLOUD_APP_KEY, LEANCLOUD_APP_MASTER_KEY,
// LEANCLOUD_APP_HOOK_KEY (leanengine refuses hook calls whose X-LC-Hook-Key differs, with 401),
// LEANCLOUD_APP_PORT (0 = any free port; the chosen one is printed) and LEANCLOUD_API_SERVER (the storage
// API; here leancloud-server, so the app never contacts LeanCloud).
//
// The hooks:
// - _messageReceived: a text containing "spam" is dropped with code 4242; the bad word "darn" is rewritten
//   to "d**n"; anything else passes unchanged ({}).
// - _conversationStart: a conversation named "forbidden" is rejected with code 4343.

const AV = require('leanengine');
const express = require('express');

const env = process.env;
AV.init({
  appId: env.LEANCLOUD_APP_ID,
  appKey: env.LEANCLOUD_APP_KEY,
  masterKey: env.LEANCLOUD_APP_MASTER_KEY,
  hookKey: env.LEANCLOUD_APP_HOOK_KEY,
  serverURL: env.LEANCLOUD_API_SERVER,
});

const SPAM_CODE = 4242;
const FORBIDDEN_CODE = 4343;

/** The text of a message's `content`: the SDK's typed-message JSON (`_lctext`), or the raw string. */
function parseContent(content) {
  try {
    const typed = JSON.parse(content);
    if (typed && typeof typed === 'object' && typeof typed._lctext === 'string') {
      return { typed, text: typed._lctext };
    }
  } catch {
    // not JSON: a plain string message
  }
  return { typed: null, text: String(content) };
}

AV.Cloud.onIMMessageReceived((request) => {
  const { content, bin } = request.params;
  if (bin || typeof content !== 'string') return {};
  const { typed, text } = parseContent(content);
  if (/spam/i.test(text)) {
    return { drop: true, code: SPAM_CODE, detail: 'spam is not welcome here' };
  }
  if (/darn/i.test(text)) {
    const clean = text.replace(/darn/gi, 'd**n');
    return { content: typed ? JSON.stringify({ ...typed, _lctext: clean }) : clean };
  }
  return {};
});

AV.Cloud.onIMConversationStart((request) => {
  const attr = request.params.attr || {};
  if (attr.name === 'forbidden') {
    return { reject: true, code: FORBIDDEN_CODE, detail: 'forbidden conversations cannot be created' };
  }
  return {};
});

const app = express();
app.use(AV.express());

const server = app.listen(Number(env.LEANCLOUD_APP_PORT || 3000), '127.0.0.1', () => {
  console.log(`engine listening on ${server.address().port}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
