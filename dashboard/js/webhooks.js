// Settings → Webhooks (administrators): the account's endpoints told of link
// events — create, edit the URL and events, rotate the secret, delete — the
// secret shown once when it is made, and each webhook's latest deliveries
// with their times in the user's zone.

import { api, isAdmin } from './api.js';
import { h, render, when, zone, showError, clearErrors, confirmAction, announce, copyValue } from './ui.js';

/** The events the API knows, as people read them. */
const EVENTS = [
  ['link.first_opened', 'A link is opened for the first time'],
  ['link.limit_reached', 'A link reaches its download or session limit'],
  ['link.expires_soon', 'A link ends within 24 hours'],
  ['link.deleted_by_system', 'The system deletes a link (expired, exhausted, its item deleted or moved)'],
  ['link.under_attack', 'Wrong passwords from many networks (under attack)'],
];
/** The field a refusal without one belongs to: the cap is met by adding an endpoint. */
const FIELD_OF_CODE = { webhook_limit: 'url' };
const DELIVERIES_SHOWN = 10;

/**
 * The form of a new webhook (`hook` absent) or of one being edited: its URL
 * and events. Calls `onSaved(answer)` once the API accepted it.
 */
function webhookForm(hook, { onSaved, onCancel }) {
  const key = hook ? hook.id : 'new';
  const url = h('input', { type: 'url', name: 'url', id: `url-${key}`, value: hook?.url || '', autocomplete: 'off',
    spellcheck: 'false', placeholder: 'https://example.com/publinks', 'aria-describedby': `url-${key}-hint` });
  const boxes = EVENTS.map(([value, label]) => {
    const id = `events-${key}-${value.replace('link.', '')}`;
    const box = h('input', { type: 'checkbox', name: 'events', value, id, checked: hook ? hook.events.includes(value) : true });
    return h('div', { class: 'check-row' }, box, h('label', { for: id }, label));
  });
  const form = h('form', { class: hook ? 'webhook-form' : 'card settings webhook-form', id: `webhook-form-${key}`, novalidate: true },
    hook ? null : h('h2', {}, 'New webhook'),
    h('div', { class: 'field' }, h('label', { for: url.id }, 'Endpoint URL'), url,
      h('p', { class: 'hint', id: `url-${key}-hint` }, 'https://… on a public address; deliveries are POSTed there, signed with the secret.')),
    h('fieldset', { class: 'field events' }, h('legend', {}, 'Events'), boxes),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, hook ? 'Save webhook' : 'Create webhook'),
      onCancel ? h('button', { type: 'button', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const events = [...form.querySelectorAll('input[name=events]:checked')].map((b) => b.value);
    const body = { url: url.value.trim(), events };
    try {
      onSaved(hook ? await api('PATCH', `/api/account/webhooks/${hook.id}`, body) : await api('POST', '/api/account/webhooks', body));
    } catch (err) {
      showError(form, err, FIELD_OF_CODE);
    }
  });
  return form;
}

/** The secret just made, shown this once, with a copy button. */
function secretPanel(hook, why, onDone) {
  const input = h('input', { type: 'text', readonly: true, value: hook.secret, id: 'webhook-secret', class: 'url', spellcheck: 'false' });
  const copyBtn = h('button', { type: 'button', id: 'copy-secret', onclick: async () => {
    await copyValue(input, 'Secret copied');
    copyBtn.textContent = 'Copied';
  } }, 'Copy secret');
  const panel = h('section', { class: 'card secret', id: 'secret-panel', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title', tabindex: '-1' }, `${why}: the signing secret of ${hook.url}`),
    h('p', { class: 'warning' }, h('strong', {}, 'Copy it now: you will not see it again.'),
      ' The server keeps it only to sign deliveries; if it is lost, rotate the secret.'),
    h('div', { class: 'field inline' }, h('label', { for: input.id }, 'Signing secret'), input, copyBtn),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'secret-done', onclick: onDone }, 'I have kept it')));
  return panel;
}

function result(d) {
  if (d.last_status) return `HTTP ${d.last_status}${d.last_error ? ` · ${d.last_error}` : ''}`;
  return d.last_error || '—';
}

/** A webhook's latest deliveries, as a table (or a line saying there are none). */
async function deliveriesOf(hook) {
  const list = await api('GET', `/api/account/webhooks/${hook.id}/deliveries?limit=${DELIVERIES_SHOWN}`);
  if (!list.length) return h('p', { class: 'empty deliveries' }, 'No deliveries yet.');
  return h('div', { class: 'table-wrap deliveries', tabindex: '0', role: 'region', 'aria-label': `Latest deliveries to ${hook.url}` },
    h('table', {},
      h('thead', {}, h('tr', {}, ['Event', 'State', 'Attempts', 'Last answer or error', 'Last attempt', 'Next attempt']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((d) => h('tr', { 'data-state': d.state, 'data-event': d.event },
        h('td', {}, d.event), h('td', {}, h('span', { class: `badge ${d.state}` }, d.state)), h('td', {}, d.attempts),
        h('td', { class: 'result' }, result(d)), h('td', {}, when(d.last_attempt_at)), h('td', {}, when(d.next_attempt_at)))))));
}

/** One webhook: URL, events, created; edit, rotate, delete; its deliveries. */
function webhookCard(hook, { reload, showSecret }) {
  const body = h('div', { class: 'webhook-body' });
  const deliveries = h('div', { class: 'deliveries-slot' }, h('p', { class: 'meta' }, 'Loading deliveries…'));
  const refresh = async () => {
    try {
      deliveries.replaceChildren(await deliveriesOf(hook));
    } catch (err) {
      deliveries.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message));
    }
  };
  const card = h('li', { class: 'webhook', 'data-webhook': hook.id });
  const fail = (err) => {
    card.querySelector('.webhook-error')?.remove();
    body.append(h('p', { class: 'form-error webhook-error', role: 'alert' }, err.message));
  };
  const view = () => body.replaceChildren(
    h('ul', { class: 'marks', 'aria-label': 'Events' }, hook.events.map((e) => h('li', {}, h('span', { class: 'badge neutral' }, e)))),
    h('p', { class: 'meta' }, `Created ${when(hook.created_at)}`,
      hook.updated_at !== hook.created_at ? ` · changed ${when(hook.updated_at)}` : ''),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'edit', onclick: () => {
        body.replaceChildren(webhookForm(hook, { onSaved: () => { announce('Webhook saved'); reload(); }, onCancel: view }));
        body.querySelector('input').focus();
      } }, 'Edit'),
      h('button', { type: 'button', class: 'rotate', onclick: async () => {
        if (!(await confirmAction('Rotate this webhook’s secret? The current one stops working at once.', 'Rotate secret'))) return;
        try {
          showSecret(await api('PATCH', `/api/account/webhooks/${hook.id}`, { rotate_secret: true }), 'Rotated');
        } catch (err) { fail(err); }
      } }, 'Rotate secret'),
      h('button', { type: 'button', class: 'danger delete', onclick: async () => {
        if (!(await confirmAction(`Delete the webhook to ${hook.url}? Deliveries not yet made are given up.`, 'Delete webhook'))) return;
        try {
          await api('DELETE', `/api/account/webhooks/${hook.id}`);
          announce('Webhook deleted');
          reload();
        } catch (err) { fail(err); }
      } }, 'Delete')));
  view();
  card.append(h('h2', { class: 'webhook-url' }, hook.url), body,
    h('div', { class: 'title-row' }, h('h3', {}, 'Latest deliveries'),
      h('button', { type: 'button', class: 'refresh', onclick: refresh }, 'Refresh deliveries')),
    deliveries);
  refresh();
  return card;
}

export async function webhooksPage(me, secret) {
  if (!isAdmin(me)) {
    return render(h('h1', {}, 'Webhooks'),
      h('p', { class: 'note', role: 'note' }, `The webhooks of ${me.account.name} are managed by its administrators. Ask one of them to change them.`));
  }
  const hooks = await api('GET', '/api/account/webhooks');
  const reload = (next) => webhooksPage(me, next);
  const showSecret = (hook, why) => reload({ hook, why });
  const list = h('ul', { class: 'webhooks', id: 'webhooks', 'aria-label': 'Webhooks of the account' },
    hooks.length ? hooks.map((hook) => webhookCard(hook, { reload: () => reload(), showSecret }))
      : [h('li', { class: 'empty' }, 'No webhooks yet.')]);
  render(h('h1', {}, 'Webhooks'),
    h('p', {}, `Endpoints told of the events of ${me.account.name}’s public links (at most 10). Each delivery is signed with the webhook’s secret (Publinks-Signature) and retried for a day. Times are in your time zone (${zone}).`),
    secret ? secretPanel(secret.hook, secret.why, () => reload()) : null,
    list,
    webhookForm(null, { onSaved: (hook) => { announce('Webhook created'); showSecret(hook, 'Created'); } }));
  if (secret) document.getElementById('secret-title').focus();
}
