// Every call the page makes goes through here: the member API on this origin (with the
// session's access token) and the org's user pool at its Cognito endpoint (sign-in). A
// failure is an ApiFailure carrying the API's message and Request-Id for the screen to show.

const SESSION_KEY = 'ic.developers.session';
// Refresh a little before the access token expires, so a call never races its expiry.
const EXPIRY_MARGIN_MS = 60_000;

// The refresh token lives in this module only (never in storage): a reload keeps the
// access token for the tab's life, and asks for the password again once it has expired.
let refreshToken = null;
const endedListeners = new Set();

export class ApiFailure extends Error {
  constructor({ status, code, message, param = null, requestId = null }) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
    this.requestId = requestId;
  }
}

function setting(name) {
  return document.querySelector(`meta[name="${name}"]`).content;
}

// The session: the access token and when it expires, in sessionStorage (this tab only,
// gone when it closes; never a cookie, never localStorage).
export const session = {
  get() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      if (saved && typeof saved.accessToken === 'string') return saved;
    } catch {
      // Not ours, or damaged: no session.
    }
    return null;
  },
  valid() {
    const saved = this.get();
    return saved !== null && saved.expiresAt - EXPIRY_MARGIN_MS > Date.now();
  },
  save(result) {
    const saved = {
      accessToken: result.AccessToken,
      expiresAt: Date.now() + (Number(result.ExpiresIn) || 3600) * 1000,
    };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    if (result.RefreshToken) refreshToken = result.RefreshToken;
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
    refreshToken = null;
  },
};

// Called with a reason when the session ends without the member signing out (it expired,
// or the API refused it): the page shows sign-in and keeps the member's place.
export function onSessionEnded(listener) {
  endedListeners.add(listener);
}

function endSession(reason) {
  session.clear();
  for (const listener of endedListeners) listener(reason);
}

async function cognito(action, body) {
  let response;
  try {
    response = await fetch(setting('ic-cognito-endpoint'), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiFailure({
      status: 0,
      code: 'network',
      message: 'The sign-in service could not be reached. Check your connection and try again.',
    });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const type = String(data.__type || '').split('#').pop();
    throw new ApiFailure({
      status: response.status,
      code: type || 'sign_in_failed',
      message: signInMessage(type, String(data.message || '')),
      requestId: response.headers.get('x-amzn-requestid'),
    });
  }
  return data;
}

function signInMessage(type, message) {
  switch (type) {
    case 'NotAuthorizedException':
      if (/disabled/i.test(message)) {
        return 'This member has been deactivated. Ask an administrator of your org.';
      }
      if (/attempts exceeded/i.test(message)) {
        return 'Too many failed attempts. Wait a few minutes and try again.';
      }
      if (/session/i.test(message)) {
        return 'This sign-in took too long. Start again with your temporary password.';
      }
      return 'Incorrect email or password.';
    case 'UserNotFoundException':
      return 'Incorrect email or password.';
    case 'InvalidPasswordException':
      return message || 'That password does not meet the pool’s password policy.';
    case 'PasswordResetRequiredException':
      return 'Your password must be reset. Ask an administrator of your org.';
    case 'TooManyRequestsException':
    case 'LimitExceededException':
      return 'Too many attempts. Wait a minute and try again.';
    case 'ExpiredCodeException':
    case 'CodeMismatchException':
      return 'This sign-in took too long. Start again with your temporary password.';
    default:
      return message || 'Sign-in failed. Try again.';
  }
}

// Signs in with the pool's USER_PASSWORD_AUTH flow. Resolves to `null` when signed in, or
// to the challenge an invited member must answer (their own password) first.
export async function signIn(email, password) {
  const data = await cognito('InitiateAuth', {
    AuthFlow: 'USER_PASSWORD_AUTH',
    ClientId: setting('ic-client-id'),
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  if (data.AuthenticationResult) {
    session.save(data.AuthenticationResult);
    return null;
  }
  if (data.ChallengeName === 'NEW_PASSWORD_REQUIRED') {
    const parameters = data.ChallengeParameters || {};
    return {
      session: data.Session,
      username: parameters.USER_ID_FOR_SRP || email,
    };
  }
  throw new ApiFailure({
    status: 0,
    code: data.ChallengeName || 'unsupported_challenge',
    message: `This account needs a sign-in step the page does not offer (${data.ChallengeName}). Ask an administrator.`,
  });
}

// Answers the new-password challenge of a first sign-in.
export async function setNewPassword(challenge, newPassword) {
  const data = await cognito('RespondToAuthChallenge', {
    ChallengeName: 'NEW_PASSWORD_REQUIRED',
    ClientId: setting('ic-client-id'),
    Session: challenge.session,
    ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: newPassword },
  });
  if (!data.AuthenticationResult) {
    throw new ApiFailure({
      status: 0,
      code: data.ChallengeName || 'sign_in_failed',
      message: 'The new password was not accepted. Start again.',
    });
  }
  session.save(data.AuthenticationResult);
}

// Signs out everywhere this member is signed in (best effort: the token may already be
// invalid), and forgets the session in this tab.
export async function signOut() {
  const saved = session.get();
  session.clear();
  if (saved) {
    await cognito('GlobalSignOut', { AccessToken: saved.accessToken }).catch(() => {});
  }
}

async function accessToken() {
  if (session.valid()) return session.get().accessToken;
  if (refreshToken) {
    try {
      const data = await cognito('InitiateAuth', {
        AuthFlow: 'REFRESH_TOKEN_AUTH',
        ClientId: setting('ic-client-id'),
        AuthParameters: { REFRESH_TOKEN: refreshToken },
      });
      if (data.AuthenticationResult) {
        session.save(data.AuthenticationResult);
        return data.AuthenticationResult.AccessToken;
      }
    } catch {
      // Fall through: the member signs in again.
    }
  }
  return null;
}

function sessionEnded() {
  const message = 'Your session has ended. Sign in again to continue where you were.';
  endSession(message);
  return new ApiFailure({ status: 401, code: 'session_ended', message });
}

// One call to the member API. `idempotent` sends a fresh Idempotency-Key (on the writes
// that take one), so a retried click can never act twice.
export async function api(method, path, { body, idempotent = false } = {}) {
  const token = await accessToken();
  if (!token) throw sessionEnded();
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotent) headers['idempotency-key'] = crypto.randomUUID();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiFailure({
      status: 0,
      code: 'network',
      message: 'The API could not be reached. Check your connection and try again.',
    });
  }
  const requestId = response.headers.get('request-id');
  const data = await response.json().catch(() => null);
  if (response.status === 401) throw sessionEnded();
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiFailure({
      status: response.status,
      code: error.code || `http_${response.status}`,
      message: error.message || `The API answered ${response.status}.`,
      param: error.param || null,
      requestId: requestId || error.request_id || null,
    });
  }
  return data;
}

// Every page of a listing, up to `max` items.
export async function listAll(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page = await api(
      'GET',
      `${path}${separator}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    items.push(...page.data);
    cursor = page.has_more ? page.next_cursor : null;
  } while (cursor && items.length < max);
  return items;
}
