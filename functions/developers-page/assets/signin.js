// Sign-in against the org's user pool, and the first sign-in's own-password step.

import { setNewPassword, signIn } from './api.js';
import { errorBox, field, h } from './ui.js';

export function renderSignIn(view, { reason = null, onSignedIn }) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const problem = h('div', { class: 'problem' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'card narrow',
      'aria-labelledby': 'sign-in-title',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        if (!email.value.trim() || !password.value) {
          problem.replaceChildren(errorBox({ message: 'Enter your email and password.' }));
          (email.value.trim() ? password : email).focus();
          return;
        }
        submit.disabled = true;
        try {
          const challenge = await signIn(email.value.trim(), password.value);
          if (challenge) {
            renderNewPassword(view, challenge, onSignedIn);
          } else {
            onSignedIn();
          }
        } catch (failure) {
          problem.replaceChildren(errorBox(failure));
          submit.disabled = false;
          password.select();
          password.focus();
        }
      },
    },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Sign in with your Instant Compliance member account to manage your org’s API keys.'),
    reason ? h('p', { class: 'notice', role: 'status' }, reason) : null,
    field('Email', email),
    field('Password', password),
    problem,
    h('div', { class: 'actions' }, submit),
  );
  view.replaceChildren(form);
  email.focus();
}

function renderNewPassword(view, challenge, onSignedIn) {
  const password = h('input', {
    type: 'password',
    name: 'new-password',
    autocomplete: 'new-password',
    required: true,
    minlength: 12,
  });
  const again = h('input', {
    type: 'password',
    name: 'confirm-password',
    autocomplete: 'new-password',
    required: true,
  });
  const problem = h('div', { class: 'problem' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Set password and sign in');
  const form = h(
    'form',
    {
      class: 'card narrow',
      'aria-labelledby': 'new-password-title',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        if (password.value.length < 12) {
          problem.replaceChildren(errorBox({ message: 'Choose a password of at least 12 characters.' }));
          password.focus();
          return;
        }
        if (password.value !== again.value) {
          problem.replaceChildren(errorBox({ message: 'The two passwords differ.' }));
          again.focus();
          return;
        }
        submit.disabled = true;
        try {
          await setNewPassword(challenge, password.value);
          onSignedIn();
        } catch (failure) {
          problem.replaceChildren(errorBox(failure));
          submit.disabled = false;
          password.focus();
        }
      },
    },
    h('h1', { id: 'new-password-title' }, 'Choose your password'),
    h(
      'p',
      { class: 'muted' },
      'This is your first sign-in: replace the temporary password from your invitation with one of your own.',
    ),
    field('New password', password, 'At least 12 characters, with upper and lower case letters and a digit.'),
    field('New password again', again),
    problem,
    h('div', { class: 'actions' }, submit),
  );
  view.replaceChildren(form);
  password.focus();
}
