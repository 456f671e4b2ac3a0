// The dashboard's one way to the JSON API: the bearer token of the session
// (kept in sessionStorage, never in a URL), JSON in and out, and the API's
// error body turned into an ApiError the forms can place beside a field.

const TOKEN_KEY = 'publinks.token';
let config = { mode: 'local', api: '' };

/** Reads config.json: the sign-in mode and the API's address. */
export async function loadConfig() {
  const res = await fetch('config.json', { cache: 'no-cache' });
  if (res.ok) config = await res.json();
  return config;
}

export function settings() { return config; }
export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
/** Forgets everything this tab kept: the token (and any sign-in under way). */
export function signOut() { sessionStorage.clear(); }

/** A refusal of the API: its status, stable code, message for people and the field at fault. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.error) || {};
    super(detail.message || `The server answered ${status}.`);
    this.status = status;
    this.code = detail.code || 'http_' + status;
    this.field = detail.field || null;
  }
}

/** Calls the API with a JSON body (or a Blob, sent as its bytes); resolves with the JSON answer (null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const init = { method, headers, referrerPolicy: 'no-referrer' };
  if (body instanceof Blob) {
    // A file as it is (the logo): its own type, which the API checks.
    headers['Content-Type'] = body.type || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(config.api + path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && t) {
      signOut();
      window.dispatchEvent(new CustomEvent('publinks:signed-out'));
    }
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Builds a query string from the filled-in entries of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

/** The bytes behind an API address that redirects to storage, as an object URL (thumbnails, archives). */
export async function blobUrl(path) {
  const res = await fetch(config.api + path, { headers: { Authorization: 'Bearer ' + token() }, referrerPolicy: 'no-referrer' });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  return URL.createObjectURL(await res.blob());
}

/** The roles that manage the whole library: every link's settings page, the downloads. */
export function managesAll(me) { return ['admin', 'developer', 'full_access'].includes(me.user.role); }
/** The audit log's readers. */
export function readsAudit(me) { return ['admin', 'full_access'].includes(me.user.role); }
/** Administrators: the account's branding and webhooks (the API answers 403 to everyone else). */
export function isAdmin(me) { return me.user.role === 'admin'; }
