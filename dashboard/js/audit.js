// The audit log of links: who (a user, or the system and why), when, what
// changed; filtered by link, item and action, a page at a time.

import { api, query } from './api.js';
import { h, render, field, when } from './ui.js';

async function userNames(me) {
  const names = new Map([[me.user.id, `${me.user.name} (you)`]]);
  try {
    const page = await api('GET', '/api/users?limit=200');
    for (const u of page.items) if (!names.has(u.id)) names.set(u.id, u.name);
  } catch { /* only administrators list users: others see ids */ }
  return names;
}

function who(actor, names) {
  if (actor.type === 'system') return `system: ${actor.reason.replace('_', ' ')}`;
  return names.get(actor.user_id) || `user ${actor.user_id.slice(0, 8)}`;
}

function changes(c) {
  const out = [];
  for (const key of ['valid_from', 'valid_until']) {
    if (c[key]) out.push(`${key.replace('_', ' ')}: ${when(c[key].from)} → ${when(c[key].to)}`);
  }
  if (c.password) out.push(`password ${c.password}`);
  for (const key of ['expose_unpublished', 'hide_identifying_metadata', 'preview_only']) {
    if (c[key]) out.push(`${key.replace(/_/g, ' ')}: ${c[key].from} → ${c[key].to}`);
  }
  return out.join('; ') || '—';
}

export async function auditPage(me, params) {
  const filters = { link_id: params.get('link_id'), target_kind: params.get('target_kind'), target_id: params.get('target_id'), action: params.get('action'), cursor: params.get('cursor') };
  const input = (name, label, hint) => field(label, h('input', { type: 'text', name, id: `audit-${name}`, value: filters[name] || '', autocomplete: 'off' }), hint);
  const form = h('form', { class: 'filters', id: 'audit-filters' },
    input('link_id', 'Link id'),
    field('Item kind', h('select', { name: 'target_kind', id: 'audit-target_kind' },
      [['', 'Any'], ['file', 'File'], ['folder', 'Folder'], ['collection', 'Collection']].map(([v, t]) => h('option', { value: v, selected: v === (filters.target_kind || '') }, t)))),
    input('target_id', 'Item id'),
    field('Action', h('select', { name: 'action', id: 'audit-action' },
      [['', 'Any'], ['created', 'Created'], ['updated', 'Updated'], ['deleted', 'Deleted']].map(([v, t]) => h('option', { value: v, selected: v === (filters.action || '') }, t)))),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = '#/audit' + query(Object.fromEntries(new FormData(form)));
  });
  const slot = h('div', {});
  render(h('h1', {}, 'Audit log'), form, slot);
  let page;
  try {
    page = await api('GET', '/api/audit' + query({ ...filters, limit: 50 }));
  } catch (err) {
    const name = err.field && form.querySelector(`[name="${err.field}"]`) ? err.field : null;
    slot.append(h('p', { class: 'form-error', role: 'alert' }, name ? `${name.replace('_', ' ')}: ${err.message}` : err.message));
    return;
  }
  const names = await userNames(me);
  slot.append(h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Audit entries' }, h('table', { id: 'audit' },
    h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Link', 'Item', 'What changed'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, page.items.map((e) => h('tr', { 'data-action': e.action },
      h('td', {}, when(e.at)), h('td', {}, who(e.actor, names)), h('td', {}, e.action),
      h('td', {}, h('a', { href: '#/audit' + query({ link_id: e.link_id }) }, e.link_id.slice(0, 8))),
      h('td', {}, h('a', { href: '#/audit' + query({ target_kind: e.target.kind, target_id: e.target.id }) }, `${e.target.kind} ${e.target.id.slice(0, 8)}`)),
      h('td', {}, changes(e.changes))))))));
  if (!page.items.length) slot.append(h('p', { class: 'empty' }, 'No entries match.'));
  const base = { ...filters, cursor: undefined };
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  if (filters.cursor) pager.append(h('a', { href: '#/audit' + query(base) }, 'First page'));
  if (page.next_cursor) pager.append(h('a', { href: '#/audit' + query({ ...base, cursor: page.next_cursor }) }, 'Next page'));
  slot.append(pager);
}
