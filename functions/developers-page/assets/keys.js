// The keys screen: the org's API keys in a table, and creating, editing, rolling and
// revoking them. A new key's plaintext is shown once, in its dialog, and goes with it.

import { api } from './api.js';
import { allowlistEntries } from './cidr.js';
import {
  announce,
  confirmAction,
  errorBox,
  field,
  formDialog,
  h,
  roleName,
  secretBox,
  setFieldError,
  uid,
  when,
} from './ui.js';

export const SCOPES = [
  ['customers:read', 'Read customers and their KYC status'],
  ['customers:write', 'Create and update customers'],
  ['aml:read', 'Read AML screening results'],
  ['webhooks:write', 'Manage webhook endpoints (Zapier subscribes with it)'],
];
const SOON_MS = 7 * 864e5;
const MAX_RATE_LIMIT = 1000;
const DEFAULT_RATE_LIMIT = 50;
const GRACE_PERIODS = [
  [0, 'Expire it now'],
  [3600, 'In 1 hour'],
  [86400, 'In 24 hours'],
  [259200, 'In 3 days'],
  [604800, 'In 7 days'],
];

// active / expires soon / expired / revoked, from the key and the clock.
export function keyStatus(key, now = Date.now()) {
  if (key.status === 'revoked') return ['revoked', 'Revoked'];
  const expires = key.expires_at ? Date.parse(key.expires_at) : null;
  if (key.status === 'expired' || (expires !== null && expires <= now)) return ['expired', 'Expired'];
  if (expires !== null && expires - now < SOON_MS) return ['soon', 'Expires soon'];
  return ['active', 'Active'];
}

export function keyDisplay(key) {
  return `${key.prefix}…${key.last4}`;
}

function canRoll(me, key) {
  return key.scopes.every((scope) => me.grantable_scopes.includes(scope));
}

export async function renderKeys(view, me) {
  view.replaceChildren(
    h('h1', {}, 'API keys'),
    h(
      'p',
      { class: 'muted' },
      'Keys let your systems call the Instant Compliance API. Treat them like passwords: anyone with a key can act as your org within its scopes.',
    ),
  );
  if (!me.permissions.includes('org.api-keys')) {
    view.append(
      h(
        'p',
        { class: 'notice' },
        `Your role (${roleName(me.role)}) doesn’t manage API keys. Ask an administrator or compliance officer of your org for a key, or for a role that manages them.`,
      ),
    );
    return;
  }
  const filters = { mine: false, status: '' };
  const table = h('div', { class: 'table-area', 'aria-live': 'polite', 'aria-busy': 'true' });
  const banners = h('div', { class: 'leak-banners' });
  const load = () => Promise.all([loadKeys(table, me, filters), loadLeaks(banners, me, load)]);
  const whose = h(
    'select',
    {
      onchange: () => {
        filters.mine = whose.value === 'mine';
        load();
      },
    },
    h('option', { value: 'all' }, 'All of the org’s keys'),
    h('option', { value: 'mine' }, 'Keys I created'),
  );
  const status = h(
    'select',
    {
      onchange: () => {
        filters.status = status.value;
        load();
      },
    },
    h('option', { value: '' }, 'Any status'),
    h('option', { value: 'active' }, 'Active'),
    h('option', { value: 'expired' }, 'Expired'),
    h('option', { value: 'revoked' }, 'Revoked'),
  );
  view.append(
    banners,
    h(
      'div',
      { class: 'toolbar' },
      field('Show', whose),
      field('Status', status),
      h(
        'button',
        { type: 'button', class: 'primary', id: 'create-key', onclick: () => createKeyDialog(me, load) },
        'Create key',
      ),
    ),
    table,
  );
  await load();
}

async function loadKeys(area, me, filters, cursor = null, rows = null) {
  // Only the newest load of this area writes into it (filters changed while one ran).
  const ticket = (area.ticket = (area.ticket || 0) + 1);
  area.setAttribute('aria-busy', 'true');
  const query = new URLSearchParams({ limit: '50' });
  if (filters.mine) query.set('created_by', me.id);
  if (filters.status) query.set('status', filters.status);
  if (cursor) query.set('cursor', cursor);
  let page;
  try {
    page = await api('GET', `/v1/org/api-keys?${query}`);
  } catch (failure) {
    if (area.ticket !== ticket) return;
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  if (area.ticket !== ticket) return;
  const reload = () => loadKeys(area, me, filters);
  let body = rows;
  if (!body) {
    body = h('tbody');
    area.replaceChildren();
    if (page.data.length === 0) {
      area.append(
        h(
          'p',
          { class: 'empty' },
          filters.mine || filters.status
            ? 'No keys match these filters.'
            : 'Your org has no API keys yet. Create one to connect your first system.',
        ),
      );
      area.setAttribute('aria-busy', 'false');
      return;
    }
    area.append(
      h(
        'table',
        { class: 'data keys' },
        h('caption', { class: 'visually-hidden' }, 'API keys, newest first'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Name', 'Key', 'Scopes', 'Status', 'Created', 'Last used', 'Expires', 'Actions'].map((name) =>
              h('th', { scope: 'col' }, name),
            ),
          ),
        ),
        body,
      ),
    );
  }
  for (const key of page.data) body.append(keyRow(key, me, reload));
  area.querySelector('.more')?.remove();
  if (page.has_more) {
    area.append(
      h(
        'button',
        {
          type: 'button',
          class: 'more',
          onclick: () => loadKeys(area, me, filters, page.next_cursor, body),
        },
        'Show more keys',
      ),
    );
  }
  area.setAttribute('aria-busy', 'false');
}

// Keys a secret scanner reported and no administrator has dismissed yet: a banner each,
// with where the key was found, a pre-filled replacement and a dismissal.
async function loadLeaks(area, me, reload) {
  let page;
  try {
    page = await api('GET', '/v1/org/api-keys?leak=undismissed&limit=100');
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    return;
  }
  area.replaceChildren(...page.data.map((key) => leakBanner(key, me, reload)));
}

const SCANNERS = { github: 'GitHub secret scanning' };

function leakBanner(key, me, reload) {
  const leak = key.leak;
  const scanner = SCANNERS[leak.source] || leak.source;
  const headingId = uid('leak');
  const where = leak.url
    ? h('a', { href: leak.url, rel: 'noopener noreferrer', target: '_blank', class: 'leak-url' }, leak.url)
    : 'a public place it did not name';
  const outcome =
    key.revocation_reason === 'leaked'
      ? 'It was revoked automatically: every request with it is now refused (401).'
      : 'It had already been revoked, so it no longer works.';
  const dismiss = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        dismiss.disabled = true;
        try {
          await api('POST', `/v1/org/api-keys/${key.id}/dismiss-leak`, { idempotent: true });
          // Gone at once: the listing's index may take a moment to say so itself.
          banner.remove();
          announce(`Dismissed the leak notice for “${key.label}”.`);
        } catch (failure) {
          dismiss.disabled = false;
          banner.append(errorBox(failure));
        }
      },
    },
    'Dismiss',
    h('span', { class: 'visually-hidden' }, ` the notice for ${key.label}`),
  );
  const banner = h(
    'section',
    { class: 'leak-banner', role: 'region', 'aria-labelledby': headingId, 'data-key-id': key.id },
    h('h2', { id: headingId }, `“${key.label}” was found in public`),
    h(
      'p',
      {},
      h('code', {}, keyDisplay(key)),
      ` was reported by ${scanner} `,
      when(leak.reported_at),
      ' at ',
      where,
      '. ',
      outcome,
    ),
    h(
      'p',
      { class: 'muted' },
      'Next: create a replacement and deploy it, remove the key from where it was exposed (rewrite the history, scrub the ticket), and review the key’s request log for what was accessed.',
    ),
    h(
      'div',
      { class: 'row-actions' },
      h(
        'button',
        { type: 'button', class: 'primary', onclick: () => createKeyDialog(me, reload, key) },
        'Create a replacement',
        h('span', { class: 'visually-hidden' }, ` for ${key.label}`),
      ),
      h('a', { href: `#/keys/${key.id}/requests`, class: 'button' }, 'Request log', h('span', { class: 'visually-hidden' }, ` of ${key.label}`)),
      dismiss,
    ),
  );
  return banner;
}

function keyRow(key, me, reload) {
  const [statusClass, statusText] = keyStatus(key);
  const live = statusClass === 'active' || statusClass === 'soon';
  const rolled = Boolean(key.rolled_to);
  const actions = [
    h('a', { href: `#/keys/${key.id}/requests`, class: 'button' }, 'Requests', h('span', { class: 'visually-hidden' }, ` of ${key.label}`)),
  ];
  if (me.permissions.includes('org.audit')) {
    // Who created, edited, rolled or revoked it (the audit trail, filtered to this key).
    actions.push(
      h('a', { href: `#/audit?target=${encodeURIComponent(key.id)}`, class: 'button' }, 'History', h('span', { class: 'visually-hidden' }, ` of ${key.label}`)),
    );
  }
  if (live && !rolled) {
    actions.push(
      h('button', { type: 'button', onclick: () => editKeyDialog(key, reload) }, 'Edit', h('span', { class: 'visually-hidden' }, ` ${key.label}`)),
    );
    if (canRoll(me, key)) {
      actions.push(
        h('button', { type: 'button', onclick: () => rollKeyDialog(key, reload) }, 'Roll', h('span', { class: 'visually-hidden' }, ` ${key.label}`)),
      );
    }
  }
  if (live) {
    actions.push(
      h(
        'button',
        { type: 'button', class: 'danger-outline', onclick: () => revokeKey(key, reload) },
        'Revoke',
        h('span', { class: 'visually-hidden' }, ` ${key.label}`),
      ),
    );
  }
  const createdBy = key.created_by.email || key.created_by.id;
  return h(
    'tr',
    { 'data-key-id': key.id },
    h('td', { 'data-label': 'Name' }, h('span', { class: 'label' }, key.label), rolled ? h('span', { class: 'muted small' }, ' (rolled)') : null),
    h(
      'td',
      { 'data-label': 'Key' },
      h('code', { class: 'key-id' }, keyDisplay(key)),
      ' ',
      h('span', { class: `badge mode-${key.mode}` }, key.mode),
    ),
    h('td', { 'data-label': 'Scopes' }, h('ul', { class: 'scopes' }, key.scopes.map((s) => h('li', {}, h('code', {}, s))))),
    h(
      'td',
      { 'data-label': 'Status' },
      h('span', { class: `badge status-${statusClass}` }, statusText),
      key.leak ? [' ', h('span', { class: 'badge status-leaked', title: `Found in public${key.leak.url ? ` at ${key.leak.url}` : ''}` }, 'Leaked')] : null,
    ),
    h('td', { 'data-label': 'Created' }, when(key.created_at), h('span', { class: 'muted small block' }, `by ${createdBy}`)),
    h(
      'td',
      { 'data-label': 'Last used', class: 'last-used' },
      key.last_used_at
        ? [when(key.last_used_at), key.last_used_ip ? h('span', { class: 'muted small block' }, `from ${key.last_used_ip}`) : null]
        : h('span', { class: 'muted' }, 'Never'),
    ),
    h('td', { 'data-label': 'Expires' }, key.expires_at ? when(key.expires_at) : h('span', { class: 'muted' }, 'Never')),
    h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, actions)),
  );
}

// The settings both the create and edit dialogs take: label, allowlist, rate limit.
function settingsFields(key = null) {
  const label = h('input', {
    type: 'text',
    name: 'label',
    maxlength: 100,
    required: true,
    autocomplete: 'off',
    value: key ? key.label : '',
  });
  const allowlist = h('textarea', {
    name: 'ip_allowlist',
    rows: 3,
    spellcheck: 'false',
    autocomplete: 'off',
    value: key ? key.ip_allowlist.join('\n') : '',
  });
  const rate = h('input', {
    type: 'number',
    name: 'rate_limit',
    min: 1,
    max: MAX_RATE_LIMIT,
    step: 1,
    inputmode: 'numeric',
    placeholder: String(DEFAULT_RATE_LIMIT),
    value: key ? String(key.rate_limit.requests_per_second) : '',
  });
  allowlist.addEventListener('input', () => setFieldError(allowlist, allowlistEntries(allowlist.value).problem));
  rate.addEventListener('input', () => setFieldError(rate, rateProblem(rate.value)));
  label.addEventListener('input', () => setFieldError(label, null));
  const nodes = [
    field('Name', label, 'What uses this key, e.g. “CRM sync” or “Zapier”.'),
    field(
      'IP allowlist (optional)',
      allowlist,
      'One IPv4 or IPv6 address or CIDR a line, e.g. 203.0.113.0/24. Leave empty to allow any address.',
    ),
    field('Rate limit (optional)', rate, `Requests per second, 1–${MAX_RATE_LIMIT}. Default ${DEFAULT_RATE_LIMIT}.`),
  ];
  return { label, allowlist, rate, nodes };
}

function rateProblem(text) {
  if (text.trim() === '') return null;
  const value = Number(text);
  return Number.isInteger(value) && value >= 1 && value <= MAX_RATE_LIMIT
    ? null
    : `Enter a whole number from 1 to ${MAX_RATE_LIMIT}.`;
}

// Checks the settings; returns false (with the first bad field focused) when one is wrong.
function checkSettings(fields) {
  const problems = [
    [fields.label, fields.label.value.trim() === '' ? 'Give the key a name.' : null],
    [fields.allowlist, allowlistEntries(fields.allowlist.value).problem],
    [fields.rate, rateProblem(fields.rate.value)],
  ];
  for (const [control, problem] of problems) setFieldError(control, problem);
  const first = problems.find(([, problem]) => problem);
  if (first) first[0].focus();
  return !first;
}

// Puts an API error on the field it names too (the dialog shows it with its Request-Id).
function markField(failure, controls) {
  const control = controls[failure.param];
  if (control) {
    setFieldError(control, failure.message);
    control.focus();
  }
  return failure;
}

const CHECK_FIELDS = { message: 'Check the fields marked above.' };

function expiryFields() {
  const choice = h(
    'select',
    { name: 'expires' },
    h('option', { value: '' }, 'Never'),
    h('option', { value: '30' }, 'In 30 days'),
    h('option', { value: '90' }, 'In 90 days'),
    h('option', { value: '365' }, 'In 1 year'),
    h('option', { value: 'date' }, 'On a date…'),
  );
  const tomorrow = new Date(Date.now() + 864e5).toISOString().slice(0, 10);
  const date = h('input', { type: 'date', name: 'expires_on', min: tomorrow });
  const dateField = field('Expires on', date, 'The key stops working at the end of this day (your time).');
  dateField.hidden = true;
  choice.addEventListener('change', () => {
    dateField.hidden = choice.value !== 'date';
    setFieldError(date, null);
  });
  const value = () => {
    if (choice.value === '') return { ok: true, at: null };
    if (choice.value === 'date') {
      if (!date.value) return { ok: false, control: date, problem: 'Pick the day the key expires.' };
      const end = new Date(`${date.value}T23:59:59`);
      if (Number.isNaN(end.getTime()) || end.getTime() <= Date.now()) {
        return { ok: false, control: date, problem: 'Pick a day in the future.' };
      }
      return { ok: true, at: end.toISOString() };
    }
    return { ok: true, at: new Date(Date.now() + Number(choice.value) * 864e5).toISOString() };
  };
  return { choice, date, nodes: [field('Expires', choice), dateField], value };
}

// `from`: a key whose settings the new one starts from (a leaked key's replacement).
function createKeyDialog(me, reload, from = null) {
  const settings = settingsFields(from);
  const expiry = expiryFields();
  const scopeBoxes = SCOPES.map(([scope, what]) => {
    const grantable = me.grantable_scopes.includes(scope);
    const id = uid('scope');
    const why = grantable ? null : `Your role (${roleName(me.role)}) can’t grant ${scope}.`;
    const box = h('input', {
      type: 'checkbox',
      name: 'scopes',
      value: scope,
      id,
      checked: Boolean(from && grantable && from.scopes.includes(scope)),
      disabled: !grantable,
      'aria-describedby': `${id}-what${why ? ` ${id}-why` : ''}`,
    });
    return {
      scope,
      box,
      node: h(
        'div',
        { class: `check${grantable ? '' : ' disabled'}` },
        box,
        h('label', { for: id }, h('code', {}, scope)),
        h('span', { class: 'hint', id: `${id}-what` }, what),
        why ? h('span', { class: 'why', id: `${id}-why` }, why) : null,
      ),
    };
  });
  const scopesError = h('p', { class: 'field-error', id: uid('scopes-error') });
  const modes = h(
    'fieldset',
    { class: 'modes' },
    h('legend', {}, 'Mode'),
    h(
      'div',
      { class: 'check' },
      h('input', { type: 'radio', name: 'mode', value: 'live', id: 'mode-live', checked: !from || from.mode !== 'test', 'aria-describedby': 'mode-live-what' }),
      h('label', { for: 'mode-live' }, 'Live'),
      h('span', { class: 'hint', id: 'mode-live-what' }, 'Real customers and real checks.'),
    ),
    h(
      'div',
      { class: 'check' },
      h('input', { type: 'radio', name: 'mode', value: 'test', id: 'mode-test', checked: Boolean(from && from.mode === 'test'), 'aria-describedby': 'mode-test-what' }),
      h('label', { for: 'mode-test' }, 'Test'),
      h('span', { class: 'hint', id: 'mode-test-what' }, 'Your org’s test data only: rehearse an integration without touching real customers.'),
    ),
  );
  formDialog(from ? `Replace “${from.label}”` : 'Create an API key', {
    onClose: reload,
    intro: from
      ? h('p', { class: 'muted' }, 'Starts from the leaked key’s name, scopes, mode, IP allowlist and rate limit; change what you need.')
      : null,
    submitLabel: 'Create key',
    fields: [
      settings.nodes[0],
      h(
        'fieldset',
        { class: 'scopes-field', 'aria-describedby': scopesError.id },
        h('legend', {}, 'Scopes'),
        scopeBoxes.map((s) => s.node),
        scopesError,
      ),
      modes,
      expiry.nodes,
      settings.nodes.slice(1),
    ],
    run: async (box) => {
      if (!checkSettings(settings)) throw CHECK_FIELDS;
      const scopes = scopeBoxes.filter((s) => s.box.checked).map((s) => s.scope);
      scopesError.textContent = scopes.length ? '' : 'Choose at least one scope.';
      if (scopes.length === 0) {
        scopeBoxes.find((s) => !s.box.disabled)?.box.focus();
        throw CHECK_FIELDS;
      }
      const expires = expiry.value();
      if (!expires.ok) {
        setFieldError(expires.control, expires.problem);
        expires.control.focus();
        throw CHECK_FIELDS;
      }
      const mode = modes.querySelector('input[name=mode]:checked').value;
      const body = { label: settings.label.value.trim(), scopes, mode };
      if (expires.at) body.expires_at = expires.at;
      const { entries } = allowlistEntries(settings.allowlist.value);
      if (entries.length) body.ip_allowlist = entries;
      if (settings.rate.value.trim() !== '') {
        body.rate_limit = { requests_per_second: Number(settings.rate.value) };
      }
      const created = await api('POST', '/v1/org/api-keys', { body }).catch((failure) => {
        throw markField(failure, {
          label: settings.label,
          ip_allowlist: settings.allowlist,
          rate_limit: settings.rate,
          expires_at: expiry.choice,
        });
      });
      showSecret(box, `Key “${created.label}” created`, created);
    },
  });
}

// Replaces a dialog's form with the new key's plaintext; closing the dialog removes it.
function showSecret(box, title, created) {
  box.setTitle(title);
  const done = h('button', { type: 'button', class: 'primary', onclick: () => box.close() }, 'Done');
  box.body.replaceChildren(
    secretBox(created.key),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Scopes'),
      h('dd', {}, created.scopes.join(', ')),
      h('dt', {}, 'Expires'),
      h('dd', {}, created.expires_at ? when(created.expires_at, { exact: true }) : 'Never'),
    ),
    h('div', { class: 'actions' }, done),
  );
  box.body.querySelector('.secret button').focus();
  announce(`${title}. Copy it now: it won’t be shown again.`);
}

function editKeyDialog(key, reload) {
  const settings = settingsFields(key);
  formDialog(`Edit “${key.label}”`, {
    intro: h('p', { class: 'muted' }, h('code', {}, keyDisplay(key)), ' · scopes never change, not even in a roll: for other scopes, create a key.'),
    fields: settings.nodes,
    submitLabel: 'Save changes',
    run: async (box) => {
      if (!checkSettings(settings)) throw CHECK_FIELDS;
      const body = {};
      const label = settings.label.value.trim();
      if (label !== key.label) body.label = label;
      const { entries } = allowlistEntries(settings.allowlist.value);
      if (entries.join('\n') !== key.ip_allowlist.join('\n')) body.ip_allowlist = entries;
      const rate = settings.rate.value.trim() === '' ? DEFAULT_RATE_LIMIT : Number(settings.rate.value);
      if (rate !== key.rate_limit.requests_per_second) body.rate_limit = { requests_per_second: rate };
      if (Object.keys(body).length > 0) {
        await api('PATCH', `/v1/org/api-keys/${key.id}`, { body, idempotent: true }).catch((failure) => {
          throw markField(failure, {
            label: settings.label,
            ip_allowlist: settings.allowlist,
            rate_limit: settings.rate,
          });
        });
        announce(`Saved “${label}”.`);
        reload();
      }
      box.close();
    },
  });
}

function rollKeyDialog(key, reload) {
  const grace = h(
    'select',
    { name: 'grace' },
    GRACE_PERIODS.map(([seconds, text]) => h('option', { value: String(seconds), selected: seconds === 86400 }, text)),
  );
  formDialog(`Roll “${key.label}”`, {
    onClose: reload,
    intro: h(
      'p',
      {},
      'Rolling makes a new key with the same name, scopes, IP allowlist and rate limit. ',
      h('code', {}, keyDisplay(key)),
      ' keeps working until the time you choose, so you can deploy the new one first.',
    ),
    fields: [field('Old key expires', grace)],
    submitLabel: 'Roll key',
    run: async (box) => {
      const created = await api('POST', `/v1/org/api-keys/${key.id}/roll`, {
        body: { expire_old_in_seconds: Number(grace.value) },
      });
      showSecret(box, `“${created.label}” rolled`, created);
    },
  });
}

function revokeKey(key, reload) {
  confirmAction({
    title: `Revoke “${key.label}”?`,
    message: `${keyDisplay(key)} stops working immediately: every request with it is refused (401). This can’t be undone.`,
    confirmLabel: 'Revoke key',
    run: async () => {
      await api('POST', `/v1/org/api-keys/${key.id}/revoke`, { idempotent: true });
      announce(`Revoked “${key.label}”.`);
      reload();
    },
  });
}
