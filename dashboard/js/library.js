// The library browser: folders with breadcrumbs, files as a grid with
// thumbnails, collections; drafts and private files marked; the Share action
// on what the user may manage (by role, or a manage grant on the item or a
// folder above it).

import { api, blobUrl } from './api.js';
import { h, render, badge, bytes } from './ui.js';
import { openLinksDialog } from './links.js';

const WHOLE = ['admin', 'developer', 'full_access', 'view_only'];
const THUMBNAIL_MAX = 5 * 1024 * 1024;

/** Whether the user may manage `target` (kind, id) whose folder chain (top first) is `chain`. */
export function mayManage(me, target, chain = []) {
  if (['admin', 'developer', 'full_access'].includes(me.user.role)) return true;
  if (me.user.role !== 'restricted') return false;
  return me.grants.some((g) => g.level === 'manage' && (
    (g.target.kind === target.kind && g.target.id === target.id) ||
    (g.target.kind === 'folder' && chain.includes(g.target.id))));
}

function shareButton(me, target, name, chain) {
  if (!mayManage(me, target, chain)) return null;
  return h('button', { type: 'button', class: 'share', 'data-share': target.id,
    'aria-label': `Share ${name}`, onclick: () => openLinksDialog(me, { ...target, name }) }, 'Share');
}

async function all(path) {
  const sep = path.includes('?') ? '&' : '?';
  const page = await api('GET', `${path}${sep}limit=200`);
  return page.items;
}

/** The folders above `folder` (top first) that the user can see, and the folder itself. */
async function chainOf(folder) {
  const chain = [folder];
  let parent = folder.parent_id;
  while (parent) {
    try {
      const f = await api('GET', `/api/folders/${parent}`);
      chain.unshift(f);
      parent = f.parent_id;
    } catch { break; }
  }
  return chain;
}

function thumbnail(file) {
  const v = file.current_version;
  const box = h('div', { class: 'thumb', 'aria-hidden': 'true' }, (file.name.split('.').pop() || '').toUpperCase());
  if (v.content_type.startsWith('image/') && v.size <= THUMBNAIL_MAX) {
    blobUrl(`/api/files/${file.id}/download`).then((url) => {
      const img = h('img', { src: url, alt: '' });
      img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
      box.replaceChildren(img);
    }).catch(() => {});
  }
  return box;
}

function filesGrid(me, files, chain) {
  if (!files.length) return h('p', { class: 'empty' }, 'No files here.');
  return h('ul', { class: 'grid', 'aria-label': 'Files' }, files.map((f) => h('li', { class: 'file' },
    thumbnail(f),
    h('div', { class: 'file-name' }, f.name),
    h('div', { class: 'marks' },
      f.published ? null : badge('draft'),
      f.private ? badge('private') : null,
      h('span', { class: 'size' }, bytes(f.current_version.size))),
    shareButton(me, { kind: 'file', id: f.id }, f.name, chain))));
}

function foldersList(me, folders, chain) {
  if (!folders.length) return null;
  return h('ul', { class: 'folders', 'aria-label': 'Folders' }, folders.map((f) => h('li', {},
    h('a', { href: `#/library/folder/${f.id}`, class: 'folder' }, f.name),
    shareButton(me, { kind: 'folder', id: f.id }, f.name, chain))));
}

function planNote(me) {
  if (me.account.plan === 'enterprise') return null;
  return h('p', { class: 'note', role: 'note' }, 'Public links need the enterprise plan: this account is on the ',
    me.account.plan, ' plan. An administrator of publinks can change it (publinks-admin plan).');
}

/** The top of the library, or one folder. */
export async function libraryPage(me, folderId) {
  if (!folderId) {
    if (WHOLE.includes(me.user.role)) {
      const [folders, files] = await Promise.all([all('/api/folders/root/folders'), all('/api/folders/root/files')]);
      return render(h('h1', {}, 'Library'), planNote(me),
        h('nav', { 'aria-label': 'Breadcrumbs', class: 'crumbs' }, h('ol', {}, h('li', { 'aria-current': 'page' }, 'Library'))),
        foldersList(me, folders, []), h('h2', {}, 'Files'), filesGrid(me, files, []));
    }
    if (me.user.role !== 'restricted') {
      return render(h('h1', {}, 'Library'), h('p', {}, 'Your role (', me.user.role, ') gives no access to the library.'));
    }
    const folders = [], files = [], collections = [];
    for (const g of me.grants) {
      const path = { folder: 'folders', file: 'files', collection: 'collections' }[g.target.kind];
      try {
        const item = await api('GET', `/api/${path}/${g.target.id}`);
        ({ folder: folders, file: files, collection: collections })[g.target.kind].push({ ...item, level: g.level });
      } catch { /* a grant on something gone */ }
    }
    return render(h('h1', {}, 'Shared with you'), planNote(me),
      h('p', {}, 'You see what your grants give you.'),
      foldersList(me, folders, []),
      collections.length ? h('ul', { class: 'folders', 'aria-label': 'Collections' }, collections.map((c) => h('li', {},
        h('a', { href: `#/collections/${c.id}` }, c.name), shareButton(me, { kind: 'collection', id: c.id }, c.name, [])))) : null,
      files.length ? [h('h2', {}, 'Files'), filesGrid(me, files, [])] : null);
  }
  const folder = await api('GET', `/api/folders/${folderId}`);
  const chain = await chainOf(folder);
  const ids = chain.map((f) => f.id);
  const [folders, files] = await Promise.all([all(`/api/folders/${folderId}/folders`), all(`/api/folders/${folderId}/files`)]);
  const crumbs = h('nav', { 'aria-label': 'Breadcrumbs', class: 'crumbs' }, h('ol', {},
    h('li', {}, h('a', { href: '#/library' }, 'Library')),
    chain.slice(0, -1).map((f) => h('li', {}, h('a', { href: `#/library/folder/${f.id}` }, f.name))),
    h('li', { 'aria-current': 'page' }, folder.name)));
  render(crumbs, h('div', { class: 'title-row' }, h('h1', {}, folder.name),
    shareButton(me, { kind: 'folder', id: folder.id }, folder.name, ids.slice(0, -1))), planNote(me),
  foldersList(me, folders, ids), h('h2', {}, 'Files'), filesGrid(me, files, ids));
}

export async function collectionsPage(me) {
  const items = await all('/api/collections');
  render(h('h1', {}, 'Collections'), planNote(me), items.length
    ? h('ul', { class: 'folders', 'aria-label': 'Collections' }, items.map((c) => h('li', {},
      h('a', { href: `#/collections/${c.id}` }, c.name), shareButton(me, { kind: 'collection', id: c.id }, c.name, []))))
    : h('p', { class: 'empty' }, 'No collections you can see.'));
}

export async function collectionPage(me, id) {
  const c = await api('GET', `/api/collections/${id}`);
  const files = await all(`/api/collections/${id}/files`);
  render(h('nav', { 'aria-label': 'Breadcrumbs', class: 'crumbs' }, h('ol', {},
    h('li', {}, h('a', { href: '#/collections' }, 'Collections')), h('li', { 'aria-current': 'page' }, c.name))),
  h('div', { class: 'title-row' }, h('h1', {}, c.name), shareButton(me, { kind: 'collection', id: c.id }, c.name, [])),
  planNote(me), h('h2', {}, 'Files'), filesGrid(me, files.map((f) => f.file || f), []));
}
