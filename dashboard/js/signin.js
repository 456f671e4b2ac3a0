// Sign-in. Local mode: choose one of the store's users (the local server
// mints their token) or paste a token. In AWS (mode "oidc") the identity
// provider signs people in (oidc.js: authorization code with PKCE); a
// config.json without its endpoints leaves the pasted token.

import { api, settings, setToken, ApiError } from './api.js';
import { h, render, field, showError, clearErrors } from './ui.js';
import { startSignIn, issuerName } from './oidc.js';

let failure = null;

/** Shows `message` on the next sign-in page (a sign-in that came back refused). */
export function signInFailed(message) { failure = message; }

function oidcPage(config) {
  const name = issuerName(config);
  const button = h('button', { type: 'button', id: 'oidc-sign-in', onclick: async () => {
    button.disabled = true;
    try {
      await startSignIn(config);
    } catch (err) {
      button.disabled = false;
      button.after(h('p', { class: 'form-error', role: 'alert' }, 'The sign-in could not start: ' + err.message));
    }
  } }, `Sign in with ${name}`);
  const refused = failure && h('p', { class: 'form-error', id: 'sign-in-error', role: 'alert' }, failure);
  failure = null;
  render(h('h1', {}, 'Sign in to the dashboard'), refused,
    h('section', { class: 'card', 'aria-labelledby': 'idp' },
      h('h2', { id: 'idp' }, 'Your organisation’s account'),
      h('p', {}, `You sign in at ${name}, which then sends you back here.`), button));
}

function done() { location.hash = '#/library'; }

function pasteForm() {
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true });
  const form = h('form', { class: 'card', id: 'paste-form' },
    h('h2', {}, 'Paste a token'),
    field('Bearer token', input, 'A JWT for a user of this account. It is kept in this tab only.'),
    h('button', { type: 'submit' }, 'Sign in with the token'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    setToken(input.value.trim());
    try {
      await api('GET', '/api/me');
      done();
    } catch (err) {
      sessionStorage.clear();
      showError(form, new ApiError(401, { error: { message: 'This token is not accepted: ' + err.message, field: 'token' } }));
    }
  });
  return form;
}

async function localUsers() {
  const res = await fetch('local/users', { headers: { Accept: 'application/json' } });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data.items;
}

export async function signInPage() {
  const mode = settings().mode;
  if (mode === 'oidc' && settings().authorization_endpoint) return oidcPage(settings());
  if (mode !== 'local') {
    return render(h('h1', {}, 'Sign in'), h('p', {}, 'Sign in with a token from your identity provider.'), pasteForm());
  }
  const list = h('ul', { class: 'users' });
  const section = h('section', { class: 'card', 'aria-labelledby': 'choose' }, h('h2', { id: 'choose' }, 'Choose a user'), list);
  render(
    h('p', { class: 'local-mode', role: 'note' }, h('strong', {}, 'Local mode'),
      ' — this server runs on this machine with no identity provider: choose who to be. In AWS people sign in with OpenID Connect instead.'),
    h('h1', {}, 'Sign in to the dashboard'), section, pasteForm());
  try {
    const users = await localUsers();
    for (const u of users) {
      list.append(h('li', {}, h('button', {
        type: 'button', class: 'user', 'data-role': u.role,
        onclick: async () => {
          const res = await fetch('local/token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user_id: u.id }) });
          const data = await res.json().catch(() => null);
          if (!res.ok) { list.after(h('p', { class: 'form-error', role: 'alert' }, new ApiError(res.status, data).message)); return; }
          setToken(data.token);
          done();
        },
      }, h('span', { class: 'name' }, u.name), h('span', { class: 'meta' }, `${u.role.replace('_', ' ')} · ${u.account}`))));
    }
  } catch (err) {
    list.replaceWith(h('p', { class: 'form-error', role: 'alert' }, err.message));
  }
}
