// What every screen builds with: elements (text only, never HTML strings), dates, errors,
// dialogs and announcements.

// h('button', {class: 'primary', onclick: f}, 'Create key'): attributes, `on…` listeners,
// and children (strings become text; null and false are skipped; arrays are flattened).
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'value') {
      element.value = value;
    } else if (name === 'checked') {
      element.checked = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let nextId = 0;
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [
  ['year', 365 * 864e5],
  ['month', 30 * 864e5],
  ['day', 864e5],
  ['hour', 36e5],
  ['minute', 6e4],
];

// "5 minutes ago", "in 3 days", "just now".
export function relative(iso, now = Date.now()) {
  const delta = Date.parse(iso) - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(delta) >= ms) return relativeFormat.format(Math.round(delta / ms), unit);
  }
  return 'just now';
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// A <time> showing the relative time, with the exact one on hover and for readers.
export function when(iso, { exact = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const full = dateFormat.format(new Date(iso));
  return h('time', { datetime: iso, title: full }, exact ? full : relative(iso));
}

// The API's message, and the Request-Id to quote to support.
export function errorBox(failure) {
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('p', {}, failure.message || String(failure)),
    failure.requestId
      ? h('p', { class: 'request-id' }, 'Request-Id: ', h('code', {}, failure.requestId))
      : null,
  );
}

export function announce(text) {
  const region = document.getElementById('announce');
  region.textContent = '';
  // A fresh node is read even when the text repeats.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';

// A modal dialog: focus stays inside while it is open (the rest of the page is inert),
// Escape closes it, and closing removes it from the document, with everything it showed.
export function dialog(title, { wide = false, onClose = null } = {}) {
  const titleId = uid('dialog-title');
  const body = h('div', { class: 'dialog-body' });
  const element = h(
    'dialog',
    { class: wide ? 'wide' : null, 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title),
    body,
  );
  const opener = document.activeElement;
  // Tab and Shift+Tab go round the dialog's controls rather than out to the browser.
  element.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return;
    const focusable = [...element.querySelectorAll(FOCUSABLE)].filter(
      (node) => !node.disabled && node.getClientRects().length > 0,
    );
    if (focusable.length === 0) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
  element.addEventListener('close', () => {
    element.remove();
    if (onClose) onClose();
    // Back to what opened it, or, when that row was redrawn, to the screen.
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    else document.getElementById('main')?.focus();
  });
  document.body.append(element);
  element.showModal();
  return {
    element,
    body,
    setTitle(text) {
      element.querySelector('h2').textContent = text;
    },
    close() {
      if (element.open) element.close();
    },
  };
}

// A dialog holding a form: `fields`, an error area, Cancel and the submit button. `run(box)`
// does the work; what it throws (an ApiFailure, or {message}) is shown in the dialog, and
// the button can be pressed again. Focus starts on the first field — or, when there is none
// and the action is destructive, on Cancel, so it is never one Enter away.
export function formDialog(title, { intro = null, fields = [], submitLabel, danger = false, wide = true, onClose = null, run }) {
  const box = dialog(title, { wide, onClose });
  const problem = h('div', { class: 'problem' });
  const submit = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submitLabel);
  const cancel = h('button', { type: 'button', onclick: () => box.close() }, 'Cancel');
  const form = h(
    'form',
    {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        submit.disabled = true;
        try {
          await run(box);
        } catch (failure) {
          problem.replaceChildren(errorBox(failure));
          submit.disabled = false;
        }
      },
    },
    intro,
    fields,
    problem,
    h('div', { class: 'actions' }, cancel, submit),
  );
  box.body.append(form);
  const first = form.querySelector('input, select, textarea');
  (first || (danger ? cancel : submit)).focus();
  return box;
}

// Asks before a destructive action, then runs it (and closes); an error stays in the dialog.
export function confirmAction({ title, message, confirmLabel, danger = true, run }) {
  return formDialog(title, {
    intro: h('p', {}, message),
    submitLabel: confirmLabel,
    danger,
    wide: false,
    run: async (box) => {
      await run();
      box.close();
    },
  });
}

// A secret shown once (a new key's plaintext, a webhook signing secret): a monospace box,
// a copy button, the warning. The caller's dialog closing removes it.
const keyWarning = () => [
  h('strong', {}, 'Copy this key now. '),
  'You won’t see it again: Instant Compliance keeps only a hash of it. Store it in your secrets manager, not in code.',
];
export function secretBox(key, { label = 'The new API key', warning = null } = {}) {
  const valueId = uid('secret');
  const status = h('span', { class: 'copied', role: 'status' });
  const copy = h(
    'button',
    {
      type: 'button',
      'aria-describedby': valueId,
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(key);
          status.textContent = 'Copied';
        } catch {
          const range = document.createRange();
          range.selectNodeContents(document.getElementById(valueId));
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          status.textContent = 'Selected: press Ctrl+C (⌘C) to copy';
        }
      },
    },
    'Copy',
  );
  return h(
    'div',
    { class: 'secret-panel' },
    h('p', { class: 'warning' }, warning || keyWarning()),
    h(
      'div',
      { class: 'secret' },
      h('code', { id: valueId, class: 'secret-value', 'aria-label': label }, key),
      copy,
    ),
    status,
  );
}

// A field: label, control, a hint and a place for its error, wired for screen readers.
export function field(label, control, hint = null) {
  const id = control.id || uid('field');
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const described = [hintId, errorId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    h('p', { class: 'field-error', id: errorId }),
  );
}

// Marks a field's control invalid with a message, or clears it (message null).
export function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    if (error) error.textContent = message;
  } else {
    control.removeAttribute('aria-invalid');
    if (error) error.textContent = '';
  }
}

export const ROLE_NAMES = {
  administrator: 'Administrator',
  compliance_officer: 'Compliance officer',
  developer: 'Developer',
  analyst: 'Analyst',
};

export function roleName(role) {
  return ROLE_NAMES[role] || role;
}

// A spreadsheet cell: quoted, and never read as a formula (a leading =, +, -, @, tab or
// carriage return gets a ').
export function csvCell(value) {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

// Rows of cells as a CSV file the browser saves as `filename`.
export function downloadCsv(filename, header, rows) {
  const lines = [header.join(','), ...rows.map((cells) => cells.map(csvCell).join(','))];
  const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
