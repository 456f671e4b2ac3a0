// The dashboard's shell: configuration, who is signed in, the navigation
// (shown by role), and the hash router (#/library, #/settings/links,
// #/settings/branding, #/settings/webhooks...):
// the address never carries a token.

import { api, loadConfig, settings, signOut, token, managesAll, readsAudit, isAdmin } from './api.js';
import { h, render } from './ui.js';
import { signInPage, signInFailed } from './signin.js';
import { finishSignIn, logoutUrl } from './oidc.js';
import { libraryPage, collectionsPage, collectionPage } from './library.js';
import { settingsLinksPage } from './settings.js';
import { auditPage } from './audit.js';
import { downloadsPage } from './downloads.js';
import { brandingPage } from './branding.js';
import { webhooksPage } from './webhooks.js';

/** What every page knows of the signed-in user. */
export const session = { me: null };


function nav(me) {
  const items = [['#/library', 'Library'], ['#/collections', 'Collections']];
  if (managesAll(me)) items.push(['#/settings/links', 'Public links']);
  if (readsAudit(me)) items.push(['#/audit', 'Audit log']);
  if (managesAll(me)) items.push(['#/downloads', 'Downloads']);
  if (isAdmin(me)) items.push(['#/settings/branding', 'Branding'], ['#/settings/webhooks', 'Webhooks']);
  const here = location.hash.split('?')[0];
  document.getElementById('nav').replaceChildren(h('ul', {}, items.map(([href, text]) =>
    h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : null }, text)))));
  document.getElementById('who').replaceChildren(
    h('span', {}, `${me.user.name} · ${me.user.role.replace('_', ' ')} · ${me.account.name}`),
    h('button', { type: 'button', id: 'sign-out', onclick: () => {
      const away = logoutUrl(settings());
      signOut();
      session.me = null;
      if (away) location.assign(away); else location.hash = '#/signin';
    } }, 'Sign out'));
}

function clearShell() {
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
}

async function route() {
  const [path, search] = location.hash.slice(1).split('?');
  const parts = (path || '/').split('/').filter(Boolean);
  const params = new URLSearchParams(search || '');
  if (!token() || parts[0] === 'signin') {
    clearShell();
    if (token()) { location.hash = '#/library'; return; }
    return signInPage();
  }
  try {
    if (!session.me) session.me = await api('GET', '/api/me');
  } catch (err) {
    session.me = null;
    if (!token()) { location.hash = '#/signin'; return; }
    return render(h('h1', {}, 'The dashboard cannot reach the API'), h('p', { role: 'alert' }, err.message));
  }
  const me = session.me;
  nav(me);
  try {
    switch (parts[0]) {
      case 'library': return await libraryPage(me, parts[1] === 'folder' ? parts[2] : null);
      case 'collections': return parts[1] ? await collectionPage(me, parts[1]) : await collectionsPage(me);
      case 'settings':
        if (parts[1] === 'branding') return await brandingPage(me);
        if (parts[1] === 'webhooks') return await webhooksPage(me);
        return await settingsLinksPage(me, params);
      case 'audit': return await auditPage(me, params);
      case 'downloads': return await downloadsPage(me);
      default: location.hash = '#/library';
    }
  } catch (err) {
    render(h('h1', {}, 'Not available'), h('p', { role: 'alert', class: 'form-error' }, err.message),
      h('p', {}, h('a', { href: '#/library' }, 'Back to the library')));
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('publinks:signed-out', () => { session.me = null; location.hash = '#/signin'; });
const config = await loadConfig();
if (config.mode === 'oidc' && config.authorization_endpoint) {
  try {
    if (await finishSignIn(config)) history.replaceState(null, '', location.pathname + '#/library');
  } catch (err) {
    signInFailed(err.message);
  }
}
route();
