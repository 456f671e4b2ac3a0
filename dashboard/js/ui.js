// Small DOM helpers: elements, dates in the user's time zone, refusals
// placed beside their field, confirmations and announcements.

/** h('button', {class: 'x', onclick: f}, 'text', child...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the main area's content and moves focus to its heading. */
export function render(...children) {
  const main = document.getElementById('main');
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  const heading = main.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
    document.title = heading.textContent + ' · publinks dashboard';
  }
}

/** Says something to screen readers (and tests) without moving focus. */
export function announce(text) {
  document.getElementById('status').textContent = text;
}

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** An RFC 3339 instant as the user reads it, in their zone. */
export function when(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A datetime-local value (the user's zone) as UTC RFC 3339, or null when empty. */
export function toUtc(local) {
  if (!local) return null;
  const d = new Date(local);
  return isNaN(d) ? local : d.toISOString();
}

/** An instant as a datetime-local value in the user's zone. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Clears a form's refusals. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error, .form-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    el.removeAttribute('aria-describedby');
  }
}

/**
 * Shows a refusal beside the field it concerns (the API's `field`, or the
 * one a code belongs to), else at the top of the form, in the API's words.
 */
export function showError(form, err, fieldOfCode = {}) {
  clearErrors(form);
  const name = err.field || fieldOfCode[err.code];
  const input = name && form.querySelector(`[name="${CSS.escape(name.split('.')[0])}"]`);
  if (input) {
    const id = `${input.id || input.name}-error`;
    const note = h('p', { class: 'field-error', id, role: 'alert' }, err.message);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    input.closest('.field').append(note);
    input.focus();
  } else {
    form.prepend(h('p', { class: 'form-error', role: 'alert' }, err.message));
  }
}

/** Copies an input's value, with a fallback where the clipboard API is refused; says `done` to screen readers. */
export async function copyValue(input, done) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand('copy');
  }
  announce(done);
}

/** Asks before something that cannot be undone; resolves true on yes. */
export function confirmAction(question, yes) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, question),
      h('form', { method: 'dialog', class: 'actions' },
        h('button', { value: 'no', type: 'submit' }, 'Cancel'),
        h('button', { value: 'yes', type: 'submit', class: 'danger' }, yes)));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(dialog.returnValue === 'yes'); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A labelled form field: label, control, optional hint. */
export function field(label, control, hint) {
  const id = control.id || (control.id = 'f-' + (control.name || Math.random().toString(36).slice(2)));
  const hintId = hint ? id + '-hint' : undefined;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || text}` }, text);
}
