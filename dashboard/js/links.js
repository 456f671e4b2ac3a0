// The Public links dialog of an item: its links with their state, a form to
// create one or edit one (validity in the user's time zone sent as UTC,
// password set/change/remove, expose-unpublished where it applies), copy,
// open and delete with confirmation. Refusals appear beside their field.

import { api } from './api.js';
import { h, when, toUtc, toLocalInput, zone, field, showError, clearErrors, confirmAction, announce, badge, copyValue } from './ui.js';

const PATHS = { file: 'files', folder: 'folders', collection: 'collections' };
/** The field a refusal without one belongs to. */
const FIELD_OF_CODE = { password_too_short: 'password' };

function dialogShell(titleText) {
  const body = h('div', { class: 'dialog-body' });
  const dialog = h('dialog', { class: 'links-dialog', 'aria-labelledby': 'links-title' },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'links-title' }, titleText),
      h('button', { type: 'button', class: 'close', onclick: () => dialog.close() }, 'Close')),
    body);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body };
}

/** One link: state, URL, copy, open, its window, edit and delete. */
export function linkCard(link, { onEdit, onDeleted }) {
  const urlInput = h('input', { type: 'text', readonly: true, value: link.url, id: `url-${link.id}`, class: 'url' });
  const copyBtn = h('button', { type: 'button', onclick: async () => { await copyValue(urlInput, 'Link copied'); copyBtn.textContent = 'Copied'; } }, 'Copy URL');
  return h('li', { class: 'link', 'data-link': link.id, 'data-state': link.state },
    h('div', { class: 'link-head' }, badge(link.state),
      link.password_protected ? badge('password', 'neutral') : null,
      link.expose_unpublished ? badge('drafts shown', 'neutral') : null,
      link.target && link.target.name ? h('span', { class: 'target' }, `${link.target.kind}: ${link.target.path || link.target.name}`) : null),
    h('div', { class: 'field inline' }, h('label', { for: urlInput.id }, 'URL'), urlInput, copyBtn,
      h('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', class: 'button' }, 'Open')),
    h('p', { class: 'window' }, `From ${link.valid_from ? when(link.valid_from) : 'creation'} until ${link.valid_until ? when(link.valid_until) : 'deleted'}`),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'edit', onclick: () => onEdit(link) }, 'Edit'),
      h('button', { type: 'button', class: 'danger delete', onclick: async (e) => {
        if (!(await confirmAction('Delete this public link? Its URL stops working at once.', 'Delete link'))) return;
        try {
          await api('DELETE', `/api/links/${link.id}`);
          announce('Link deleted');
          onDeleted(link);
        } catch (err) {
          e.target.closest('.link').append(h('p', { class: 'form-error', role: 'alert' }, err.message));
        }
      } }, 'Delete')));
}

/**
 * The create or edit form. `link` absent: a new link on `target`. Resolves
 * nothing; calls `onSaved(link)` after the API accepted it.
 */
export function linkForm(me, target, link, { onSaved, onCancel }) {
  const editing = !!link;
  const from = h('input', { type: 'datetime-local', name: 'valid_from', id: 'valid_from', value: toLocalInput(link?.valid_from) });
  const until = h('input', { type: 'datetime-local', name: 'valid_until', id: 'valid_until', value: toLocalInput(link?.valid_until) });
  const password = h('input', { type: 'password', name: 'password', id: 'password', autocomplete: 'new-password' });
  const removePassword = editing && link.password_protected
    ? h('input', { type: 'checkbox', name: 'remove_password', id: 'remove_password' }) : null;
  const appliesDrafts = target.kind !== 'file' && me.account.drafts_enabled;
  const expose = appliesDrafts ? h('input', { type: 'checkbox', name: 'expose_unpublished', id: 'expose_unpublished', checked: link?.expose_unpublished }) : null;
  const hideDefault = link ? link.hide_identifying_metadata : !!me.account.link_defaults?.hide_identifying_metadata;
  const hide = h('input', { type: 'checkbox', name: 'hide_identifying_metadata', id: 'hide_identifying_metadata', checked: hideDefault });
  const previewOnly = h('input', { type: 'checkbox', name: 'preview_only', id: 'preview_only', checked: !!link?.preview_only });
  const tz = `In your time zone (${zone}); empty: ${editing ? 'none' : 'from now / until deleted'}.`;
  const form = h('form', { class: 'link-form', id: 'link-form', novalidate: true },
    h('h3', {}, editing ? 'Edit link' : 'New link'),
    field('Valid from', from, tz),
    field('Valid until', until, tz),
    field(editing && link.password_protected ? 'New password' : 'Password', password,
      editing && link.password_protected ? 'Leave empty to keep the current password. The URL stays the same; visitors sign in again.' : 'Optional, at least 8 characters.'),
    removePassword ? h('div', { class: 'field check' }, removePassword, h('label', { for: 'remove_password' }, 'Remove the password')) : null,
    expose ? h('div', { class: 'field check' }, expose, h('label', { for: 'expose_unpublished' }, 'Expose unpublished files (drafts)')) : null,
    h('div', { class: 'field check' }, hide, h('label', { for: 'hide_identifying_metadata' }, 'Hide location and identifying metadata from visitors')),
    h('div', { class: 'field check' }, previewOnly, h('label', { for: 'preview_only' }, 'Previews only: no downloads (large previews carry the account\'s watermark)')),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, editing ? 'Save changes' : 'Create link'),
      onCancel ? h('button', { type: 'button', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    if (!editing) body.target = { kind: target.kind, id: target.id };
    for (const [input, key] of [[from, 'valid_from'], [until, 'valid_until']]) {
      if (!editing) { if (input.value) body[key] = toUtc(input.value); }
      else if (input.value !== toLocalInput(link[key])) body[key] = toUtc(input.value);
    }
    if (removePassword && removePassword.checked) body.password = null;
    else if (password.value) body.password = password.value;
    if (expose && (!editing || expose.checked !== link.expose_unpublished)) body.expose_unpublished = expose.checked;
    if (!editing || hide.checked !== link.hide_identifying_metadata) body.hide_identifying_metadata = hide.checked;
    if (editing ? previewOnly.checked !== link.preview_only : previewOnly.checked) body.preview_only = previewOnly.checked;
    try {
      const saved = editing ? await api('PATCH', `/api/links/${link.id}`, body) : await api('POST', '/api/links', body);
      announce(editing ? 'Link saved' : 'Link created');
      onSaved(saved);
    } catch (err) {
      showError(form, err, FIELD_OF_CODE);
    }
  });
  return form;
}

/** Opens the Public links dialog of an item the user may manage. */
export async function openLinksDialog(me, target) {
  const { dialog, body } = dialogShell(`Public links · ${target.name}`);
  if (me.account.plan !== 'enterprise') {
    body.append(h('p', { class: 'note', role: 'note' }, `Public links need the enterprise plan; this account is on the ${me.account.plan} plan.`));
    return;
  }
  const list = h('ul', { class: 'links', 'aria-label': 'Links of this item' });
  const formSlot = h('div', {});
  body.append(list, formSlot);
  const showCreate = () => formSlot.replaceChildren(linkForm(me, target, null, { onSaved: refresh }));
  const edit = (link) => {
    formSlot.replaceChildren(linkForm(me, target, link, { onSaved: refresh, onCancel: showCreate }));
    formSlot.querySelector('input').focus();
  };
  async function refresh() {
    try {
      const page = await api('GET', `/api/${PATHS[target.kind]}/${target.id}/links`);
      const links = page.items || page;
      list.replaceChildren(...(links.length ? links.map((l) => linkCard(l, { onEdit: edit, onDeleted: refresh }))
        : [h('li', { class: 'empty' }, 'No public links yet.')]));
      list.dataset.count = links.length;
      showCreate();
    } catch (err) {
      list.replaceChildren(h('li', { class: 'form-error', role: 'alert' }, err.message));
    }
  }
  await refresh();
  return dialog;
}

/** The edit form of one link in a dialog (the settings page's edit in place). */
export function editLinkDialog(me, link, onSaved) {
  const { dialog, body } = dialogShell(`Edit link · ${link.target.name || link.target.kind}`);
  body.append(linkForm(me, link.target, link, {
    onSaved: (saved) => { dialog.close(); onSaved(saved); },
    onCancel: () => dialog.close(),
  }));
  return dialog;
}
