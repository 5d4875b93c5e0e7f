// The webhooks screen, for holders of org.api-keys: the org's endpoints in both modes
// (Zapier's subscriptions included), adding one (its signing secret shown in the dialog),
// revealing and rotating a secret, turning an endpoint off and on, deleting it; and an
// endpoint's deliveries with their attempts, re-sendable.

import { api, listAll } from './api.js';
import { announce, confirmAction, errorBox, field, formDialog, h, secretBox, setFieldError, uid, when } from './ui.js';

export const EVENTS = [
  ['customer.created', 'A customer is created'],
  ['customer.updated', 'A customer changes (details, KYC or AML status)'],
  ['customer.verified', 'A customer becomes KYC VERIFIED with AML CLEAR'],
  ['api_key.expiring', 'A key expires in 7 days'],
  ['api_key.revoked', 'A key is revoked'],
];
const OVERLAPS = [
  [0, 'Stop signing with it now'],
  [3600, 'Keep it 1 hour'],
  [86400, 'Keep it 24 hours'],
  [604800, 'Keep it 7 days'],
];

const secretWarning = () => [
  h('strong', {}, 'Verify deliveries with this secret. '),
  'Keep it in your receiver’s secrets store. Members who manage keys can reveal it again here.',
];

function creatorText(endpoint) {
  const by = endpoint.created_by || {};
  return by.type === 'member' ? by.email : `API key ${by.id}`;
}

function statusBadge(endpoint) {
  if (!endpoint.enabled) return h('span', { class: 'badge status-revoked' }, 'Disabled');
  if (endpoint.failing_since) return h('span', { class: 'badge status-soon' }, 'Failing');
  return h('span', { class: 'badge status-active' }, 'Enabled');
}

export async function renderWebhooks(view, me) {
  view.replaceChildren(h('h1', {}, 'Webhooks'));
  if (!me.permissions.includes('org.api-keys')) {
    view.append(h('p', { class: 'notice' }, 'Your role doesn’t manage webhooks: ask an administrator or a developer.'));
    return;
  }
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  const load = () => loadEndpoints(area, me);
  view.append(
    h(
      'p',
      { class: 'muted' },
      'Endpoints receive signed HTTPS POSTs when customers and keys change (Standard Webhooks: verify each with its secret). Failed deliveries are retried for about 38 hours with the same webhook-id.',
    ),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'primary', id: 'add-endpoint', onclick: () => addDialog(load) }, 'Add endpoint')),
    area,
  );
  await load();
}

async function loadEndpoints(area, me) {
  area.setAttribute('aria-busy', 'true');
  let endpoints;
  try {
    endpoints = await listAll('/v1/org/webhook-endpoints');
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  const reload = () => loadEndpoints(area, me);
  if (endpoints.length === 0) {
    area.replaceChildren(h('p', { class: 'empty' }, 'No endpoints yet. Add one, or turn on a Zap that uses the Instant Compliance app.'));
  } else {
    area.replaceChildren(
      h(
        'table',
        { class: 'data webhooks' },
        h('caption', { class: 'visually-hidden' }, 'Webhook endpoints of your org'),
        h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'Mode', 'Status', 'Created', 'Actions'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, endpoints.map((endpoint) => endpointRow(endpoint, me, reload))),
      ),
    );
  }
  area.setAttribute('aria-busy', 'false');
}

function endpointRow(endpoint, me, reload) {
  const name = endpoint.description || endpoint.url;
  const hidden = (text) => h('span', { class: 'visually-hidden' }, ` ${text}`);
  const actions = [
    h('a', { class: 'button', href: `#/webhooks/${endpoint.id}/deliveries` }, 'Deliveries', hidden(`of ${name}`)),
    // Who made, re-pointed, disabled it or saw its secret (the audit trail, filtered).
    me.permissions.includes('org.audit')
      ? h('a', { class: 'button', href: `#/audit?target=${encodeURIComponent(endpoint.id)}` }, 'History', hidden(`of ${name}`))
      : null,
    h('button', { type: 'button', onclick: () => revealDialog(endpoint) }, 'Reveal secret', hidden(`of ${name}`)),
    h('button', { type: 'button', onclick: () => rotateDialog(endpoint, reload) }, 'Rotate secret', hidden(`of ${name}`)),
    h(
      'button',
      { type: 'button', onclick: () => toggle(endpoint, reload) },
      endpoint.enabled ? 'Disable' : 'Enable',
      hidden(name),
    ),
    h('button', { type: 'button', class: 'danger-outline', onclick: () => deleteDialog(endpoint, reload) }, 'Delete', hidden(name)),
  ];
  return h(
    'tr',
    { 'data-endpoint-id': endpoint.id },
    h(
      'td',
      { 'data-label': 'Endpoint' },
      endpoint.description ? h('div', {}, endpoint.description) : null,
      h('code', { class: 'url' }, endpoint.url),
      endpoint.disabled_reason ? h('p', { class: 'muted reason' }, endpoint.disabled_reason) : null,
    ),
    h('td', { 'data-label': 'Events' }, h('ul', { class: 'plain' }, endpoint.events.map((event) => h('li', {}, h('code', {}, event))))),
    h('td', { 'data-label': 'Mode' }, h('span', { class: `badge mode-${endpoint.mode}` }, endpoint.mode === 'test' ? 'Test' : 'Live')),
    h('td', { 'data-label': 'Status' }, statusBadge(endpoint)),
    h('td', { 'data-label': 'Created' }, when(endpoint.created_at), h('div', { class: 'muted' }, creatorText(endpoint))),
    h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, actions)),
  );
}

function eventChoices(selected = []) {
  const boxes = EVENTS.map(([event, hint]) => {
    const id = uid('event');
    const input = h('input', { type: 'checkbox', name: 'events', value: event, id, checked: selected.includes(event) });
    return [input, h('div', { class: 'check' }, input, h('label', { for: id }, h('code', {}, event), ` — ${hint}`))];
  });
  const fieldset = h('fieldset', { class: 'choice', id: uid('events') }, h('legend', {}, 'Events'), boxes.map(([, row]) => row), h('p', { class: 'field-error', id: uid('events-error') }));
  return { fieldset, inputs: boxes.map(([input]) => input) };
}

function addDialog(reload) {
  const url = h('input', { type: 'url', name: 'url', required: true, autocomplete: 'off', placeholder: 'https://hooks.example.com/instant' });
  const description = h('input', { type: 'text', name: 'description', maxlength: 200, autocomplete: 'off' });
  const mode = h('select', { name: 'mode' }, h('option', { value: 'live' }, 'Live: live customers and keys'), h('option', { value: 'test' }, 'Test: test-mode data only'));
  const events = eventChoices(['customer.created', 'customer.updated', 'customer.verified']);
  const eventsError = events.fieldset.querySelector('.field-error');
  formDialog('Add a webhook endpoint', {
    fields: [
      field('URL', url, 'An https address that answers 2xx within 10 seconds. Redirects are not followed.'),
      field('Description (optional)', description),
      field('Mode', mode),
      events.fieldset,
    ],
    submitLabel: 'Add endpoint',
    run: async (box) => {
      setFieldError(url, null);
      eventsError.textContent = '';
      const chosen = events.inputs.filter((input) => input.checked).map((input) => input.value);
      if (!url.value.trim()) {
        setFieldError(url, 'Enter the URL to deliver to.');
        url.focus();
        throw { message: 'Check the fields marked above.' };
      }
      if (chosen.length === 0) {
        eventsError.textContent = 'Choose at least one event.';
        events.inputs[0].focus();
        throw { message: 'Check the fields marked above.' };
      }
      const body = { url: url.value.trim(), events: chosen, mode: mode.value };
      if (description.value.trim()) body.description = description.value.trim();
      let created;
      try {
        created = await api('POST', '/v1/org/webhook-endpoints', { body });
      } catch (failure) {
        if (failure.param === 'url') {
          setFieldError(url, failure.message);
          url.focus();
        }
        throw failure;
      }
      showSecret(box, 'Endpoint added', created.secret, created);
      reload();
    },
  });
}

function showSecret(box, title, secret, endpoint) {
  box.setTitle(title);
  const done = h('button', { type: 'button', class: 'primary', onclick: () => box.close() }, 'Done');
  box.body.replaceChildren(
    secretBox(secret, { label: 'The endpoint’s signing secret', warning: secretWarning() }),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'URL'),
      h('dd', {}, h('code', {}, endpoint.url)),
      h('dt', {}, 'Events'),
      h('dd', {}, endpoint.events.join(', ')),
      h('dt', {}, 'Mode'),
      h('dd', {}, endpoint.mode),
    ),
    h('div', { class: 'actions' }, done),
  );
  box.body.querySelector('.secret button').focus();
  announce(`${title}. Its signing secret is shown.`);
}

async function revealDialog(endpoint) {
  const box = formDialog(`Signing secret of ${endpoint.description || endpoint.url}`, {
    intro: h('p', {}, 'Anyone with this secret can sign requests your receiver will trust. Reveal it only to configure a receiver.'),
    submitLabel: 'Reveal secret',
    wide: false,
    run: async (dialogBox) => {
      const revealed = await api('GET', `/v1/org/webhook-endpoints/${endpoint.id}/secret`);
      showSecret(dialogBox, 'Signing secret', revealed.secret, endpoint);
    },
  });
  return box;
}

function rotateDialog(endpoint, reload) {
  const overlap = h('select', { name: 'expire_previous_in_seconds' }, OVERLAPS.map(([seconds, text]) => h('option', { value: seconds, selected: seconds === 86400 }, text)));
  formDialog(`Rotate the secret of ${endpoint.description || endpoint.url}`, {
    intro: h('p', { class: 'muted' }, 'A new secret signs every delivery from now on. The current one can keep signing alongside it for a while, so your receiver can switch without missing a delivery.'),
    fields: [field('The current secret', overlap)],
    submitLabel: 'Rotate secret',
    run: async (box) => {
      const rotated = await api('POST', `/v1/org/webhook-endpoints/${endpoint.id}/rotate-secret`, {
        body: { expire_previous_in_seconds: Number(overlap.value) },
      });
      showSecret(box, 'Secret rotated', rotated.secret, rotated);
      reload();
    },
  });
}

async function toggle(endpoint, reload) {
  const enabled = !endpoint.enabled;
  try {
    await api('PATCH', `/v1/org/webhook-endpoints/${endpoint.id}`, { body: { enabled }, idempotent: true });
  } catch (failure) {
    announce(failure.message || 'The endpoint was not changed.');
    return;
  }
  announce(`${endpoint.description || endpoint.url} is ${enabled ? 'enabled' : 'disabled'}.`);
  reload();
}

function deleteDialog(endpoint, reload) {
  confirmAction({
    title: `Delete ${endpoint.description || endpoint.url}?`,
    message: 'It receives nothing more, and its pending retries are dropped. A Zap subscribed with it stops triggering.',
    confirmLabel: 'Delete endpoint',
    run: async () => {
      await api('DELETE', `/v1/org/webhook-endpoints/${endpoint.id}`);
      announce('The endpoint is deleted.');
      reload();
    },
  });
}

// --- Deliveries ----------------------------------------------------------------------------

const STATUS_NAMES = { pending: 'Pending', succeeded: 'Succeeded', failed: 'Failed', dropped: 'Dropped' };
const STATUS_CLASS = { pending: 'status-soon', succeeded: 'status-active', failed: 'status-revoked', dropped: 'status-revoked' };

function lastAttempt(delivery) {
  const attempt = delivery.attempts[delivery.attempts.length - 1];
  if (!attempt) return h('span', { class: 'muted' }, delivery.dropped_reason || 'Not sent yet');
  const code = attempt.status_code === null ? 'No answer' : `HTTP ${attempt.status_code}`;
  return h(
    'div',
    {},
    h('div', {}, `${code} · ${attempt.latency_ms} ms`, attempt.resend ? ' · re-send' : ''),
    attempt.error ? h('p', { class: 'muted excerpt' }, attempt.error) : null,
  );
}

export async function renderDeliveries(view, me, endpointId, params) {
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/webhooks' }, '← Webhooks')),
    h('h1', {}, 'Deliveries'),
  );
  if (!me.permissions.includes('org.api-keys')) {
    view.append(h('p', { class: 'notice' }, 'Your role doesn’t manage webhooks.'));
    return;
  }
  let endpoint;
  try {
    endpoint = await api('GET', `/v1/org/webhook-endpoints/${endpointId}`);
  } catch (failure) {
    view.append(errorBox(failure));
    return;
  }
  const status = params.get('status') || '';
  const filter = h(
    'select',
    {
      name: 'status',
      onchange: () => {
        location.hash = `#/webhooks/${endpointId}/deliveries${filter.value ? `?status=${filter.value}` : ''}`;
      },
    },
    h('option', { value: '' }, 'All'),
    Object.entries(STATUS_NAMES).map(([value, text]) => h('option', { value, selected: value === status }, text)),
  );
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  view.append(
    h('p', { class: 'muted' }, h('code', {}, endpoint.url), ` · ${endpoint.mode} · the last 30 days, newest first`),
    h('div', { class: 'toolbar' }, field('Status', filter)),
    area,
  );
  const load = () => loadDeliveries(area, endpoint, status);
  await load();
}

async function loadDeliveries(area, endpoint, status) {
  area.setAttribute('aria-busy', 'true');
  let deliveries;
  try {
    deliveries = await listAll(`/v1/org/webhook-endpoints/${endpoint.id}/deliveries${status ? `?status=${status}` : ''}`, 300);
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  const reload = () => loadDeliveries(area, endpoint, status);
  if (deliveries.length === 0) {
    area.replaceChildren(h('p', { class: 'empty' }, status ? 'No deliveries with this status.' : 'Nothing delivered yet.'));
  } else {
    area.replaceChildren(
      h(
        'table',
        { class: 'data deliveries' },
        h('caption', { class: 'visually-hidden' }, 'Deliveries of this endpoint'),
        h('thead', {}, h('tr', {}, ['Event', 'Status', 'Created', 'Attempts', 'Last attempt', 'Actions'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, deliveries.map((delivery) => deliveryRow(delivery, endpoint, reload))),
      ),
    );
  }
  area.setAttribute('aria-busy', 'false');
}

function deliveryRow(delivery, endpoint, reload) {
  const resend = delivery.status === 'pending'
    ? h('span', { class: 'muted' }, delivery.next_attempt_at ? `Next ${when(delivery.next_attempt_at)}` : '—')
    : h(
        'button',
        {
          type: 'button',
          disabled: !endpoint.enabled,
          title: endpoint.enabled ? null : 'Enable the endpoint first',
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              await api('POST', `/v1/org/webhook-endpoints/${endpoint.id}/deliveries/${delivery.id}/resend`);
              announce('Re-sending: the delivery goes out again with the same webhook-id.');
            } catch (failure) {
              announce(failure.message || 'Not re-sent.');
            }
            reload();
          },
        },
        'Re-send',
        h('span', { class: 'visually-hidden' }, ` ${delivery.event_type} ${delivery.id}`),
      );
  return h(
    'tr',
    { 'data-delivery-id': delivery.id },
    h('td', { 'data-label': 'Event' }, h('code', {}, delivery.event_type), h('div', { class: 'muted' }, h('code', {}, delivery.id))),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${STATUS_CLASS[delivery.status]}` }, STATUS_NAMES[delivery.status])),
    h('td', { 'data-label': 'Created' }, when(delivery.created_at)),
    h('td', { 'data-label': 'Attempts' }, String(delivery.attempts.length)),
    h('td', { 'data-label': 'Last attempt' }, lastAttempt(delivery)),
    h('td', { 'data-label': 'Actions' }, resend),
  );
}
