// The page's entry: the session, the header, and which screen the URL's fragment names
// (#/keys, #/keys/<id>/requests?…, #/webhooks, #/webhooks/<id>/deliveries?…, #/members,
// #/provider-keys, #/audit?…).
// The fragment is the member's place: it survives a reload and a new sign-in.

import { api, onSessionEnded, session, signOut } from './api.js';
import { renderAudit } from './audit.js';
import { renderKeys } from './keys.js';
import { renderMembers } from './members.js';
import { renderProviders } from './providers.js';
import { renderRequests } from './requests.js';
import { renderSignIn } from './signin.js';
import { renderDeliveries, renderWebhooks } from './webhooks.js';
import { errorBox, h, roleName } from './ui.js';

const main = document.getElementById('main');
let me = null;

function showSignIn(reason = null) {
  me = null;
  header(null);
  for (const open of document.querySelectorAll('dialog')) open.close();
  renderSignIn(screen('Sign in'), {
    reason,
    onSignedIn: () => {
      route();
    },
  });
}

// A fresh container for a screen: a screen that finishes loading after the member moved
// on writes into a container no longer shown.
function screen(title) {
  const view = h('section', { class: 'screen' });
  main.replaceChildren(view);
  document.title = `${title} · Developers · Instant Compliance`;
  return view;
}

function header(member) {
  document.getElementById('nav').hidden = !member;
  document.getElementById('who').hidden = !member;
  if (!member) return;
  document.getElementById('who-email').textContent = member.email;
  document.getElementById('who-role').textContent = roleName(member.role);
  document.getElementById('nav-members').hidden = !member.permissions.includes('org.members');
  document.getElementById('nav-webhooks').hidden = !member.permissions.includes('org.api-keys');
  document.getElementById('nav-providers').hidden = !member.permissions.includes('org.provider-keys');
  document.getElementById('nav-audit').hidden = !member.permissions.includes('org.audit');
  const sections = [
    ['#/members', 'nav-members'],
    ['#/webhooks', 'nav-webhooks'],
    ['#/provider-keys', 'nav-providers'],
    ['#/audit', 'nav-audit'],
  ];
  const current = (sections.find(([prefix]) => location.hash.startsWith(prefix)) || [null, 'nav-keys'])[1];
  for (const id of ['nav-keys', 'nav-webhooks', 'nav-providers', 'nav-members', 'nav-audit']) {
    const link = document.getElementById(id);
    if (id === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route() {
  if (!session.valid()) {
    showSignIn(session.get() ? 'Your session has ended. Sign in again to continue where you were.' : null);
    return;
  }
  if (!me) {
    try {
      me = await api('GET', '/v1/org/me');
    } catch (failure) {
      if (failure.status !== 401) screen('Error').replaceChildren(errorBox(failure));
      return;
    }
  }
  header(me);
  const hash = location.hash || '#/keys';
  const requests = hash.match(/^#\/keys\/(key_[A-Za-z0-9]+)\/requests(?:\?(.*))?$/);
  const deliveries = hash.match(/^#\/webhooks\/(we_[A-Za-z0-9]+)\/deliveries(?:\?(.*))?$/);
  const audit = hash.match(/^#\/audit(?:\?(.*))?$/);
  if (hash === '#/keys') {
    await renderKeys(screen('API keys'), me);
  } else if (requests) {
    await renderRequests(screen('Request log'), me, requests[1], new URLSearchParams(requests[2] || ''));
  } else if (hash === '#/webhooks') {
    await renderWebhooks(screen('Webhooks'), me);
  } else if (deliveries) {
    await renderDeliveries(screen('Deliveries'), me, deliveries[1], new URLSearchParams(deliveries[2] || ''));
  } else if (hash === '#/members') {
    await renderMembers(screen('Members'), me);
  } else if (hash === '#/provider-keys') {
    await renderProviders(screen('Provider keys'), me);
  } else if (audit) {
    await renderAudit(screen('Audit trail'), me, new URLSearchParams(audit[1] || ''));
  } else {
    location.replace('#/keys');
  }
}

onSessionEnded((reason) => showSignIn(reason));
window.addEventListener('hashchange', () => {
  route();
  main.focus({ preventScroll: true });
});
document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut();
  showSignIn('You have signed out.');
});
route();
