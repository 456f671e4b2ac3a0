// Downloads: the account's downloads and ZIP archives, each saying whether it
// came through a public link (and which); a ready archive can be saved.

import { api, blobUrl } from './api.js';
import { h, render, when, bytes } from './ui.js';

function table(id, label, head, rows) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, h('table', { id },
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows)));
}

function via(item) {
  return item.via_public_link ? h('span', {}, 'Yes', item.link_id ? h('span', { class: 'meta' }, ` (link ${item.link_id.slice(0, 8)})`) : null) : 'No';
}

export async function downloadsPage(me) {
  const [downloads, archives] = await Promise.all([api('GET', '/api/downloads?limit=100'), api('GET', '/api/archives?limit=100')]);
  render(h('h1', {}, 'Downloads'),
    h('h2', {}, 'Files'),
    downloads.items.length ? table('downloads', 'Downloads', ['When', 'File', 'Version', 'Size', 'Via public link'],
      downloads.items.map((d) => h('tr', { 'data-via': String(d.via_public_link) }, h('td', {}, when(d.at)), h('td', {}, d.file_name),
        h('td', {}, d.version), h('td', {}, bytes(d.size)), h('td', {}, via(d)))))
      : h('p', { class: 'empty' }, 'No downloads yet.'),
    h('h2', {}, 'ZIP archives'),
    archives.items.length ? table('archives', 'ZIP archives', ['When', 'Name', 'Files', 'Status', 'Via public link', ''],
      archives.items.map((a) => h('tr', {}, h('td', {}, when(a.created_at)), h('td', {}, a.name), h('td', {}, a.file_count),
        h('td', {}, a.status, a.status === 'ready' && a.archive_size ? ` (${bytes(a.archive_size)})` : ''),
        h('td', {}, via(a)),
        h('td', {}, a.status === 'ready' ? h('button', { type: 'button', onclick: async () => {
          const url = await blobUrl(`/api/archives/${a.id}/download`);
          const link = h('a', { href: url, download: a.name.endsWith('.zip') ? a.name : `${a.name}.zip` });
          document.body.append(link); link.click(); link.remove();
          setTimeout(() => URL.revokeObjectURL(url), 60000);
        } }, `Download ${a.name}`) : ''))))
      : h('p', { class: 'empty' }, 'No archives yet.'));
}
