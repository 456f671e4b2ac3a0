// OpenID Connect sign-in in the page: the authorization code flow with PKCE
// (S256). The code verifier and state live in this tab's sessionStorage
// from the redirect to the provider until its answer; the code and state are
// taken out of the address before anything else, so neither they nor a
// token stay in the URL or the history.

import { setToken } from './api.js';

const FLOW_KEY = 'publinks.oidc';

/** Bytes as base64url without padding (RFC 7636's encoding). */
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random string of URL-safe characters from `n` random bytes. */
function random(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** Where the provider sends the browser back: the configured URL or this page's own. */
export function redirectUri(config) {
  return config.redirect_uri || location.origin + location.pathname;
}

/** The name on the sign-in button: the configured one or the provider's host. */
export function issuerName(config) {
  return config.issuer_name || new URL(config.authorization_endpoint).host;
}

/** Starts a sign-in: a new verifier and state kept in the tab, then off to the provider. */
export async function startSignIn(config) {
  const verifier = random(48); // 64 characters (RFC 7636: 43 to 128)
  const state = random(24);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(FLOW_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(config),
    scope: config.scope || 'openid',
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Why the identity provider's error code stopped a sign-in, in words. */
function providerError(code, description) {
  const said = description ? `: ${description}` : '.';
  return new Error(`The identity provider refused the sign-in (${code})${said}`);
}

/**
 * Finishes a sign-in if the provider has just sent the browser back here
 * (?code&state or ?error): resolves true once the token is kept, false if
 * this is not a return from the provider; rejects with an error in words.
 */
export async function finishSignIn(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error') && !params.has('state')) return false;
  // The code and state leave the address (and this history entry) first.
  history.replaceState(null, '', location.pathname + '#/signin');
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null');
  sessionStorage.removeItem(FLOW_KEY);
  if (params.has('error')) throw providerError(params.get('error'), params.get('error_description'));
  if (!flow || !params.get('state') || params.get('state') !== flow.state) {
    throw new Error('This sign-in answer was not started in this tab (its state does not match), so it was not used. Sign in again.');
  }
  const res = await fetch(config.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') || '',
      redirect_uri: redirectUri(config),
      client_id: config.client_id,
      code_verifier: flow.verifier,
    }),
    referrerPolicy: 'no-referrer',
    credentials: 'omit',
  }).catch(() => null);
  if (!res) throw new Error('The identity provider could not be reached to finish the sign-in.');
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (data && data.error) throw providerError(data.error, data.error_description);
    throw new Error(`The identity provider did not issue a token (it answered ${res.status}).`);
  }
  const kind = config.token || 'access_token';
  if (!data || typeof data[kind] !== 'string') throw new Error(`The identity provider's answer has no ${kind}.`);
  setToken(data[kind]);
  return true;
}

/** Where sign-out goes after the tab forgets the token: the provider's logout, if configured. */
export function logoutUrl(config) {
  if (config.mode !== 'oidc' || !config.logout_endpoint) return null;
  const url = new URL(config.logout_endpoint);
  url.searchParams.set('client_id', config.client_id);
  url.searchParams.set('logout_uri', redirectUri(config));
  url.searchParams.set('post_logout_redirect_uri', redirectUri(config));
  return url.toString();
}
