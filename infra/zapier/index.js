// The Instant Compliance app for Zapier, on Zapier's own platform (zapier-platform-core).
//
// - Authentication: an API key (ic_live_… or ic_test_…) and the API's URL, tested with
//   GET /v1/me.
// - Triggers "New customer", "Customer updated", "Customer verified": REST hooks. Turning a
//   Zap on registers a webhook endpoint (POST /v1/webhook_endpoints, scope webhooks:write)
//   whose signing secret is kept with the subscription; each delivery is verified with the
//   Standard Webhooks library before it triggers anything. performList (the sample data,
//   and a poller's view) walks GET /v1/customers?updated_since=… .
// - Actions "Create or update customer" (upsert by external id) and "Move test customer"
//   (the test helpers, with an ic_test_ key); search "Find customer by external id".

const { Webhook } = require('standardwebhooks');
const { version } = require('./package.json');
const platformVersion = require('zapier-platform-core').version;

/// How far back performList looks, and how many pages it reads at most (100 each).
const LIST_WINDOW_HOURS = 24;
const LIST_MAX_PAGES = 10;
const LIST_KEEP = 100;

const base = (bundle) => String(bundle.authData.apiUrl || '').replace(/\/+$/, '');

// --- Requests -----------------------------------------------------------------------

const addApiKey = (request, z, bundle) => {
  if (bundle.authData && bundle.authData.apiKey) {
    request.headers = request.headers || {};
    request.headers.Authorization = `Bearer ${bundle.authData.apiKey}`;
  }
  return request;
};

// The API's error envelope, as Zapier shows errors: its message, its code, the field.
const explainErrors = (response, z) => {
  if (response.status < 400 || response.skipThrowForStatus) {
    return response;
  }
  let error = {};
  try {
    error = JSON.parse(response.content).error || {};
  } catch (e) {
    error = {};
  }
  const message = error.message || `The API answered ${response.status}.`;
  const field = error.param ? ` (${error.param})` : '';
  if (response.status === 401) {
    throw new z.errors.RefreshAuthError(`${message}${field}`);
  }
  if (response.status === 429 || response.status === 503) {
    throw new z.errors.ThrottledError(`${message}${field}`, Number(response.getHeader('retry-after')) || 60);
  }
  throw new z.errors.Error(`${message}${field}`, error.code || 'api_error', response.status);
};

const call = async (z, bundle, method, path, body) => {
  const response = await z.request({
    method,
    url: `${base(bundle)}${path}`,
    headers: { Accept: 'application/json' },
    body: body === undefined ? undefined : body,
  });
  return response.data;
};

// --- Webhook deliveries -----------------------------------------------------------------

// Zapier hands a hook its request with headers renamed `Http-Webhook-Id` and so on;
// plain names (webhook-id) are accepted too.
const deliveryHeaders = (rawRequest) => {
  const found = {};
  for (const [name, value] of Object.entries((rawRequest && rawRequest.headers) || {})) {
    const plain = name.toLowerCase().replace(/^http-/, '');
    if (['webhook-id', 'webhook-timestamp', 'webhook-signature'].includes(plain)) {
      found[plain] = value;
    }
  }
  return found;
};

// The verified event of a delivery, or null when it is not ours (a bad or missing
// signature, a stale timestamp, another endpoint's secret).
const verifiedEvent = (z, bundle) => {
  const secret = bundle.subscribeData && bundle.subscribeData.secret;
  const raw = bundle.rawRequest && bundle.rawRequest.content;
  if (!secret || typeof raw !== 'string') {
    z.console.log('A delivery without a signing secret or body was ignored.');
    return null;
  }
  try {
    return new Webhook(secret).verify(raw, deliveryHeaders(bundle.rawRequest));
  } catch (err) {
    z.console.log(`A delivery that did not verify was ignored: ${err.message}`);
    return null;
  }
};

// --- Customers as Zapier items -------------------------------------------------------

// "Customer updated" fires once per change, so its items are keyed by the change; the
// customer's own id stays in customer_id.
const asItem = (customer, perChange) => ({
  ...customer,
  customer_id: customer.id,
  id: perChange ? `${customer.id}@${customer.updated_at}` : customer.id,
});

// A key without aml:read sees no `aml` block: its polling fallback goes by KYC alone (the
// hook's customer.verified is decided by the API, with AML, and subscribing to it needs
// aml:read: the event states an AML result).
const isVerified = (customer) =>
  customer.kyc_status === 'VERIFIED' && (!customer.aml || customer.aml.status === 'CLEAR');

// The customers changed in the last LIST_WINDOW_HOURS, newest change first.
const recentlyChanged = async (z, bundle) => {
  const since = new Date(Date.now() - LIST_WINDOW_HOURS * 3600 * 1000).toISOString();
  let path = `/v1/customers?limit=100&updated_since=${encodeURIComponent(since)}`;
  let seen = [];
  for (let page = 0; page < LIST_MAX_PAGES; page += 1) {
    const listed = await call(z, bundle, 'GET', path);
    seen = seen.concat(listed.data);
    if (!listed.has_more) {
      break;
    }
    path = `/v1/customers?limit=100&updated_since=${encodeURIComponent(since)}&cursor=${encodeURIComponent(listed.next_cursor)}`;
  }
  return seen.reverse().slice(0, LIST_KEEP);
};

const customerSample = {
  id: '0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f',
  customer_id: '0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f',
  object: 'customer',
  external_id: 'crm-42',
  type: 'INDIVIDUAL',
  full_name: 'Jane Doe',
  email: 'jane@example.com',
  phone: null,
  date_of_birth: null,
  country: 'GB',
  kyc_status: 'VERIFIED',
  aml: { status: 'CLEAR', categories: [], screened_at: '2026-11-22T09:12:44.000Z' },
  metadata: {},
  added_via: 'INTEGRATION',
  created_at: '2026-11-22T09:00:00.000Z',
  updated_at: '2026-11-22T09:12:44.000Z',
};

const customerOutputFields = [
  { key: 'customer_id', label: 'Customer ID' },
  { key: 'external_id', label: 'External ID' },
  { key: 'full_name', label: 'Full name' },
  { key: 'email', label: 'Email' },
  { key: 'kyc_status', label: 'KYC status' },
  { key: 'aml__status', label: 'AML status' },
  { key: 'updated_at', label: 'Updated at', type: 'datetime' },
];

// --- Triggers ---------------------------------------------------------------------------

const hookTrigger = ({ key, label, description, eventType, perChange, keep }) => ({
  key,
  noun: 'Customer',
  display: { label, description },
  operation: {
    type: 'hook',
    performSubscribe: async (z, bundle) => {
      const endpoint = await call(z, bundle, 'POST', '/v1/webhook_endpoints', {
        url: bundle.targetUrl,
        events: [eventType],
        description: `Zapier: ${label}`,
      });
      // Kept by Zapier as bundle.subscribeData: the id to unsubscribe with, the secret
      // to verify deliveries with.
      return { id: endpoint.id, secret: endpoint.secret, mode: endpoint.mode };
    },
    performUnsubscribe: async (z, bundle) => {
      const id = bundle.subscribeData && bundle.subscribeData.id;
      const response = await z.request({
        method: 'DELETE',
        url: `${base(bundle)}/v1/webhook_endpoints/${encodeURIComponent(id)}`,
        skipThrowForStatus: true,
      });
      // Deleted already (by a member, say): unsubscribed all the same.
      if (response.status === 404) {
        return { id, deleted: true };
      }
      response.skipThrowForStatus = false;
      return explainErrors(response, z).data;
    },
    perform: (z, bundle) => {
      const event = verifiedEvent(z, bundle);
      if (!event || event.type !== eventType) {
        return [];
      }
      return [asItem(event.data.object, perChange)];
    },
    performList: async (z, bundle) => {
      const customers = await recentlyChanged(z, bundle);
      return customers.filter(keep).map((c) => asItem(c, perChange));
    },
    sample: customerSample,
    outputFields: customerOutputFields,
  },
});

const newCustomer = hookTrigger({
  key: 'new_customer',
  label: 'New Customer',
  description: 'Triggers when a customer is created (by the API, an upsert or an import).',
  eventType: 'customer.created',
  perChange: false,
  keep: () => true,
});

const customerUpdated = hookTrigger({
  key: 'customer_updated',
  label: 'Customer Updated',
  description: 'Triggers on each change of a customer: details, KYC status or AML status.',
  eventType: 'customer.updated',
  perChange: true,
  keep: () => true,
});

const customerVerified = hookTrigger({
  key: 'customer_verified',
  label: 'Customer Verified',
  description: 'Triggers when a customer becomes KYC VERIFIED with AML CLEAR.',
  eventType: 'customer.verified',
  perChange: false,
  keep: isVerified,
});

// --- Actions and the search ----------------------------------------------------------------

const upsertCustomer = {
  key: 'upsert_customer',
  noun: 'Customer',
  display: {
    label: 'Create or Update Customer',
    description:
      'Creates a customer, or updates the one with this external ID: safe to repeat.',
  },
  operation: {
    inputFields: [
      { key: 'external_id', label: 'External ID', required: true, helpText: 'Your system\'s id for the customer (a CRM contact id).' },
      { key: 'full_name', label: 'Full name', helpText: 'Needed to create; optional to update.' },
      { key: 'type', label: 'Type', choices: ['INDIVIDUAL', 'BUSINESS'] },
      { key: 'email', label: 'Email' },
      { key: 'phone', label: 'Phone' },
      { key: 'date_of_birth', label: 'Date of birth', helpText: 'YYYY-MM-DD' },
      { key: 'country', label: 'Country', helpText: 'ISO 3166-1 alpha-2, e.g. GB' },
      { key: 'metadata', label: 'Metadata', dict: true },
    ],
    perform: async (z, bundle) => {
      const body = {};
      for (const [name, value] of Object.entries(bundle.inputData)) {
        // An empty Zapier field means "not given", never an empty value.
        if (value !== undefined && value !== null && value !== '') {
          body[name] = value;
        }
      }
      return call(z, bundle, 'POST', '/v1/customers', body);
    },
    sample: customerSample,
    outputFields: customerOutputFields,
  },
};

const moveTestCustomer = {
  key: 'move_test_customer',
  noun: 'Test Customer',
  display: {
    label: 'Move Test Customer',
    description:
      'Moves a test-mode customer\'s KYC or AML status, as the back office would (ic_test_ keys only).',
  },
  operation: {
    inputFields: [
      { key: 'customer_id', label: 'Customer ID', required: true },
      { key: 'check', label: 'Check', required: true, choices: ['kyc', 'aml'] },
      {
        key: 'status',
        label: 'Status',
        required: true,
        choices: ['IN_PROGRESS', 'NEEDS_REVIEW', 'VERIFIED', 'REJECTED', 'PENDING', 'CLEAR', 'POTENTIAL_MATCH', 'CONFIRMED_MATCH'],
        helpText: 'KYC: IN_PROGRESS, NEEDS_REVIEW, VERIFIED, REJECTED. AML: PENDING, CLEAR, POTENTIAL_MATCH, CONFIRMED_MATCH.',
      },
      { key: 'categories', label: 'Categories (POTENTIAL_MATCH)', list: true },
    ],
    perform: async (z, bundle) => {
      const { customer_id: id, check, status, categories } = bundle.inputData;
      const body = { status };
      if (categories && categories.length) {
        body.categories = categories;
      }
      return call(z, bundle, 'POST', `/v1/test_helpers/customers/${encodeURIComponent(id)}/${check}`, body);
    },
    sample: customerSample,
    outputFields: customerOutputFields,
  },
};

const findCustomer = {
  key: 'find_customer',
  noun: 'Customer',
  display: {
    label: 'Find Customer by External ID',
    description: 'Finds the customer with your system\'s id.',
  },
  operation: {
    inputFields: [{ key: 'external_id', label: 'External ID', required: true }],
    perform: async (z, bundle) => {
      const listed = await call(
        z,
        bundle,
        'GET',
        `/v1/customers?external_id=${encodeURIComponent(bundle.inputData.external_id)}`,
      );
      return listed.data;
    },
    sample: customerSample,
    outputFields: customerOutputFields,
  },
};

module.exports = {
  version,
  platformVersion,
  authentication: {
    type: 'custom',
    fields: [
      {
        key: 'apiKey',
        label: 'API key',
        type: 'password',
        required: true,
        helpText:
          'A key from Settings → Developers: `ic_live_…`, or `ic_test_…` for test data. Triggers need `webhooks:write` and `customers:read`; creating customers needs `customers:write`.',
      },
      {
        key: 'apiUrl',
        label: 'API URL',
        type: 'string',
        required: true,
        helpText: 'Your Instant Compliance API\'s address, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com',
      },
    ],
    test: (z, bundle) => call(z, bundle, 'GET', '/v1/me'),
    connectionLabel: '{{label}} ({{mode}})',
  },
  beforeRequest: [addApiKey],
  afterResponse: [explainErrors],
  triggers: {
    [newCustomer.key]: newCustomer,
    [customerUpdated.key]: customerUpdated,
    [customerVerified.key]: customerVerified,
  },
  creates: {
    [upsertCustomer.key]: upsertCustomer,
    [moveTestCustomer.key]: moveTestCustomer,
  },
  searches: {
    [findCustomer.key]: findCustomer,
  },
};
