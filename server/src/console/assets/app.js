// leancloud-server console. Plain JavaScript, no dependencies. Every piece of stored data (names, attributes,
// message text) reaches the page through text nodes (`textContent`), never as HTML.
'use strict';

(function () {
  const state = { csrf: null, appId: '', live: null, timer: null };
  const $ = (sel) => document.querySelector(sel);

  // el('div', {class: 'x', onclick: fn}, 'text', child, …): strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }
  function append(node, ...children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  class ApiError extends Error {
    constructor(status, body) {
      super(body && typeof body.error === 'string' ? body.error : `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    if (method !== 'GET' && state.csrf) opts.headers['X-CSRF-Token'] = state.csrf;
    const res = await fetch('/console/api' + path, opts);
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (!res.ok) {
      const err = new ApiError(res.status, data);
      if (res.status === 401 && path !== '/session') showSignIn('Your session has ended: sign in again.');
      throw err;
    }
    return data;
  }

  // The server's answer as it gave it: HTTP status, LeanCloud code, message.
  function errorText(err) {
    if (err instanceof ApiError) {
      return `HTTP ${err.status}` + (err.code !== undefined && err.code !== null ? ` · code ${err.code}` : '') + ` · ${err.message}`;
    }
    return String(err && err.message || err);
  }
  function errorBox(err) { return el('div', { class: 'notice error', role: 'alert' }, errorText(err)); }
  function okBox(text) { return el('div', { class: 'notice ok', role: 'status' }, text); }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDate(v) {
    if (!v) return '—';
    if (typeof v === 'object' && v.iso) v = v.iso;
    const t = Date.parse(v);
    return Number.isNaN(t) ? String(v) : fmtTime(t);
  }
  function show(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && v.__type === 'Date') return fmtDate(v);
    return JSON.stringify(v);
  }
  function fmtSecs(s) {
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function splitIds(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }
  function badge(kind) { return el('span', { class: 'badge ' + kind }, kind.replace('_', ' ')); }
  function hashParams() {
    const q = location.hash.split('?')[1] || '';
    return new URLSearchParams(q);
  }

  // ---- sign-in ----------------------------------------------------------------------------------------

  function showSignIn(message) {
    stopLive();
    state.csrf = null;
    $('#app').hidden = true;
    $('#signin').hidden = false;
    const e = $('#signin-error');
    e.hidden = !message;
    e.textContent = message || '';
    $('#master-key').focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('#master-key');
    const button = $('#signin-button');
    button.disabled = true;
    try {
      const s = await api('POST', '/session', { masterKey: input.value });
      input.value = '';
      startApp(s);
    } catch (err) {
      const e = $('#signin-error');
      e.hidden = false;
      e.textContent = err.status === 401 ? `${err.message} Check the key and try again.` : errorText(err);
      input.select();
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    try { await api('DELETE', '/session'); } catch (_) { /* signed out anyway */ }
    showSignIn('Signed out.');
  }

  function startApp(session) {
    state.csrf = session.csrfToken;
    state.appId = session.appId;
    $('#app-id').textContent = session.appId;
    $('#signin').hidden = true;
    $('#app').hidden = false;
    route();
  }

  // ---- routing ----------------------------------------------------------------------------------------

  function stopLive() {
    if (state.live) { state.live.close(); state.live = null; }
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
  }

  function route() {
    if (!state.csrf) return;
    stopLive();
    const path = location.hash.replace(/^#/, '').split('?')[0] || '/conversations';
    const parts = path.split('/').filter(Boolean);
    const view = clear($('#view'));
    let page = parts[0] || 'conversations';
    if (page === 'conversation' && parts[1]) {
      renderConversation(view, decodeURIComponent(parts.slice(1).join('/')));
      page = 'conversations';
    } else if (page === 'live') renderLive(view);
    else if (page === 'send') renderSend(view);
    else if (page === 'operations') renderOperations(view);
    else if (page === 'pushes') renderPushes(view);
    else if (page === 'permissions') renderPermissions(view);
    else { page = 'conversations'; renderConversations(view); }
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  }

  // A live stream of stored messages (server-sent events); `onMessage` gets each message object.
  function openLive(conv, indicator, onMessage) {
    const url = '/console/api/live' + (conv ? '?conv=' + encodeURIComponent(conv) : '');
    const source = new EventSource(url);
    state.live = source;
    const set = (on, text) => { indicator.classList.toggle('on', on); indicator.textContent = text; };
    set(false, 'connecting…');
    source.addEventListener('ready', () => set(true, 'live'));
    source.addEventListener('message', (ev) => {
      try { onMessage(JSON.parse(ev.data)); } catch (_) { /* ignore a malformed event */ }
    });
    source.addEventListener('lagged', (ev) => {
      try { set(true, `live (missed ${JSON.parse(ev.data).missed}; reload for them)`); } catch (_) { /* */ }
    });
    source.onerror = () => set(false, 'reconnecting…');
    return source;
  }

  // ---- conversations ----------------------------------------------------------------------------------

  function renderConversations(view) {
    const params = hashParams();
    const q = params.get('q') || '';
    const kind = params.get('kind') || '';
    const skip = Math.max(0, parseInt(params.get('skip') || '0', 10) || 0);
    const limit = 20;
    const go = (p) => {
      const u = new URLSearchParams();
      if (p.q) u.set('q', p.q);
      if (p.kind) u.set('kind', p.kind);
      if (p.skip) u.set('skip', String(p.skip));
      location.hash = '#/conversations' + (u.toString() ? '?' + u : '');
    };

    const search = el('input', { type: 'text', id: 'search', placeholder: 'Search by id, name or member', value: q });
    const kindSelect = el('select', { id: 'kind-filter', 'aria-label': 'Kind' },
      [['', 'All kinds'], ['normal', 'Normal'], ['system', 'System'], ['transient', 'Transient']].map(([v, t]) =>
        el('option', { value: v, selected: v === kind }, t)));
    const searchForm = el('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); go({ q: search.value.trim(), kind: kindSelect.value }); } },
      search, kindSelect, el('button', { type: 'submit', class: 'primary' }, 'Search'),
      (q || kind) ? el('button', { type: 'button', onclick: () => go({}) }, 'Clear') : null);
    kindSelect.addEventListener('change', () => go({ q: search.value.trim(), kind: kindSelect.value }));

    // New conversation.
    const name = el('input', { type: 'text', id: 'new-name', placeholder: 'e.g. Support room' });
    const members = el('input', { type: 'text', id: 'new-members', placeholder: 'alice, bob' });
    const newKind = el('select', { id: 'new-kind' }, el('option', { value: 'normal' }, 'Normal'),
      el('option', { value: 'system' }, 'System'), el('option', { value: 'transient' }, 'Transient (chat room)'));
    const attrs = el('textarea', { id: 'new-attributes', placeholder: '{"topic": "billing"}' });
    const createResult = el('div');
    const createForm = el('form', { class: 'card', id: 'create-form', hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      clear(createResult);
      let attributes;
      if (attrs.value.trim()) {
        try { attributes = JSON.parse(attrs.value); } catch (err) { createResult.appendChild(errorBox('Custom attributes: not valid JSON: ' + err.message)); return; }
      }
      try {
        const conv = await api('POST', '/conversations', { name: name.value, members: splitIds(members.value), kind: newKind.value, attributes });
        location.hash = '#/conversation/' + encodeURIComponent(conv.objectId);
      } catch (err) { createResult.appendChild(errorBox(err)); }
    } },
    el('h2', {}, 'New conversation'),
    el('div', { class: 'grid3' },
      el('div', {}, el('label', { for: 'new-name' }, 'Name'), name),
      el('div', {}, el('label', { for: 'new-members' }, 'Members'), members, el('div', { class: 'hint' }, 'Client ids, separated by commas or spaces')),
      el('div', {}, el('label', { for: 'new-kind' }, 'Kind'), newKind)),
    el('label', { for: 'new-attributes' }, 'Custom attributes (JSON object, optional)'), attrs,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', id: 'create-submit' }, 'Create conversation'),
      el('button', { type: 'button', onclick: () => { createForm.hidden = true; } }, 'Cancel')),
    createResult);

    const tableBox = el('div', { class: 'card table-card' });
    append(view, el('div', { class: 'page-head' },
      el('div', {}, el('h1', {}, 'Conversations'), el('div', { class: 'muted' }, 'Every _Conversation of the app, newest first')),
      el('button', { class: 'primary', id: 'new-conversation', onclick: () => { createForm.hidden = false; name.focus(); } }, 'New conversation')),
    createForm, el('div', { class: 'card' }, searchForm), tableBox);

    const qs = new URLSearchParams({ skip: String(skip), limit: String(limit) });
    if (q) qs.set('q', q);
    if (kind) qs.set('kind', kind);
    api('GET', '/conversations?' + qs).then((page) => {
      const rows = page.results.map((c) => {
        const m = Array.isArray(c.m) ? c.m : [];
        const href = '#/conversation/' + encodeURIComponent(c.objectId);
        return el('tr', {},
          el('td', {}, el('a', { href, class: 'conv-name' }, c.name === undefined || c.name === null ? '(no name)' : show(c.name))),
          el('td', { class: 'mono nowrap' }, c.objectId),
          el('td', {}, badge(c.kind)),
          el('td', { class: 'text' }, `${m.length}`, m.length ? el('span', { class: 'muted' }, ' · ' + m.slice(0, 4).map(show).join(', ') + (m.length > 4 ? ', …' : '')) : null),
          el('td', { class: 'nowrap' }, fmtDate(c.lm)),
          el('td', { class: 'nowrap' }, fmtDate(c.createdAt)));
      });
      const from = page.count ? skip + 1 : 0;
      const to = skip + page.results.length;
      append(tableBox,
        el('table', { id: 'conversations' },
          el('thead', {}, el('tr', {}, ['Name', 'ID', 'Kind', 'Members', 'Last message', 'Created'].map((h) => el('th', {}, h)))),
          el('tbody', {}, rows)),
        page.results.length ? null : el('div', { class: 'empty' }, q || kind ? 'No conversation matches.' : 'No conversations yet.'),
        el('div', { class: 'pager' },
          el('span', { id: 'page-info', class: 'muted' }, `${from}–${to} of ${page.count}`),
          el('div', { class: 'row' },
            el('button', { id: 'prev-page', disabled: skip === 0, onclick: () => go({ q, kind, skip: Math.max(0, skip - limit) }) }, '← Previous'),
            el('button', { id: 'next-page', disabled: to >= page.count, onclick: () => go({ q, kind, skip: skip + limit }) }, 'Next →'))));
    }).catch((err) => tableBox.appendChild(errorBox(err)));
  }

  // ---- one conversation -------------------------------------------------------------------------------

  function messageRow(m, withConv) {
    const to = m.recipients && m.recipients.length ? el('div', { class: 'hint' }, 'to ' + m.recipients.join(', ')) : null;
    return el('tr', { 'data-msg-id': m.msgId },
      el('td', { class: 'nowrap' }, fmtTime(m.timestamp)),
      withConv ? el('td', { class: 'mono nowrap' }, el('a', { href: '#/conversation/' + encodeURIComponent(m.convId) }, m.convId)) : null,
      el('td', { class: 'nowrap' }, m.from),
      el('td', {}, badge(m.kind), m.transient ? el('span', { class: 'hint' }, ' transient') : null),
      el('td', { class: 'text message-text' }, m.binary ? '(binary, base64) ' + m.data : m.data, to));
  }

  function renderConversation(view, id) {
    const head = el('div', { class: 'page-head' });
    const left = el('div');
    const right = el('div');
    append(view, head, el('div', { class: 'grid' }, left, right));

    const fieldsCard = el('div', { class: 'card', id: 'fields' });
    const attrsCard = el('div', { class: 'card', id: 'attributes' });
    const membersCard = el('div', { class: 'card', id: 'members' });
    append(left, fieldsCard, attrsCard, membersCard);

    // Send form.
    const from = el('input', { type: 'text', id: 'send-from', placeholder: 'client id, e.g. alice' });
    const text = el('textarea', { id: 'send-text', placeholder: 'Message text' });
    const transient = el('input', { type: 'checkbox', id: 'send-transient' });
    const sendResult = el('div');
    const sendForm = el('form', { class: 'card', id: 'send-form', onsubmit: async (e) => {
      e.preventDefault();
      clear(sendResult);
      try {
        const r = await api('POST', '/messages', { convId: id, from: from.value, message: text.value, transient: transient.checked });
        text.value = '';
        sendResult.appendChild(okBox(`Sent ${r.msgId} at ${fmtTime(r.timestamp)}`));
        addMessage(r.message);
      } catch (err) { sendResult.appendChild(errorBox(err)); }
    } },
    el('h2', {}, 'Send a message'),
    el('label', { for: 'send-from' }, 'From (any client id)'), from,
    el('label', { for: 'send-text' }, 'Text'), text,
    el('label', { class: 'check' }, transient, 'Transient (not kept for offline members)'),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', id: 'send-submit' }, 'Send')),
    sendResult);

    const indicator = el('span', { class: 'live-dot', id: 'live-status' }, 'connecting…');
    const tbody = el('tbody', { id: 'messages-body' });
    const empty = el('div', { class: 'empty', id: 'messages-empty', hidden: true }, 'No messages yet.');
    const pagerInfo = el('span', { class: 'muted', id: 'messages-info' });
    const newer = el('button', { id: 'newer-page' }, '← Newer');
    const older = el('button', { id: 'older-page' }, 'Older →');
    const messagesCard = el('div', { class: 'card table-card', id: 'messages' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Messages ', el('span', { class: 'muted' }, '(newest first)')), indicator),
      el('table', {}, el('thead', {}, el('tr', {}, ['Time', 'From', 'Kind', 'Text'].map((h) => el('th', {}, h)))), tbody),
      empty,
      el('div', { class: 'pager' }, pagerInfo, el('div', { class: 'row' }, newer, older)));
    append(right, sendForm, messagesCard);

    // Paging: a stack of cursors; live messages are added while the first page is shown.
    const cursors = [null];
    let total = 0;
    const seen = new Set();
    function addMessage(m) {
      if (cursors.length !== 1 || seen.has(m.msgId)) return;
      seen.add(m.msgId);
      total += 1;
      empty.hidden = true;
      tbody.insertBefore(messageRow(m, false), tbody.firstChild);
      pagerInfo.textContent = `${total} message${total === 1 ? '' : 's'}`;
    }
    async function loadMessages() {
      const cursor = cursors[cursors.length - 1];
      const qs = new URLSearchParams({ limit: '20' });
      if (cursor !== null) qs.set('before', String(cursor));
      try {
        const page = await api('GET', `/conversations/${encodeURIComponent(id)}/messages?${qs}`);
        clear(tbody);
        seen.clear();
        total = page.total;
        for (const m of page.results) { seen.add(m.msgId); tbody.appendChild(messageRow(m, false)); }
        empty.hidden = page.results.length > 0;
        pagerInfo.textContent = `${total} message${total === 1 ? '' : 's'}` + (cursors.length > 1 ? ` · page ${cursors.length}` : '');
        newer.disabled = cursors.length === 1;
        older.disabled = page.next === null || page.next === undefined;
        older.onclick = () => { cursors.push(page.next); loadMessages(); };
      } catch (err) { clear(tbody); messagesCard.appendChild(errorBox(err)); }
    }
    newer.onclick = () => { if (cursors.length > 1) { cursors.pop(); loadMessages(); } };

    function renderMembers(conv) {
      clear(membersCard);
      const m = Array.isArray(conv.m) ? conv.m : [];
      const input = el('input', { type: 'text', id: 'add-member', placeholder: 'client ids, e.g. carol, dave' });
      const result = el('div');
      append(membersCard,
        el('h2', {}, `Members (${m.length})`),
        m.length ? el('ul', { class: 'members', id: 'member-list' }, m.map((member) => el('li', {},
          el('span', { class: 'member' }, show(member)),
          el('button', { class: 'link', type: 'button', title: 'Remove ' + show(member), onclick: async () => {
            clear(result);
            try { const c = await api('DELETE', `/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(member)}`); renderMembers(c); } catch (err) { result.appendChild(errorBox(err)); }
          } }, 'Remove')))) : el('p', { class: 'muted', id: 'member-list' }, 'No members.'),
        el('form', { class: 'row', onsubmit: async (e) => {
          e.preventDefault();
          clear(result);
          try {
            const c = await api('POST', `/conversations/${encodeURIComponent(id)}/members`, { clientIds: splitIds(input.value) });
            renderMembers(c);
          } catch (err) { result.appendChild(errorBox(err)); }
        } }, input, el('button', { type: 'submit', class: 'primary', id: 'add-member-submit' }, 'Add')),
        result);
    }

    api('GET', '/conversations/' + encodeURIComponent(id)).then((conv) => {
      append(head,
        el('div', {},
          el('div', { class: 'muted' }, el('a', { href: '#/conversations' }, 'Conversations'), ' / ', el('span', { class: 'mono' }, conv.objectId)),
          el('h1', { id: 'conv-title' }, conv.name === undefined || conv.name === null ? '(no name)' : show(conv.name), ' ', badge(conv.kind))),
        el('div', { class: 'row' },
          conv.kind === 'system' ? el('a', { href: '#/send?conv=' + encodeURIComponent(conv.objectId) }, 'System message or broadcast →') : null));
      const fields = [
        ['objectId', conv.objectId], ['name', conv.name], ['kind', conv.kind], ['creator (c)', conv.c],
        ['unique', conv.unique ? 'yes' : 'no'], ['muted (mu)', conv.mu], ['last message (lm)', fmtDate(conv.lm)],
        ['messages stored', conv.messageCount], ['created', fmtDate(conv.createdAt)], ['updated', fmtDate(conv.updatedAt)],
      ];
      append(fieldsCard, el('h2', {}, 'Fields'),
        el('dl', { class: 'fields' }, fields.filter(([, v]) => v !== undefined).map(([k, v]) => [el('dt', {}, k), el('dd', { class: k === 'objectId' ? 'mono' : null }, show(v))])));
      const attrs = Object.entries(conv.attributes || {});
      append(attrsCard, el('h2', {}, 'Custom attributes'),
        attrs.length ? el('dl', { class: 'fields', id: 'attribute-list' }, attrs.map(([k, v]) => [el('dt', { class: 'mono' }, k), el('dd', { class: 'mono' }, show(v))]))
          : el('p', { class: 'muted' }, 'None.'));
      renderMembers(conv);
      loadMessages();
      openLive(id, indicator, addMessage);
    }).catch((err) => {
      append(head, el('h1', {}, 'Conversation'));
      view.appendChild(errorBox(err));
    });
  }

  // ---- live -------------------------------------------------------------------------------------------

  function renderLive(view) {
    const indicator = el('span', { class: 'live-dot', id: 'live-status' }, 'connecting…');
    const tbody = el('tbody', { id: 'live-body' });
    const empty = el('div', { class: 'empty', id: 'live-empty' }, 'Waiting for messages… anything stored from now on (REST, functions, realtime clients, this console) appears here.');
    const count = el('span', { class: 'muted', id: 'live-count' }, '0 messages');
    let n = 0;
    append(view,
      el('div', { class: 'page-head' },
        el('div', {}, el('h1', {}, 'Live'), el('div', { class: 'muted' }, 'Every message of the app as it is stored, newest first')),
        el('button', { onclick: () => { clear(tbody); n = 0; count.textContent = '0 messages'; empty.hidden = false; } }, 'Clear')),
      el('div', { class: 'card table-card' },
        el('div', { class: 'card-head' }, count, indicator),
        el('table', {}, el('thead', {}, el('tr', {}, ['Time', 'Conversation', 'From', 'Kind', 'Text'].map((h) => el('th', {}, h)))), tbody),
        empty));
    openLive(null, indicator, (m) => {
      empty.hidden = true;
      tbody.insertBefore(messageRow(m, true), tbody.firstChild);
      while (tbody.children.length > 500) tbody.removeChild(tbody.lastChild);
      n += 1;
      count.textContent = `${n} message${n === 1 ? '' : 's'}`;
    });
  }

  // ---- send -------------------------------------------------------------------------------------------

  function quotaText(q) {
    const day = q.broadcastsPerDay;
    const minute = q.broadcastsPerMinute;
    const parts = [];
    parts.push(day.limit === null ? 'No daily broadcast limit (rate limits off).' : `Broadcasts left today: ${day.remaining} of ${day.limit} (resets at 00:00 UTC).`);
    if (minute.limit !== null) parts.push(`This minute: ${minute.limit - minute.used} of ${minute.limit}.`);
    return parts.join(' ');
  }

  function renderSend(view) {
    const conv = hashParams().get('conv') || '';
    const field = (id, label, attrs) => [el('label', { for: id }, label), el(attrs && attrs.multiline ? 'textarea' : 'input', Object.assign({ type: 'text', id }, attrs || {}))];

    // A message as any client id.
    const [l1, c1] = field('msg-conv', 'Conversation id', { value: conv });
    const [l2, f1] = field('msg-from', 'From (any client id)');
    const [l3, t1] = field('msg-text', 'Text', { multiline: true });
    const tr1 = el('input', { type: 'checkbox', id: 'msg-transient' });
    const r1 = el('div', { id: 'msg-result' });
    const msgForm = el('form', { class: 'card', id: 'message-form', onsubmit: async (e) => {
      e.preventDefault(); clear(r1);
      try { const r = await api('POST', '/messages', { convId: c1.value, from: f1.value, message: t1.value, transient: tr1.checked }); r1.appendChild(okBox(`Sent ${r.msgId} at ${fmtTime(r.timestamp)}`)); } catch (err) { r1.appendChild(errorBox(err)); }
    } }, el('h2', {}, 'Message as a client'), l1, c1, l2, f1, l3, t1, el('label', { class: 'check' }, tr1, 'Transient'),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', id: 'msg-submit' }, 'Send message')), r1);

    // A system message to chosen clients.
    const [l4, c2] = field('sys-conv', 'System conversation id', { value: conv });
    const [l5, f2] = field('sys-from', 'From');
    const [l6, to] = field('sys-to', 'To clients (up to 20)', { placeholder: 'alice, bob' });
    const [l7, t2] = field('sys-text', 'Text', { multiline: true });
    const r2 = el('div', { id: 'sys-result' });
    const sysForm = el('form', { class: 'card', id: 'system-form', onsubmit: async (e) => {
      e.preventDefault(); clear(r2);
      try { const r = await api('POST', '/messages', { convId: c2.value, from: f2.value, message: t2.value, toClients: splitIds(to.value) }); r2.appendChild(okBox(`Sent ${r.msgId} to ${splitIds(to.value).join(', ')}`)); } catch (err) { r2.appendChild(errorBox(err)); }
    } }, el('h2', {}, 'System message to chosen clients'), l4, c2, l5, f2, l6, to, l7, t2,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', id: 'sys-submit' }, 'Send to these clients')), r2);

    // A broadcast, confirmed first.
    const [l8, c3] = field('bc-conv', 'System conversation id', { value: conv });
    const [l9, f3] = field('bc-from', 'From');
    const [l10, t3] = field('bc-text', 'Text', { multiline: true });
    const hours = el('input', { type: 'number', id: 'bc-hours', min: '1', max: '744', placeholder: '720 (a month)' });
    const quota = el('p', { class: 'quota muted', id: 'quota' }, 'Loading the quota…');
    const r3 = el('div', { id: 'bc-result' });
    const confirmBox = el('div', { class: 'notice confirm', id: 'bc-confirm', hidden: true });
    const refreshQuota = () => api('GET', '/quota').then((q) => { quota.textContent = quotaText(q); }).catch((err) => { quota.textContent = errorText(err); });
    const review = el('button', { type: 'submit', class: 'primary', id: 'bc-review' }, 'Review broadcast…');
    const bcForm = el('form', { class: 'card', id: 'broadcast-form', onsubmit: (e) => {
      e.preventDefault(); clear(r3);
      if (!c3.value.trim() || !f3.value.trim() || !t3.value) { r3.appendChild(errorBox('Fill in the conversation, the sender and the text.')); return; }
      const validTill = hours.value ? Date.now() + Number(hours.value) * 3600 * 1000 : undefined;
      clear(confirmBox);
      append(confirmBox,
        el('strong', {}, 'Send this broadcast to every client of the app?'),
        el('div', {}, `From ${f3.value} in ${c3.value}` + (validTill ? `, valid until ${fmtTime(validTill)}` : ', valid for a month') + '. Clients that log in later get it too while it is valid.'),
        el('div', { class: 'preview', id: 'bc-preview' }, t3.value),
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'danger', id: 'bc-confirm-button', onclick: async (ev) => {
            ev.target.disabled = true;
            try {
              const r = await api('POST', '/broadcasts', { convId: c3.value, from: f3.value, message: t3.value, validTill });
              r3.appendChild(okBox(`Broadcast ${r.msgId} sent at ${fmtTime(r.timestamp)}`));
            } catch (err) { r3.appendChild(errorBox(err)); }
            confirmBox.hidden = true; review.disabled = false; refreshQuota();
          } }, 'Confirm broadcast'),
          el('button', { type: 'button', id: 'bc-cancel', onclick: () => { confirmBox.hidden = true; review.disabled = false; } }, 'Cancel')));
      confirmBox.hidden = false;
      review.disabled = true;
    } }, el('h2', {}, 'Broadcast'), quota, l8, c3, l9, f3, l10, t3,
    el('label', { for: 'bc-hours' }, 'Valid for (hours, optional)'), hours,
    el('div', { class: 'actions' }, review), confirmBox, r3);

    append(view,
      el('div', { class: 'page-head' }, el('div', {}, el('h1', {}, 'Send'), el('div', { class: 'muted' }, 'Through the server\u2019s one send path: hooks, storage, delivery to connected clients'))),
      el('div', { class: 'grid3' }, msgForm, sysForm, bcForm));
    refreshQuota();
  }

  // ---- operations -------------------------------------------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }

  function chart(points) {
    const W = 900, H = 220, L = 40, B = 24, T = 10, R = 10;
    const max = Math.max(1, ...points.map((p) => p.count));
    const step = (W - L - R) / points.length;
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', id: 'chart', role: 'img', 'aria-label': 'Messages per minute, last hour' });
    for (const v of [0, max / 2, max]) {
      root.appendChild(svg('line', { class: 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      root.appendChild(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(Math.round(v))));
    }
    points.forEach((p, i) => {
      const h = (H - T - B) * (p.count / max);
      const bar = svg('rect', { class: 'bar' + (i === points.length - 1 ? ' now' : ''), x: L + i * step + 1, y: y(p.count), width: Math.max(1, step - 2), height: Math.max(0, h) },
        svg('title', {}, `${fmtDate(p.minute)}: ${p.count}`));
      root.appendChild(bar);
      if (i % 10 === 0 || i === points.length - 1) {
        const d = new Date(Date.parse(p.minute));
        const label = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
        root.appendChild(svg('text', { x: L + i * step + step / 2, y: H - 6, 'text-anchor': 'middle' }, label));
      }
    });
    return root;
  }

  function renderOperations(view) {
    const body = el('div');
    append(view,
      el('div', { class: 'page-head' },
        el('div', {}, el('h1', {}, 'Operations'), el('div', { class: 'muted' }, 'Refreshed every 5 seconds')),
        el('button', { onclick: () => load() }, 'Refresh')),
      body);
    function bucketRow(name, b) {
      const pct = b.limit ? Math.round((100 * b.used) / b.limit) : null;
      return el('tr', {}, el('td', {}, name), el('td', {}, b.limit === null ? 'off' : String(b.limit)), el('td', {}, String(b.used)),
        el('td', {}, b.remaining === null ? '—' : String(b.remaining)), el('td', {}, pct === null ? '—' : pct + '%'),
        el('td', {}, b.resetsInSecs ? fmtSecs(b.resetsInSecs) : '—'));
    }
    async function load() {
      try {
        const ops = await api('GET', '/operations');
        const tile = (label, value, id) => el('div', { class: 'tile' }, el('div', { class: 'muted' }, label), el('div', { class: 'value', id }, String(value)));
        const rl = ops.rateLimits;
        clear(body);
        append(body,
          el('div', { class: 'tiles' },
            tile('Online clients', ops.onlineClients, 'online-clients'), tile('Sessions', ops.sessions, 'session-count'),
            tile('Messages, last hour', ops.messagesLastHour, 'messages-hour'), tile('Delivered since start', ops.delivered, 'delivered'),
            tile('Live viewers', ops.liveViewers, 'live-viewers')),
          el('div', { class: 'card' }, el('h2', {}, 'Messages per minute, last hour'), chart(ops.messagesPerMinute)),
          el('div', { class: 'grid' },
            el('div', { class: 'card table-card' }, el('div', { class: 'card-head' }, el('h2', {}, 'Connected clients')),
              ops.clients.length ? el('table', { id: 'clients' },
                el('thead', {}, el('tr', {}, el('th', {}, 'Client id'), el('th', {}, 'Sessions (connection · tag)'))),
                el('tbody', {}, ops.clients.map((c) => el('tr', {}, el('td', { class: 'mono' }, c.clientId),
                  el('td', {}, c.sessions.map((s) => `#${s.connection}` + (s.tag ? ` · ${s.tag}` : '')).join(', '))))))
                : el('div', { class: 'empty' }, 'No realtime client is connected.')),
            el('div', { class: 'card table-card' }, el('div', { class: 'card-head' }, el('h2', {}, 'Rate-limit buckets')),
              el('table', { id: 'buckets' },
                el('thead', {}, el('tr', {}, ['Bucket', 'Limit', 'Used', 'Left', 'Usage', 'Window ends'].map((h) => el('th', {}, h)))),
                el('tbody', {}, bucketRow('Messages / minute', rl.messagesPerMinute), bucketRow('Broadcasts / minute', rl.broadcastsPerMinute),
                  bucketRow('Broadcasts / day', rl.broadcastsPerDay))))));
      } catch (err) { clear(body); body.appendChild(errorBox(err)); }
    }
    load();
    state.timer = setInterval(load, 5000);
  }

  // ---- pushes -----------------------------------------------------------------------------------------

  const PUSH_STATES = ['pending', 'sent', 'failed', 'invalid', 'unsupported', 'expired'];
  const PUSH_SOURCES = { rtm: 'IM message', api: 'Push API' };

  function renderPushes(view) {
    const params = hashParams();
    const wanted = PUSH_STATES.includes(params.get('state')) ? params.get('state') : '';
    const ref = params.get('ref_id') || '';
    const go = (p) => {
      const u = new URLSearchParams();
      if (p.state) u.set('state', p.state);
      if (p.ref) u.set('ref_id', p.ref);
      location.hash = '#/pushes' + (u.toString() ? '?' + u : '');
    };
    const stateSelect = el('select', { id: 'push-state', 'aria-label': 'State' },
      el('option', { value: '' }, 'All states'),
      PUSH_STATES.map((s) => el('option', { value: s, selected: s === wanted }, s)));
    stateSelect.addEventListener('change', () => go({ state: stateSelect.value, ref }));
    const summary = el('div', { class: 'push-summary', id: 'push-summary' }, 'Loading…');
    const tableBox = el('div', { class: 'card table-card' });
    append(view,
      el('div', { class: 'page-head' },
        el('div', {}, el('h1', {}, 'Pushes'),
          el('div', { class: 'muted' }, 'The newest jobs of the push queue (IM offline pushes and the push API) and what became of them. Refreshed every 5 seconds')),
        el('div', { class: 'row' }, stateSelect,
          (wanted || ref) ? el('button', { type: 'button', id: 'push-clear', onclick: () => go({}) }, 'Clear') : null,
          el('button', { type: 'button', id: 'push-refresh', onclick: () => load() }, 'Refresh'))),
      ref ? el('div', { class: 'card', id: 'push-ref' }, 'Only the jobs of ', el('span', { class: 'mono' }, ref), '.') : null,
      el('div', { class: 'card' }, summary),
      tableBox);

    function row(j) {
      const refLink = el('a', { href: '#/pushes?' + new URLSearchParams({ ref_id: j.refId }), class: 'mono', title: 'Only this ' + (j.source === 'api' ? 'notification' : 'message') }, j.refId);
      const due = j.dueAt > j.createdAt + 1000 ? el('div', { class: 'hint' }, 'due ' + fmtTime(j.dueAt)) : null;
      return el('tr', { 'data-job-id': j.id, 'data-state': j.state, 'data-source': j.source },
        el('td', { class: 'push-time' }, fmtTime(j.createdAt), due),
        el('td', { class: 'nowrap' }, PUSH_SOURCES[j.source] || j.source),
        el('td', {}, refLink, el('div', { class: 'hint mono push-payload', title: 'Payload' }, JSON.stringify(j.payload))),
        el('td', { class: 'nowrap' }, j.platform),
        el('td', { class: 'mono nowrap', title: 'Device token, shortened' }, j.target || '—'),
        el('td', {}, el('span', { class: 'badge state-' + j.state }, j.state)),
        el('td', {}, String(j.attempts)),
        j.error === null || j.error === undefined ? el('td', { class: 'muted' }, '—') : el('td', { class: 'text push-error' }, j.error),
        el('td', { class: 'push-time' }, fmtTime(j.doneAt)));
    }

    async function load() {
      const qs = new URLSearchParams({ limit: '100' });
      if (wanted) qs.set('state', wanted);
      if (ref) qs.set('ref_id', ref);
      try {
        const data = await api('GET', '/pushes?' + qs);
        clear(summary);
        append(summary,
          el('span', { id: 'push-total' }, `${data.total} newest job${data.total === 1 ? '' : 's'}:`),
          PUSH_STATES.map((s) => el('span', { class: 'push-count' + (data.counts[s] ? '' : ' none'), 'data-state': s },
            el('span', { class: 'badge state-' + s }, s), ' ', el('strong', { id: 'push-count-' + s }, String(data.counts[s])))));
        clear(tableBox);
        append(tableBox,
          el('div', { class: 'table-scroll' }, el('table', { id: 'pushes' },
            el('thead', {}, el('tr', {}, ['Created', 'Source', 'Message / notification', 'Platform', 'Device', 'State', 'Attempts', 'Last error', 'Done'].map((h) => el('th', {}, h)))),
            el('tbody', {}, data.results.map(row)))),
          data.results.length ? null : el('div', { class: 'empty' }, wanted ? `No ${wanted} job among the newest ${data.limit}.` : 'No push queued yet.'));
      } catch (err) { clear(tableBox); tableBox.appendChild(errorBox(err)); }
    }
    load();
    state.timer = setInterval(load, 5000);
  }

  // ---- class permissions ------------------------------------------------------------------------------

  const PERM_OPS = ['get', 'find', 'create', 'update', 'delete', 'add_fields'];

  function permText(p) {
    if (p['*']) return 'everyone';
    if (p.onlySignInUsers) return 'signed-in users';
    const users = p.users || []; const roles = p.roles || [];
    if (!users.length && !roles.length) return 'master key only';
    return [users.length ? 'users: ' + users.join(', ') : null, roles.length ? 'roles: ' + roles.join(', ') : null].filter(Boolean).join('; ');
  }

  function renderPermissions(view) {
    const list = el('div');
    const result = el('div');
    const classInput = el('input', { type: 'text', id: 'perm-class', placeholder: 'Class name, e.g. _Conversation', required: true });
    const rows = {};
    const form = el('form', { id: 'perm-form', class: 'card', onsubmit: (ev) => { ev.preventDefault(); save(); } },
      el('h2', {}, 'Set a class\u2019s permissions'),
      el('label', { for: 'perm-class' }, 'Class'), classInput,
      el('table', {},
        el('thead', {}, el('tr', {}, ['Operation', 'Who', 'Users (ids)', 'Roles (names)'].map((h) => el('th', {}, h)))),
        el('tbody', {}, PERM_OPS.map((op) => {
          const who = el('select', { id: `perm-${op}`, 'aria-label': `${op}: who` },
            el('option', { value: 'everyone' }, 'Everyone'), el('option', { value: 'signed-in' }, 'Signed-in users'),
            el('option', { value: 'named' }, 'Named users and roles (none: master key only)'));
          const users = el('input', { type: 'text', id: `perm-${op}-users`, 'aria-label': `${op}: users`, placeholder: 'id, id' });
          const roles = el('input', { type: 'text', id: `perm-${op}-roles`, 'aria-label': `${op}: roles`, placeholder: 'Role, Role' });
          rows[op] = { who, users, roles };
          return el('tr', {}, el('td', { class: 'mono' }, op), el('td', {}, who), el('td', {}, users), el('td', {}, roles));
        }))),
      el('div', { class: 'actions' },
        el('button', { id: 'perm-save', class: 'primary', type: 'submit' }, 'Save'),
        el('button', { id: 'perm-reset', type: 'button', onclick: () => reset() }, 'Reset to defaults')),
      result);
    append(view,
      el('div', { class: 'page-head' },
        el('div', {}, el('h1', {}, 'Class permissions'),
          el('div', { class: 'muted' }, 'Who may get, find, create, update, delete and add fields to a class\u2019s objects. The master key always may; ACLs still apply to each object.'))),
      list, form);

    function fill(summary) {
      classInput.value = summary.className;
      for (const op of PERM_OPS) {
        const p = summary.permissions[op] || { '*': true };
        const r = rows[op];
        r.who.value = p['*'] ? 'everyone' : p.onlySignInUsers ? 'signed-in' : 'named';
        r.users.value = (p.users || []).join(', ');
        r.roles.value = (p.roles || []).join(', ');
      }
    }
    function collect() {
      const out = {};
      for (const op of PERM_OPS) {
        const r = rows[op];
        if (r.who.value === 'everyone') out[op] = { '*': true };
        else if (r.who.value === 'signed-in') out[op] = { onlySignInUsers: true };
        else out[op] = { users: splitIds(r.users.value), roles: splitIds(r.roles.value) };
      }
      return out;
    }
    async function save() {
      const cls = classInput.value.trim();
      try {
        const saved = await api('PUT', '/permissions/' + encodeURIComponent(cls), collect());
        fill(saved);
        clear(result).appendChild(okBox(`Saved the permissions of ${saved.className}.`));
        load();
      } catch (err) { clear(result).appendChild(errorBox(err)); }
    }
    async function reset() {
      const cls = classInput.value.trim();
      try {
        const back = await api('DELETE', '/permissions/' + encodeURIComponent(cls));
        fill(back);
        clear(result).appendChild(okBox(`${back.className} has its default permissions again.`));
        load();
      } catch (err) { clear(result).appendChild(errorBox(err)); }
    }
    async function load() {
      try {
        const data = await api('GET', '/permissions');
        clear(list);
        append(list, el('div', { class: 'card table-card' },
          el('div', { class: 'card-head' }, el('h2', {}, 'Classes with permissions set'), el('span', { class: 'muted' }, 'Other classes are open to everyone.')),
          el('table', { id: 'permissions' },
            el('thead', {}, el('tr', {}, el('th', {}, 'Class'), PERM_OPS.map((op) => el('th', {}, op)), el('th', {}, ''))),
            el('tbody', {}, data.results.map((c) => el('tr', { 'data-class': c.className },
              el('td', { class: 'mono' }, c.className, c.default ? el('span', { class: 'muted' }, ' (default)') : null),
              PERM_OPS.map((op) => el('td', {}, permText(c.permissions[op]))),
              el('td', {}, el('button', { type: 'button', onclick: () => fill(c) }, 'Edit'))))))));
      } catch (err) { clear(list); list.appendChild(errorBox(err)); }
    }
    load();
  }

  // ---- start ------------------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('#signin-form').addEventListener('submit', signIn);
    $('#signout').addEventListener('click', signOut);
    window.addEventListener('hashchange', route);
    api('GET', '/session').then(startApp).catch(() => showSignIn(''));
  });
}());
