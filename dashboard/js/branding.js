// Settings → Branding (administrators): how the account's visitor pages
// look — the accent colour, the logo — and the watermark its preview-only
// links' large previews carry. Each part saves on its own; a refusal is shown
// beside its field in the API's words.

import { api, blobUrl, isAdmin } from './api.js';
import { h, render, field, showError, clearErrors, confirmAction, announce, bytes } from './ui.js';

/** publinks' own blue: the visitor pages' accent when the account sets none. */
const DEFAULT_ACCENT = '#0b5cad';
const LOGO_TYPES = 'image/png,image/jpeg,image/webp';
/** The field a refusal without one belongs to (a body over the server's limit). */
const FIELD_OF_CODE = { payload_too_large: 'logo', unreadable_body: 'logo' };

/** Says a part was saved, in the form and to screen readers. */
function saved(form, text) {
  form.querySelector('.saved')?.remove();
  form.querySelector('.actions').after(h('p', { class: 'saved' }, text));
  announce(text);
}

/** What visitors see now: a link and a button in the saved accent. */
function accentSample(color) {
  const c = color || DEFAULT_ACCENT;
  const sample = h('div', { class: 'accent-sample', id: 'accent-sample', 'data-accent': c },
    h('span', { class: 'sample-link' }, 'A link on a visitor page'),
    h('span', { class: 'sample-button' }, 'Download'));
  sample.style.setProperty('--sample', c);
  return sample;
}

function accentForm(branding, onSaved) {
  const initial = branding.accent_color || '';
  const hex = h('input', { type: 'text', name: 'accent_color', id: 'accent_color', value: initial,
    placeholder: DEFAULT_ACCENT, autocomplete: 'off', spellcheck: 'false', maxlength: '7', 'aria-describedby': 'accent_color-hint' });
  const picker = h('input', { type: 'color', id: 'accent_picker', value: initial || DEFAULT_ACCENT });
  picker.addEventListener('input', () => { hex.value = picker.value; });
  hex.addEventListener('input', () => { if (/^#[0-9a-fA-F]{6}$/.test(hex.value)) picker.value = hex.value.toLowerCase(); });
  const form = h('form', { class: 'card settings', id: 'accent-form', novalidate: true, 'aria-labelledby': 'accent-title' },
    h('h2', { id: 'accent-title' }, 'Accent colour'),
    h('div', { class: 'field' },
      h('label', { for: 'accent_color' }, 'Accent colour (hex, #rrggbb)'),
      h('div', { class: 'color-row' }, hex,
        h('label', { for: 'accent_picker', class: 'picker-label' }, 'Pick'), picker),
      h('p', { class: 'hint', id: 'accent_color-hint' },
        'Links and buttons on the visitor pages, which carry white text: it needs a contrast of at least 4.5:1 against white. Empty: publinks’ blue.')),
    h('p', { class: 'meta' }, 'Visitors see now:'), accentSample(branding.accent_color),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save colour')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const value = hex.value.trim();
    try {
      const next = await api('PATCH', '/api/account/branding', { accent_color: value || null });
      hex.value = next.accent_color || '';
      picker.value = next.accent_color || DEFAULT_ACCENT;
      form.querySelector('#accent-sample').replaceWith(accentSample(next.accent_color));
      onSaved(next);
      saved(form, value ? 'Accent colour saved.' : 'Accent colour reset to publinks’ blue.');
    } catch (err) {
      showError(form, err);
    }
  });
  return form;
}

async function logoPreview(branding) {
  if (!branding.logo) return h('p', { class: 'empty', id: 'logo-current' }, 'No logo: the visitor pages show none.');
  try {
    const url = await blobUrl('/api/account/branding/logo');
    const kind = branding.logo.content_type.replace('image/', '').toUpperCase();
    return h('figure', { class: 'logo-preview', id: 'logo-current', 'data-version': branding.logo.version },
      h('img', { src: url, alt: 'The current logo', onload: () => setTimeout(() => URL.revokeObjectURL(url), 1000) }),
      h('figcaption', { class: 'meta' }, `The current logo: ${kind}, ${bytes(branding.logo.size)}`));
  } catch (err) {
    return h('p', { class: 'form-error', id: 'logo-current', role: 'alert' }, err.message);
  }
}

async function logoForm(branding, onSaved) {
  const file = h('input', { type: 'file', name: 'logo', id: 'logo', accept: LOGO_TYPES });
  const remove = h('button', { type: 'button', class: 'danger', id: 'remove-logo', disabled: !branding.logo }, 'Remove logo');
  const form = h('form', { class: 'card settings', id: 'logo-form', novalidate: true, 'aria-labelledby': 'logo-title' },
    h('h2', { id: 'logo-title' }, 'Logo'),
    await logoPreview(branding),
    field('New logo', file, 'PNG, JPEG or WebP, at most 200 KiB; shown in the header of every visitor page (SVG is refused: it can carry script).'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload logo'), remove));
  const show = async (next, text) => {
    form.querySelector('#logo-current').replaceWith(await logoPreview(next));
    remove.disabled = !next.logo;
    file.value = '';
    onSaved(next);
    saved(form, text);
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!file.files.length) {
      showError(form, { message: 'Choose an image file to upload.', field: 'logo' });
      return;
    }
    try {
      await show(await api('PUT', '/api/account/branding/logo', file.files[0]), 'Logo uploaded.');
    } catch (err) {
      showError(form, err, FIELD_OF_CODE);
    }
  });
  remove.addEventListener('click', async () => {
    clearErrors(form);
    if (!(await confirmAction('Remove the logo? The visitor pages show none from now on.', 'Remove logo'))) return;
    try {
      await show(await api('DELETE', '/api/account/branding/logo'), 'Logo removed.');
    } catch (err) {
      showError(form, err);
    }
  });
  return form;
}

function watermarkForm(branding, onSaved) {
  const text = h('input', { type: 'text', name: 'watermark_text', id: 'watermark_text', value: branding.watermark_text || '',
    maxlength: '64', autocomplete: 'off' });
  const logo = h('input', { type: 'checkbox', name: 'watermark_logo', id: 'watermark_logo', checked: !!branding.watermark_logo,
    'aria-describedby': 'watermark_logo-hint' });
  const form = h('form', { class: 'card settings', id: 'watermark-form', novalidate: true, 'aria-labelledby': 'watermark-title' },
    h('h2', { id: 'watermark-title' }, 'Watermark'),
    field('Watermark text', text, 'Burned into the large previews of preview-only links (1 to 64 characters). Empty: no watermark.'),
    h('div', { class: 'field check' }, logo, h('label', { for: 'watermark_logo' }, 'Use the logo as the watermark instead of the text'),
      h('p', { class: 'hint', id: 'watermark_logo-hint' }, 'Blended into the centre of each large preview; the logo cannot be removed while it is the watermark.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save watermark')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const value = text.value.trim();
    try {
      const next = await api('PATCH', '/api/account/branding', { watermark_text: value || null, watermark_logo: logo.checked });
      logo.checked = !!next.watermark_logo;
      onSaved(next);
      saved(form, next.watermark_logo ? 'The logo is the watermark.' : value ? 'Watermark saved.' : 'Watermark removed.');
    } catch (err) {
      showError(form, err);
    }
  });
  return form;
}

export async function brandingPage(me) {
  if (!isAdmin(me)) {
    return render(h('h1', {}, 'Branding'),
      h('p', { class: 'note', role: 'note' }, `The branding of ${me.account.name} is set by its administrators. Ask one of them to change it.`));
  }
  const branding = await api('GET', '/api/account/branding');
  // Keeps the signed-in copy of the account current for the other pages.
  const keep = (next) => { me.account.branding = next; };
  render(h('h1', {}, 'Branding'),
    h('p', {}, 'How the visitor pages of this account’s public links look, and what its preview-only links’ previews carry.'),
    h('dl', { class: 'facts' }, h('dt', {}, 'Display name'), h('dd', { id: 'account-name' }, me.account.name),
      h('dd', { class: 'meta' }, 'Set when the account was made; the API does not change it.')),
    accentForm(branding, keep), await logoForm(branding, keep), watermarkForm(branding, keep));
}
