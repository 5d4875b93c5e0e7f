// The members screen, for holders of org.members: invite, change a role, deactivate (the
// member's keys revoked, or moved to another member who may hold them).

import { api, listAll } from './api.js';
import { keyDisplay } from './keys.js';
import { announce, errorBox, field, formDialog, h, ROLE_NAMES, roleName, when } from './ui.js';

const ROLE_HINTS = {
  administrator: 'Everything, members included.',
  compliance_officer: 'Everything, members included.',
  developer: 'API keys; customers read and write; no AML results.',
  analyst: 'Reads customers and AML results; no keys.',
};
// What a key's scope needs of the member who holds it.
const SCOPE_PERMISSION = {
  'customers:read': 'customers.read',
  'customers:write': 'customers.write',
  'aml:read': 'aml.read',
  'webhooks:write': 'org.api-keys',
};

function roleSelect(selected) {
  return h(
    'select',
    { name: 'role' },
    Object.entries(ROLE_NAMES).map(([role, name]) =>
      h('option', { value: role, selected: role === selected }, `${name}: ${ROLE_HINTS[role]}`),
    ),
  );
}

export async function renderMembers(view, me) {
  view.replaceChildren(h('h1', {}, 'Members'));
  if (!me.permissions.includes('org.members')) {
    view.append(h('p', { class: 'notice' }, `Your role (${roleName(me.role)}) doesn’t manage members.`));
    return;
  }
  const area = h('div', { class: 'table-area', 'aria-live': 'polite' });
  const load = () => loadMembers(area, me);
  view.append(
    h('p', { class: 'muted' }, 'The people of your org who can sign in here, and what their role lets them do.'),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'primary', id: 'invite-member', onclick: () => inviteDialog(load) }, 'Invite member')),
    area,
  );
  await load();
}

async function loadMembers(area, me) {
  area.setAttribute('aria-busy', 'true');
  let members;
  try {
    members = await listAll('/v1/org/members');
  } catch (failure) {
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  const reload = () => loadMembers(area, me);
  area.replaceChildren(
    h(
      'table',
      { class: 'data members' },
      h('caption', { class: 'visually-hidden' }, 'Members of your org'),
      h('thead', {}, h('tr', {}, ['Email', 'Role', 'Status', 'Added', 'Actions'].map((name) => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        members.map((member) => memberRow(member, me, members, reload)),
      ),
    ),
  );
  area.setAttribute('aria-busy', 'false');
}

function memberRow(member, me, members, reload) {
  const self = member.id === me.id;
  const active = member.status === 'active';
  const actions = [];
  if (me.permissions.includes('org.audit')) {
    // What they did to the org's keys (the audit trail, filtered to them).
    actions.push(
      h('a', { href: `#/audit?actor=${encodeURIComponent(member.id)}`, class: 'button' }, 'History', h('span', { class: 'visually-hidden' }, ` of ${member.email}`)),
    );
  }
  if (!self && active) {
    actions.push(
      h('button', { type: 'button', onclick: () => roleDialog(member, reload) }, 'Change role', h('span', { class: 'visually-hidden' }, ` of ${member.email}`)),
      h('button', { type: 'button', class: 'danger-outline', onclick: () => deactivateDialog(member, members, reload) }, 'Deactivate', h('span', { class: 'visually-hidden' }, ` ${member.email}`)),
    );
  }
  return h(
    'tr',
    { 'data-member-id': member.id },
    h('td', { 'data-label': 'Email' }, member.email, self ? h('span', { class: 'badge' }, 'You') : null),
    h('td', { 'data-label': 'Role' }, roleName(member.role)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge status-${active ? 'active' : 'revoked'}` }, active ? 'Active' : 'Deactivated')),
    h('td', { 'data-label': 'Added' }, when(member.created_at)),
    h('td', { 'data-label': 'Actions' }, actions.length ? h('div', { class: 'row-actions' }, actions) : h('span', { class: 'muted' }, '—')),
  );
}

function inviteDialog(reload) {
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const role = roleSelect('developer');
  formDialog('Invite a member', {
    fields: [field('Email', email), field('Role', role)],
    submitLabel: 'Send invitation',
    run: async (box) => {
      const address = email.value.trim();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) {
        throw { message: 'Enter the email address to invite.' };
      }
      await api('POST', '/v1/org/members', { body: { email: address, role: role.value }, idempotent: true });
      box.close();
      announce(`Invited ${address}. They’ll get a temporary password by email and choose their own at first sign-in.`);
      reload();
    },
  });
}

function roleDialog(member, reload) {
  const role = roleSelect(member.role);
  formDialog(`Change the role of ${member.email}`, {
    intro: h('p', { class: 'muted' }, 'A lower role takes effect on their next request; scopes of their keys that the new role doesn’t cover stop working at once.'),
    fields: [field('Role', role)],
    submitLabel: 'Change role',
    run: async (box) => {
      await api('PATCH', `/v1/org/members/${member.id}`, { body: { role: role.value }, idempotent: true });
      box.close();
      announce(`${member.email} is now ${roleName(role.value)}.`);
      reload();
    },
  });
}

async function deactivateDialog(member, members, reload) {
  const list = h('div', { class: 'member-keys', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading their keys…'));
  const revoke = h('input', { type: 'radio', name: 'keys', value: 'revoke', id: 'keys-revoke', checked: true });
  const transfer = h('input', { type: 'radio', name: 'keys', value: 'transfer', id: 'keys-transfer' });
  const to = h('select', { name: 'transfer_keys_to', disabled: true });
  const choice = h(
    'fieldset',
    { class: 'choice' },
    h('legend', {}, 'Their active keys'),
    h('div', { class: 'check' }, revoke, h('label', { for: 'keys-revoke' }, 'Revoke them')),
    h('div', { class: 'check' }, transfer, h('label', { for: 'keys-transfer' }, 'Transfer them to another member')),
    field('Transfer to', to, 'Only active members whose role covers the keys’ scopes are listed.'),
  );
  const sync = () => {
    to.disabled = !transfer.checked;
  };
  revoke.addEventListener('change', sync);
  transfer.addEventListener('change', sync);
  formDialog(`Deactivate ${member.email}?`, {
    intro: h('p', {}, 'They can no longer sign in or act, from their next request on.'),
    fields: [list, choice],
    submitLabel: 'Deactivate member',
    danger: true,
    run: async (box) => {
      const body = {};
      if (transfer.checked) {
        if (!to.value) throw { message: 'Choose who receives the keys, or revoke them.' };
        body.transfer_keys_to = to.value;
      }
      await api('POST', `/v1/org/members/${member.id}/deactivate`, { body, idempotent: true });
      box.close();
      announce(`${member.email} is deactivated.`);
      reload();
    },
  });
  let keys;
  try {
    keys = (await listAll('/v1/org/api-keys?status=active')).filter((key) => (key.owned_by || key.created_by).id === member.id);
  } catch (failure) {
    list.replaceChildren(errorBox(failure));
    return;
  }
  if (keys.length === 0) {
    list.replaceChildren(h('p', {}, 'They hold no active keys.'));
    choice.hidden = true;
    return;
  }
  list.replaceChildren(
    h('p', {}, `They hold ${keys.length} active ${keys.length === 1 ? 'key' : 'keys'}:`),
    h('ul', {}, keys.map((key) => h('li', {}, `${key.label} `, h('code', {}, keyDisplay(key)), ` (${key.scopes.join(', ')})`))),
  );
  const needed = new Set(keys.flatMap((key) => key.scopes.map((scope) => SCOPE_PERMISSION[scope])));
  const heirs = members.filter(
    (m) => m.id !== member.id && m.status === 'active' && [...needed].every((p) => m.permissions.includes(p)),
  );
  to.replaceChildren(
    h('option', { value: '' }, heirs.length ? 'Choose a member' : 'No member can hold these keys'),
    ...heirs.map((m) => h('option', { value: m.id }, `${m.email} (${roleName(m.role)})`)),
  );
  if (heirs.length === 0) transfer.disabled = true;
}
