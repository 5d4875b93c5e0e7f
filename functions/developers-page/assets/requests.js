// A key's request log: what it was used for, from where, and what was refused — what an
// admin reads after a leak. Filters live in the URL, so a reload or a new sign-in keeps them.

import { api } from './api.js';
import { loadListing } from './listing.js';
import { keyDisplay, keyStatus } from './keys.js';
import { downloadCsv, errorBox, field, h, when } from './ui.js';

const RANGES = [
  ['1h', 'Last hour', 36e5],
  ['24h', 'Last 24 hours', 864e5],
  ['7d', 'Last 7 days', 7 * 864e5],
  ['30d', 'Last 30 days', 30 * 864e5],
  ['90d', 'Last 90 days (everything kept)', 90 * 864e5],
];
const STATUSES = [
  ['', 'Any status'],
  ['2xx', '2xx: served'],
  ['4xx', '4xx: refused'],
  ['5xx', '5xx: failed'],
];
const COLUMNS = ['Time', 'Method', 'Route', 'Status', 'Error', 'Source IP', 'User agent', 'Customers'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function renderRequests(view, me, keyId, params) {
  const range = RANGES.find(([id]) => id === params.get('range')) || RANGES[1];
  const status = STATUSES.find(([id]) => id === params.get('status')) || STATUSES[0];
  const customer = UUID.test(params.get('customer') || '') ? params.get('customer') : '';
  view.replaceChildren(
    h('p', { class: 'back' }, h('a', { href: '#/keys' }, '← API keys')),
    h('h1', {}, 'Request log'),
  );
  if (!me.permissions.includes('org.api-keys')) {
    view.append(h('p', { class: 'notice' }, 'Your role doesn’t manage API keys, so their request logs are not shown to you.'));
    return;
  }
  const summary = h('p', { class: 'muted' }, 'Loading the key…');
  view.append(summary);
  let key;
  try {
    key = await api('GET', `/v1/org/api-keys/${encodeURIComponent(keyId)}`);
  } catch (failure) {
    summary.replaceWith(errorBox(failure));
    return;
  }
  view.querySelector('h1').textContent = `Request log: ${key.label}`;
  summary.replaceChildren(
    h('code', {}, keyDisplay(key)),
    ' · ',
    keyStatus(key)[1],
    ' · every request made with this key in the last 90 days, newest first; a request shows here within a minute.',
  );

  const rangeSelect = h('select', { name: 'range' }, RANGES.map(([id, text]) => h('option', { value: id, selected: id === range[0] }, text)));
  const statusSelect = h('select', { name: 'status' }, STATUSES.map(([id, text]) => h('option', { value: id, selected: id === status[0] }, text)));
  const customerInput = h('input', { type: 'text', name: 'customer', value: customer, spellcheck: 'false', autocomplete: 'off', placeholder: 'any' });
  const go = (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    next.set('range', rangeSelect.value);
    if (statusSelect.value) next.set('status', statusSelect.value);
    const id = customerInput.value.trim();
    if (id && !UUID.test(id)) {
      customerInput.setAttribute('aria-invalid', 'true');
      document.getElementById(`${customerInput.id}-error`).textContent = 'A customer id looks like 0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f.';
      customerInput.focus();
      return;
    }
    if (id) next.set('customer', id);
    const target = `#/keys/${key.id}/requests?${next}`;
    if (location.hash === target) {
      // Same filters: the router won't run, so load again here.
      rerun();
    } else {
      location.hash = target;
    }
  };
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  const download = h('button', { type: 'button', disabled: true }, 'Download CSV');
  const rows = [];
  const rerun = () => {
    rows.length = 0;
    load(area, key, { range, status: status[0], customer }, rows, download);
  };
  download.addEventListener('click', () => downloadRequests(key, rows));
  view.append(
    h(
      'form',
      { class: 'toolbar filters', onsubmit: go, novalidate: true },
      field('Time range', rangeSelect),
      field('Status', statusSelect),
      field('Customer id (optional)', customerInput),
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: rerun }, 'Refresh'),
      download,
    ),
    area,
  );
  rerun();
}

function load(area, key, filter, rows, download) {
  const query = new URLSearchParams({ limit: '50' });
  query.set('since', new Date(Date.now() - filter.range[2]).toISOString());
  if (filter.status) query.set('status', filter.status);
  if (filter.customer) query.set('customer_id', filter.customer);
  return loadListing(
    area,
    {
      url: (q) => `/v1/org/api-keys/${key.id}/requests?${q}`,
      query,
      tableClass: 'requests',
      caption: `Requests made with ${key.label}, newest first`,
      columns: COLUMNS,
      row: requestRow,
      empty: 'No requests match these filters. Requests show here within a minute of being made.',
      more: 'Show older requests',
    },
    rows,
    download,
  );
}

function requestRow(record) {
  const statusClass = `s${String(record.status)[0]}xx`;
  return h(
    'tr',
    { 'data-request-id': record.id },
    h('td', { 'data-label': 'Time' }, when(record.at, { exact: true })),
    h('td', { 'data-label': 'Method' }, h('code', {}, record.method)),
    h('td', { 'data-label': 'Route' }, h('code', { title: record.path }, record.route)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${statusClass}` }, String(record.status))),
    h('td', { 'data-label': 'Error' }, record.error_code ? h('code', {}, record.error_code) : h('span', { class: 'muted' }, '—')),
    h('td', { 'data-label': 'Source IP' }, record.source_ip || '—'),
    h('td', { 'data-label': 'User agent', class: 'agent' }, record.user_agent || '—'),
    h(
      'td',
      { 'data-label': 'Customers' },
      record.customer_ids.length
        ? h('ul', { class: 'ids' }, record.customer_ids.map((id) => h('li', {}, h('code', {}, id))))
        : h('span', { class: 'muted' }, '—'),
    ),
  );
}

function downloadRequests(key, rows) {
  const header = ['at', 'request_id', 'method', 'route', 'path', 'status', 'error_code', 'source_ip', 'user_agent', 'customer_ids', 'idempotent_replayed', 'latency_ms'];
  downloadCsv(
    `requests-${key.id}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.csv`,
    header,
    rows.map((r) => [r.at, r.id, r.method, r.route, r.path, r.status, r.error_code, r.source_ip, r.user_agent, r.customer_ids.join(' '), r.idempotent_replayed, r.latency_ms]),
  );
}
