// The org's audit trail, for holders of org.audit: who did what to which key, when, from
// where, and what changed (before → after). Filters live in the URL (#/audit?target=key_…),
// so a key's or a member's "History" link lands here already filtered, and a reload keeps it.

import { loadListing } from './listing.js';
import { downloadCsv, field, h, when } from './ui.js';

const RANGES = [
  ['24h', 'Last 24 hours', 864e5],
  ['7d', 'Last 7 days', 7 * 864e5],
  ['30d', 'Last 30 days', 30 * 864e5],
  ['90d', 'Last 90 days', 90 * 864e5],
  ['all', 'Everything kept (400 days and more)', null],
];
export const ACTIONS = {
  'api_key.created': 'Key created',
  'api_key.updated': 'Key edited',
  'api_key.rolled': 'Key rolled',
  'api_key.revoked': 'Key revoked',
  'api_key.leak_recorded': 'Leak recorded',
  'api_key.leak_dismissed': 'Leak notice dismissed',
  'api_key.transferred': 'Key handed on',
  'api_key.expiry_notified': 'Expiry notice sent',
  'member.invited': 'Member invited',
  'member.role_changed': 'Role changed',
  'member.deactivated': 'Member deactivated',
  'provider_key.created': 'Provider key added',
  'provider_key.updated': 'Provider key edited',
  'provider_key.rotated': 'Provider key rotated',
  'provider_key.verified': 'Provider key verified',
  'webhook_endpoint.created': 'Webhook endpoint added',
  'webhook_endpoint.updated': 'Webhook endpoint changed',
  'webhook_endpoint.deleted': 'Webhook endpoint deleted',
  'webhook_endpoint.secret_revealed': 'Signing secret revealed',
  'webhook_endpoint.secret_rotated': 'Signing secret rotated',
  'webhook_endpoint.delivery_resent': 'Delivery re-sent',
};
const ACTOR_TYPES = { member: 'Member', api_key: 'API key', operator: 'Operator', platform: 'Platform' };
const COLUMNS = ['Time', 'Who', 'Action', 'Target', 'Changes', 'From'];
const ID = /^[A-Za-z0-9_.:@\/+=,-]{1,256}$/;

export async function renderAudit(view, me, params) {
  const range = RANGES.find(([id]) => id === params.get('range')) || RANGES[4];
  const action = ACTIONS[params.get('action')] ? params.get('action') : '';
  const actor = ID.test(params.get('actor') || '') ? params.get('actor') : '';
  const target = ID.test(params.get('target') || '') ? params.get('target') : '';
  view.replaceChildren(h('h1', {}, 'Audit trail'));
  if (!me.permissions.includes('org.audit')) {
    view.append(h('p', { class: 'notice' }, 'Your role doesn’t include the audit trail. Administrators and compliance officers can read it.'));
    return;
  }
  view.append(
    h(
      'p',
      { class: 'muted' },
      'Every change to your org’s API keys, members, webhook endpoints and provider keys: who made it (a member, the operator tool or the platform), when, from where, and what changed. Events can’t be edited or removed; each one is chained to the one before it.',
    ),
  );
  const rangeSelect = h('select', { name: 'range' }, RANGES.map(([id, text]) => h('option', { value: id, selected: id === range[0] }, text)));
  const actionSelect = h(
    'select',
    { name: 'action' },
    h('option', { value: '' }, 'Any action'),
    Object.entries(ACTIONS).map(([id, text]) => h('option', { value: id, selected: id === action }, text)),
  );
  const actorInput = h('input', { type: 'text', name: 'actor', value: actor, spellcheck: 'false', autocomplete: 'off', placeholder: 'anyone' });
  const targetInput = h('input', { type: 'text', name: 'target', value: target, spellcheck: 'false', autocomplete: 'off', placeholder: 'anything' });
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  const download = h('button', { type: 'button', disabled: true }, 'Download CSV');
  const rows = [];
  const rerun = () => {
    rows.length = 0;
    load(area, { range, action, actor, target }, rows, download);
  };
  const go = (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    next.set('range', rangeSelect.value);
    if (actionSelect.value) next.set('action', actionSelect.value);
    for (const [input, name] of [[actorInput, 'actor'], [targetInput, 'target']]) {
      const value = input.value.trim();
      if (value && !ID.test(value)) {
        input.setAttribute('aria-invalid', 'true');
        document.getElementById(`${input.id}-error`).textContent = 'An id, e.g. key_… or a member id (no spaces).';
        input.focus();
        return;
      }
      if (value) next.set(name, value);
    }
    const wanted = `#/audit?${next}`;
    if (location.hash === wanted) rerun();
    else location.hash = wanted;
  };
  download.addEventListener('click', () => downloadEvents(rows));
  view.append(
    h(
      'form',
      { class: 'toolbar filters', onsubmit: go, novalidate: true },
      field('Time range', rangeSelect),
      field('Action', actionSelect),
      field('Who (member, key or operator id)', actorInput),
      field('Target (an id: key_…, we_…, pk_… or a member)', targetInput),
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: rerun }, 'Refresh'),
      download,
    ),
    area,
  );
  rerun();
}

function load(area, filter, rows, download) {
  const query = new URLSearchParams({ limit: '50' });
  if (filter.range[2]) query.set('since', new Date(Date.now() - filter.range[2]).toISOString());
  for (const name of ['action', 'actor', 'target']) if (filter[name]) query.set(name, filter[name]);
  return loadListing(
    area,
    {
      url: (q) => `/v1/org/audit-events?${q}`,
      query,
      tableClass: 'audit',
      caption: 'Audit events, newest first',
      columns: COLUMNS,
      row: eventRow,
      empty: 'No events match these filters.',
      more: 'Show older events',
    },
    rows,
    download,
  );
}

function who(actor) {
  const kind = ACTOR_TYPES[actor.type] || actor.type;
  const name = actor.email || actor.id;
  return [
    h('a', { href: `#/audit?actor=${encodeURIComponent(actor.id)}`, title: `Everything ${name} did` }, name),
    h('span', { class: 'muted small' }, ` ${kind}`),
    actor.reason ? h('p', { class: 'muted small reason' }, actor.reason) : null,
  ];
}

// before → after, field by field: what was removed struck through, what came in marked.
function diff(event) {
  const names = [...new Set([...Object.keys(event.before || {}), ...Object.keys(event.after || {})])];
  if (names.length === 0) return h('span', { class: 'muted' }, '—');
  const show = (value) => (value === null || value === undefined ? '∅' : typeof value === 'string' ? value : JSON.stringify(value));
  return h(
    'dl',
    { class: 'diff' },
    names.map((name) => {
      const had = name in (event.before || {});
      const has = name in (event.after || {});
      return [
        h('dt', {}, name),
        h(
          'dd',
          {},
          had ? h('del', { 'aria-label': `was ${show(event.before[name])}` }, show(event.before[name])) : null,
          had && has ? h('span', { 'aria-hidden': 'true' }, ' → ') : null,
          has ? h('ins', { 'aria-label': `now ${show(event.after[name])}` }, show(event.after[name])) : null,
        ),
      ];
    }),
  );
}

function eventRow(event) {
  return h(
    'tr',
    { 'data-event-id': event.id, 'data-action': event.action },
    h('td', { 'data-label': 'Time' }, when(event.at, { exact: true })),
    h('td', { 'data-label': 'Who' }, who(event.actor)),
    h('td', { 'data-label': 'Action' }, h('code', { title: ACTIONS[event.action] || event.action }, event.action)),
    h(
      'td',
      { 'data-label': 'Target' },
      h('a', { href: `#/audit?target=${encodeURIComponent(event.target.id)}`, title: `Everything done to ${event.target.id}` }, h('code', {}, event.target.id)),
    ),
    h('td', { 'data-label': 'Changes' }, diff(event)),
    h('td', { 'data-label': 'From', class: 'agent' }, event.source_ip || '—', event.user_agent ? h('p', { class: 'muted small' }, event.user_agent) : null),
  );
}

function downloadEvents(rows) {
  const header = ['at', 'id', 'actor_type', 'actor_id', 'actor_email', 'action', 'target_type', 'target_id', 'before', 'after', 'request_id', 'source_ip', 'user_agent', 'hash', 'prev_hash'];
  downloadCsv(
    `audit-events-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.csv`,
    header,
    rows.map((e) => [e.at, e.id, e.actor.type, e.actor.id, e.actor.email, e.action, e.target.type, e.target.id, JSON.stringify(e.before), JSON.stringify(e.after), e.request_id, e.source_ip, e.user_agent, e.hash, e.prev_hash]),
  );
}
