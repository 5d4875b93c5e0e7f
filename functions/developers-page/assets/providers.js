// The provider keys screen, for holders of org.provider-keys: the org's own credentials for
// screening and data providers (Chainalysis, TRM, …), which Instant Compliance uses to call
// them on the org's behalf. Shown masked only: a secret goes in (add, rotate) and never
// comes back out. Verify one, see its calls per day, rotate it, retire it (disable) without
// losing its history.

import { api, listAll } from './api.js';
import { announce, confirmAction, dialog, errorBox, field, formDialog, h, setFieldError, uid, when } from './ui.js';

// key_type codes and the providers they name, as the API takes them.
export const PROVIDERS = [
  ['H', 'Chainalysis'],
  ['T', 'TRM'],
  ['O', 'Open Sanctions'],
  ['W', 'World Check'],
  ['C', 'Castellum'],
  ['A', 'OpenAI'],
  ['P', 'Perplexity'],
];
const MAX_SECRET = 4096;

const RESULT_TEXT = {
  ok: (key) => `${key.provider} accepted the key.`,
  rejected: (key) => `${key.provider} refused the key: it is wrong, revoked or lacks access. Rotate it with a working one.`,
  unreachable: (key) => `${key.provider} gave no answer about the key. Nothing is known about it yet: try again later.`,
};

export async function renderProviders(view, me) {
  view.replaceChildren(h('h1', {}, 'Provider keys'));
  if (!me.permissions.includes('org.provider-keys')) {
    view.append(
      h('p', { class: 'notice' }, 'Your role doesn’t manage provider keys: ask an administrator or a compliance officer.'),
    );
    return;
  }
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  const load = () => loadKeys(area);
  view.append(
    h(
      'p',
      { class: 'muted' },
      'Your org’s own credentials for screening and data providers, which Instant Compliance uses to call them on your behalf. They are not API keys: they can’t call this API. Each is stored encrypted and shown masked; nobody can read it back, here or anywhere.',
    ),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'primary', id: 'add-provider-key', onclick: () => addDialog(load) }, 'Add provider key')),
    area,
  );
  await load();
}

async function loadKeys(area) {
  area.setAttribute('aria-busy', 'true');
  let keys;
  try {
    keys = await listAll('/v1/org/provider-keys');
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  const reload = () => loadKeys(area);
  if (keys.length === 0) {
    area.replaceChildren(h('p', { class: 'empty' }, 'No provider keys yet. Add the key a provider gave your org to screen with it.'));
  } else {
    area.replaceChildren(
      h(
        'table',
        { class: 'data providers' },
        h('caption', { class: 'visually-hidden' }, 'Provider keys of your org'),
        h('thead', {}, h('tr', {}, ['Provider', 'Key', 'Status', 'Calls', 'Created', 'Actions'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, keys.map((key) => keyRow(key, reload))),
      ),
    );
  }
  area.setAttribute('aria-busy', 'false');
}

function keyRow(key, reload) {
  const name = `${key.provider} ${key.label}`;
  const hidden = (text) => h('span', { class: 'visually-hidden' }, ` ${text}`);
  const actions = [
    h('button', { type: 'button', disabled: !key.enabled, title: key.enabled ? null : 'Enable the key first', onclick: () => verifyDialog(key, reload) }, 'Verify', hidden(name)),
    h('button', { type: 'button', onclick: () => callsDialog(key) }, 'Calls', hidden(`of ${name}`)),
    h('button', { type: 'button', onclick: () => labelDialog(key, reload) }, 'Rename', hidden(name)),
    h('button', { type: 'button', onclick: () => rotateDialog(key, reload) }, 'Rotate', hidden(name)),
    key.enabled
      ? h('button', { type: 'button', class: 'danger-outline', onclick: () => disableDialog(key, reload) }, 'Disable', hidden(name))
      : h('button', { type: 'button', onclick: () => setEnabled(key, true, reload) }, 'Enable', hidden(name)),
  ];
  return h(
    'tr',
    { 'data-provider-key-id': key.id },
    h('td', { 'data-label': 'Provider' }, h('div', { class: 'label' }, key.label), h('div', { class: 'muted' }, key.provider)),
    h('td', { 'data-label': 'Key' }, maskedKey(key)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${key.enabled ? 'status-active' : 'status-revoked'}` }, key.enabled ? 'Enabled' : 'Disabled')),
    h(
      'td',
      { 'data-label': 'Calls' },
      h('div', { class: 'calls-count' }, `${key.usage_count} ${key.usage_count === 1 ? 'call' : 'calls'}`),
      h('div', { class: 'muted' }, 'Last ', when(key.last_used_at)),
    ),
    h(
      'td',
      { 'data-label': 'Created' },
      when(key.created_at),
      h('div', { class: 'muted small' }, key.created_by.email),
      key.rotated_at ? h('div', { class: 'muted' }, 'Rotated ', when(key.rotated_at)) : null,
    ),
    h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, actions)),
  );
}

// The masked key as the API gives it; on screen, the dots clip to fit and the shown
// characters stay.
function maskedKey(key) {
  const shown = key.masked_key.replace(/^•+/, '');
  const dots = key.masked_key.slice(0, key.masked_key.length - shown.length);
  return h(
    'code',
    { class: 'masked', title: key.masked_key, 'aria-label': `${key.provider} key ending ${shown}` },
    h('span', { class: 'dots' }, dots),
    h('span', { class: 'tail' }, shown),
  );
}

// The secret's inputs for a provider: one field, or World Check's API key and API secret
// (sent joined by a colon, as the API takes them). Password inputs, never autofilled.
function secretInputs(initialType) {
  const input = (name) =>
    h('input', { type: 'password', name, autocomplete: 'off', spellcheck: 'false', maxlength: MAX_SECRET, required: true });
  const one = input('secret');
  const pairKey = input('api_key');
  const pairSecret = input('api_secret');
  const single = field('Secret', one, 'The key exactly as the provider gave it. It is encrypted before it is stored and can’t be shown again.');
  const pair = h(
    'div',
    {},
    field('API key', pairKey, 'World Check signs each request: both parts of the credential are needed.'),
    field('API secret', pairSecret),
  );
  let type = initialType;
  const sync = () => {
    single.hidden = type === 'W';
    pair.hidden = type !== 'W';
  };
  sync();
  return {
    elements: [single, pair],
    setType(next) {
      type = next;
      sync();
    },
    // The secret to send, or throws after marking what is missing.
    value() {
      for (const control of [one, pairKey, pairSecret]) setFieldError(control, null);
      if (type === 'W') {
        for (const [control, what] of [[pairKey, 'the API key'], [pairSecret, 'the API secret']]) {
          if (!control.value.trim()) {
            setFieldError(control, `Enter ${what}.`);
            control.focus();
            throw { message: 'Check the fields marked above.' };
          }
        }
        if (pairKey.value.includes(':')) {
          setFieldError(pairKey, 'An API key has no colon: check you pasted the key, not the pair.');
          pairKey.focus();
          throw { message: 'Check the fields marked above.' };
        }
        return `${pairKey.value.trim()}:${pairSecret.value.trim()}`;
      }
      if (!one.value.trim()) {
        setFieldError(one, 'Enter the secret.');
        one.focus();
        throw { message: 'Check the fields marked above.' };
      }
      return one.value.trim();
    },
    // Shows the API's complaint about the secret on the field it came from.
    blame(failure) {
      if (failure.param !== 'secret') return;
      const control = type === 'W' ? pairKey : one;
      setFieldError(control, failure.message);
      control.focus();
    },
    clear() {
      for (const control of [one, pairKey, pairSecret]) control.value = '';
    },
  };
}

function labelInput(value = '') {
  return h('input', { type: 'text', name: 'label', maxlength: 100, required: true, autocomplete: 'off', value });
}

function checkLabel(label) {
  setFieldError(label, null);
  if (!label.value.trim()) {
    setFieldError(label, 'Give the key a label, such as “Production screening”.');
    label.focus();
    throw { message: 'Check the fields marked above.' };
  }
  return label.value.trim();
}

function addDialog(reload) {
  const type = h(
    'select',
    { name: 'key_type' },
    PROVIDERS.map(([code, name]) => h('option', { value: code }, name)),
  );
  const label = labelInput();
  const secret = secretInputs(type.value);
  type.addEventListener('change', () => secret.setType(type.value));
  formDialog('Add a provider key', {
    intro: h('p', { class: 'muted' }, 'Calls to a provider use its newest enabled key. Add the key, then verify it: Instant Compliance makes the provider’s cheapest signed-in request with it.'),
    fields: [field('Provider', type), field('Label', label), secret.elements],
    submitLabel: 'Add key',
    onClose: () => secret.clear(),
    run: async (box) => {
      const body = { key_type: type.value, label: checkLabel(label), secret: secret.value() };
      let created;
      try {
        created = await api('POST', '/v1/org/provider-keys', { body, idempotent: true });
      } catch (failure) {
        secret.blame(failure);
        if (failure.param === 'label') setFieldError(label, failure.message);
        throw failure;
      }
      box.close();
      announce(`${created.provider} key “${created.label}” added, shown as ${created.masked_key}.`);
      reload();
    },
  });
}

function rotateDialog(key, reload) {
  const secret = secretInputs(key.key_type);
  formDialog(`Rotate ${key.provider} key “${key.label}”`, {
    intro: h(
      'p',
      { class: 'muted' },
      'The new secret replaces the current one at once, under the same id, label and history. Instant Compliance keeps no copy of the old one: revoke it at the provider when the new one verifies.',
    ),
    fields: [secret.elements],
    submitLabel: 'Rotate key',
    onClose: () => secret.clear(),
    run: async (box) => {
      const body = { secret: secret.value() };
      let rotated;
      try {
        rotated = await api('POST', `/v1/org/provider-keys/${key.id}/rotate`, { body, idempotent: true });
      } catch (failure) {
        secret.blame(failure);
        throw failure;
      }
      box.close();
      announce(`${rotated.provider} key “${rotated.label}” rotated, now shown as ${rotated.masked_key}.`);
      reload();
    },
  });
}

function labelDialog(key, reload) {
  const label = labelInput(key.label);
  formDialog(`Rename ${key.provider} key “${key.label}”`, {
    fields: [field('Label', label)],
    submitLabel: 'Save',
    wide: false,
    run: async (box) => {
      const body = { label: checkLabel(label) };
      try {
        await api('PATCH', `/v1/org/provider-keys/${key.id}`, { body, idempotent: true });
      } catch (failure) {
        if (failure.param === 'label') setFieldError(label, failure.message);
        throw failure;
      }
      box.close();
      announce(`Renamed to “${body.label}”.`);
      reload();
    },
  });
}

function disableDialog(key, reload) {
  confirmAction({
    title: `Disable ${key.provider} key “${key.label}”?`,
    message: `Calls to ${key.provider} stop using it at once (another enabled ${key.provider} key is used if there is one). Its calls and history stay, and you can enable it again.`,
    confirmLabel: 'Disable key',
    run: async () => {
      await api('PATCH', `/v1/org/provider-keys/${key.id}`, { body: { enabled: false }, idempotent: true });
      announce(`${key.provider} key “${key.label}” is disabled.`);
      reload();
    },
  });
}

async function setEnabled(key, enabled, reload) {
  try {
    await api('PATCH', `/v1/org/provider-keys/${key.id}`, { body: { enabled }, idempotent: true });
  } catch (failure) {
    announce(failure.message || 'The key was not changed.');
    return;
  }
  announce(`${key.provider} key “${key.label}” is ${enabled ? 'enabled' : 'disabled'}.`);
  reload();
}

function verifyDialog(key, reload) {
  formDialog(`Verify ${key.provider} key “${key.label}”`, {
    intro: h('p', { class: 'muted' }, `Makes ${key.provider}’s cheapest signed-in request with the key. It counts as a call.`),
    submitLabel: 'Verify key',
    wide: false,
    run: async (box) => {
      const verification = await api('POST', `/v1/org/provider-keys/${key.id}/verify`, { idempotent: true });
      showVerification(box, key, verification);
      reload();
    },
  });
}

function showVerification(box, key, verification) {
  const titles = { ok: 'The key works', rejected: 'The key was refused', unreachable: 'No answer about the key' };
  const classes = { ok: 'status-active', rejected: 'status-revoked', unreachable: 'status-soon' };
  box.setTitle(titles[verification.result] || 'Verified');
  const done = h('button', { type: 'button', class: 'primary', onclick: () => box.close() }, 'Done');
  box.body.replaceChildren(
    h(
      'p',
      { class: 'verification', role: 'status' },
      h('span', { class: `badge ${classes[verification.result] || ''}` }, verification.result),
      ' ',
      (RESULT_TEXT[verification.result] || (() => ''))(key),
    ),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Provider answered'),
      h('dd', {}, verification.http_status === null ? 'Nothing' : `HTTP ${verification.http_status}`),
      verification.detail ? [h('dt', {}, 'Detail'), h('dd', {}, verification.detail)] : null,
      h('dt', {}, 'Checked'),
      h('dd', {}, when(verification.checked_at, { exact: true })),
    ),
    h('div', { class: 'actions' }, done),
  );
  done.focus();
  announce(`${titles[verification.result]}: ${(RESULT_TEXT[verification.result] || (() => ''))(key)}`);
}

// The key's calls per day (UTC), the last 30 days, newest first, with the totals.
async function callsDialog(key) {
  const box = dialog(`Calls with ${key.provider} key “${key.label}”`, { wide: true });
  const area = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const done = h('button', { type: 'button', class: 'primary', onclick: () => box.close() }, 'Done');
  box.body.append(area, h('div', { class: 'actions' }, done));
  done.focus();
  let days;
  try {
    days = (await api('GET', `/v1/org/provider-keys/${key.id}/call-summaries`)).data;
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  const calls = days.reduce((sum, day) => sum + day.calls, 0);
  const errors = days.reduce((sum, day) => sum + day.errors, 0);
  const used = days.filter((day) => day.calls > 0).reverse();
  const captionId = uid('calls');
  area.replaceChildren(
    h(
      'p',
      { id: captionId },
      `${calls} ${calls === 1 ? 'call' : 'calls'}, ${errors} ${errors === 1 ? 'error' : 'errors'} in the last ${days.length} days (UTC). `,
      h('span', { class: 'muted' }, `${key.usage_count} in all since the key was added.`),
    ),
    used.length === 0
      ? h('p', { class: 'empty' }, 'No calls in these days.')
      : h(
          'table',
          { class: 'data calls', 'aria-describedby': captionId },
          h('caption', { class: 'visually-hidden' }, 'Calls per day'),
          h('thead', {}, h('tr', {}, ['Day', 'Calls', 'Errors'].map((name) => h('th', { scope: 'col' }, name)))),
          h(
            'tbody',
            {},
            used.map((day) =>
              h(
                'tr',
                { 'data-date': day.date },
                h('td', { 'data-label': 'Day' }, h('time', { datetime: day.date }, day.date)),
                h('td', { 'data-label': 'Calls' }, String(day.calls)),
                h('td', { 'data-label': 'Errors' }, String(day.errors)),
              ),
            ),
          ),
        ),
  );
  area.setAttribute('aria-busy', 'false');
}
