// The pages of the mailed links. The token is in the fragment (`#token=…`), which the browser never sends; it is
// read here, taken out of the address bar, and posted in a JSON body to the page's own path.
'use strict';
(function () {
  // A link opened again in this tab only changes the fragment: start over with its token.
  window.addEventListener('hashchange', () => location.reload());
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname);
  const page = document.body.dataset.page;
  const status = document.getElementById('status');
  const show = (text, ok) => {
    status.textContent = text;
    status.className = ok ? 'ok' : 'error';
  };
  const post = async (body) => {
    try {
      const r = await fetch(location.pathname, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = await r.json().catch(() => ({}));
      return { ok: r.ok, error: answer.error || `The server answered ${r.status}.` };
    } catch (e) {
      return { ok: false, error: 'The server could not be reached. Please try again.' };
    }
  };
  if (!token) {
    show('This link is incomplete: please open the whole link from the mail.', false);
    return;
  }
  if (page === 'verify-email') {
    post({ token }).then((r) => show(r.ok ? 'Your e-mail address is verified. Thank you!' : r.error, r.ok));
    return;
  }
  const form = document.getElementById('reset');
  const password = document.getElementById('password');
  const repeat = document.getElementById('repeat');
  form.hidden = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (password.value !== repeat.value) {
      show('The two passwords differ.', false);
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    const r = await post({ token, password: password.value });
    if (r.ok) {
      form.hidden = true;
      show('Your password is reset. You can sign in with the new one now.', true);
    } else {
      button.disabled = false;
      show(r.error, false);
    }
  });
})();
