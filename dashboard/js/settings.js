// Settings → Public links: every link of the account (administrators,
// developers, full-access users), filtered by kind and state, newest or
// oldest first, a page at a time; edit and delete in place.

import { api, query, managesAll } from './api.js';
import { h, render, field } from './ui.js';
import { linkCard, editLinkDialog } from './links.js';

function select(name, label, options, value) {
  const el = h('select', { name, id: `filter-${name}` },
    options.map(([v, text]) => h('option', { value: v, selected: v === (value || '') }, text)));
  return field(label, el);
}

export async function settingsLinksPage(me, params) {
  if (!managesAll(me)) {
    return render(h('h1', {}, 'Public links'), h('p', {}, 'The settings page of every link is for administrators, developers and full-access users.'));
  }
  const filters = { kind: params.get('kind'), state: params.get('state'), order: params.get('order'), cursor: params.get('cursor') };
  const form = h('form', { class: 'filters', id: 'link-filters' },
    select('kind', 'Kind', [['', 'All kinds'], ['file', 'Files'], ['folder', 'Folders'], ['collection', 'Collections']], filters.kind),
    select('state', 'State', [['', 'All states'], ['active', 'Active'], ['scheduled', 'Scheduled'], ['expired', 'Expired']], filters.state),
    select('order', 'Order', [['newest', 'Newest first'], ['oldest', 'Oldest first']], filters.order),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    location.hash = '#/settings/links' + query(data);
  });
  const list = h('ul', { class: 'links', id: 'all-links', 'aria-label': 'Public links of the account' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  render(h('h1', {}, 'Public links'), h('p', {}, `Every public link of ${me.account.name} (limit ${me.account.link_limit}).`), form, list, pager);
  const page = await api('GET', '/api/links' + query({ ...filters, limit: 20 }));
  const reload = () => settingsLinksPage(me, params);
  const edit = (link) => editLinkDialog(me, link, reload);
  list.replaceChildren(...(page.items.length ? page.items.map((l) => linkCard(l, { onEdit: edit, onDeleted: reload }))
    : [h('li', { class: 'empty' }, 'No links match.')]));
  const base = { kind: filters.kind, state: filters.state, order: filters.order };
  if (filters.cursor) pager.append(h('a', { href: '#/settings/links' + query(base) }, 'First page'));
  if (page.next_cursor) pager.append(h('a', { href: '#/settings/links' + query({ ...base, cursor: page.next_cursor }), rel: 'next' }, 'Next page'));
}
