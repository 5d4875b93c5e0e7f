// The Zapier app against a running local stack, through Zapier's own app tester.
// Needs IC_API_URL, IC_LIVE_KEY (customers:write, customers:read, webhooks:write),
// IC_TEST_KEY (the same and aml:read, test mode) and IC_LIMITED_KEY (customers:read);
// `make test` runs it from
// infra/tests/e2e/zapier.rs with a fresh stack.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const zapier = require('zapier-platform-core');
const App = require('../index');

const appTester = zapier.createAppTester(App);
const apiUrl = process.env.IC_API_URL;
const live = { apiKey: process.env.IC_LIVE_KEY, apiUrl };
const testMode = { apiKey: process.env.IC_TEST_KEY, apiUrl };
const run = `z${crypto.randomBytes(4).toString('hex')}`;

// A receiver on loopback (the local stack alone may deliver there): every request kept
// as Zapier would hand it to a hook, headers renamed Http-….
const received = [];
let receiver;
let targetUrl;
before(async () => {
  assert.ok(apiUrl && live.apiKey && testMode.apiKey, 'IC_API_URL, IC_LIVE_KEY and IC_TEST_KEY');
  receiver = http.createServer((req, res) => {
    let content = '';
    req.on('data', (chunk) => (content += chunk));
    req.on('end', () => {
      const headers = {};
      for (const [name, value] of Object.entries(req.headers)) {
        const zapierName = `Http-${name.replace(/(^|-)([a-z])/g, (m, dash, c) => dash + c.toUpperCase())}`;
        headers[zapierName] = value;
      }
      received.push({ method: req.method, headers, content, path: req.url });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${receiver.address().port}/hooks/zap`;
});
after(() => {
  if (receiver) {
    // Connections the stack's sender keeps alive would hold close() open.
    receiver.closeAllConnections();
    receiver.close();
  }
});

const waitFor = async (what, found) => {
  const until = Date.now() + 20000;
  for (;;) {
    const hit = received.find(found);
    if (hit) {
      return hit;
    }
    assert.ok(Date.now() < until, `waited 20 s for ${what}; received ${received.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

const eventOf = (request) => JSON.parse(request.content);

test('authentication is tested with GET /v1/me and a bad key is refused with the API\'s words', async () => {
  const me = await appTester(App.authentication.test, { authData: live });
  assert.equal(me.object, 'api_key');
  assert.equal(me.mode, 'live');
  assert.ok(me.scopes.includes('webhooks:write'));
  await assert.rejects(
    appTester(App.authentication.test, {
      authData: { apiKey: `ic_live_${'0'.repeat(38)}`, apiUrl },
    }),
    (err) => /API key/i.test(err.message) || /unauthorized/i.test(err.message),
  );
});

test('create or update customer upserts by external id and explains a bad field', async () => {
  const externalId = `${run}-upsert`;
  const created = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId, full_name: 'Jane Doe', email: '', metadata: { source: 'zapier' } },
  });
  assert.equal(created.external_id, externalId);
  assert.equal(created.email, null, 'an empty Zapier field is not sent');
  assert.deepEqual(created.metadata, { source: 'zapier' });
  const again = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId, full_name: 'Jane Q. Doe' },
  });
  assert.equal(again.id, created.id, 'the same customer, updated');
  assert.equal(again.full_name, 'Jane Q. Doe');
  await assert.rejects(
    appTester(App.creates.upsert_customer.operation.perform, {
      authData: live,
      inputData: { external_id: `${run}-bad`, full_name: 'X', date_of_birth: 'yesterday' },
    }),
    (err) => err.message.includes('date_of_birth'),
  );
  await assert.rejects(
    appTester(App.creates.upsert_customer.operation.perform, {
      authData: live,
      inputData: { external_id: `${run}-nameless` },
    }),
    (err) => err.message.includes('full_name'),
  );
});

test('find customer by external id finds one or none', async () => {
  const externalId = `${run}-find`;
  const created = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId, full_name: 'Find Me' },
  });
  const found = await appTester(App.searches.find_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId },
  });
  assert.equal(found.length, 1);
  assert.equal(found[0].id, created.id);
  const none = await appTester(App.searches.find_customer.operation.perform, {
    authData: live,
    inputData: { external_id: `${run}-nobody` },
  });
  assert.deepEqual(none, []);
  // Test data is not in live's view.
  const other = await appTester(App.searches.find_customer.operation.perform, {
    authData: testMode,
    inputData: { external_id: externalId },
  });
  assert.deepEqual(other, []);
});

test('a verified-customer REST hook: subscribe, a signed delivery triggers, forgeries do not, unsubscribe', async () => {
  const trigger = App.triggers.customer_verified.operation;
  const subscribeData = await appTester(trigger.performSubscribe, {
    authData: testMode,
    targetUrl,
  });
  assert.match(subscribeData.id, /^we_/);
  assert.match(subscribeData.secret, /^whsec_/);
  assert.equal(subscribeData.mode, 'test');

  // A test customer driven to VERIFIED + CLEAR with the app's own actions.
  const externalId = `${run}-verify`;
  const customer = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: testMode,
    inputData: { external_id: externalId, full_name: 'Vera Fied' },
  });
  for (const [check, status] of [['kyc', 'IN_PROGRESS'], ['kyc', 'VERIFIED'], ['aml', 'PENDING'], ['aml', 'CLEAR']]) {
    const moved = await appTester(App.creates.move_test_customer.operation.perform, {
      authData: testMode,
      inputData: { customer_id: customer.id, check, status },
    });
    assert.equal(moved.id, customer.id);
  }
  const delivery = await waitFor('customer.verified', (r) => {
    try {
      const event = eventOf(r);
      return event.type === 'customer.verified' && event.data.object.id === customer.id;
    } catch (e) {
      return false;
    }
  });
  assert.equal(delivery.path, '/hooks/zap');
  assert.match(delivery.headers['Http-Webhook-Id'], /^msg_/);

  const items = await appTester(trigger.perform, {
    authData: testMode,
    subscribeData,
    rawRequest: delivery,
    cleanedRequest: eventOf(delivery),
  });
  assert.equal(items.length, 1);
  assert.equal(items[0].id, customer.id);
  assert.equal(items[0].customer_id, customer.id);
  assert.equal(items[0].kyc_status, 'VERIFIED');
  assert.equal(items[0].aml.status, 'CLEAR');

  // Forged: a changed body, or a signature made with another secret, triggers nothing.
  const forged = { ...delivery, content: delivery.content.replace('Vera Fied', 'Mallory') };
  assert.deepEqual(
    await appTester(trigger.perform, { authData: testMode, subscribeData, rawRequest: forged }),
    [],
  );
  const otherSecret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
  assert.deepEqual(
    await appTester(trigger.perform, {
      authData: testMode,
      subscribeData: { ...subscribeData, secret: otherSecret },
      rawRequest: delivery,
    }),
    [],
  );

  // The polling fallback sees the same customer.
  const listed = await appTester(trigger.performList, { authData: testMode });
  assert.ok(listed.some((c) => c.id === customer.id), 'performList finds the verified customer');
  assert.ok(listed.every((c) => c.kyc_status === 'VERIFIED' && c.aml.status === 'CLEAR'));

  // Unsubscribed: the endpoint is gone, and a second unsubscribe is fine.
  await appTester(trigger.performUnsubscribe, { authData: testMode, subscribeData });
  await assert.rejects(
    appTester(async (z, bundle) => (await z.request(`${apiUrl}/v1/webhook_endpoints/${subscribeData.id}`)).data, {
      authData: testMode,
    }),
    (err) => err.message.includes('No webhook endpoint'),
  );
  await appTester(trigger.performUnsubscribe, { authData: testMode, subscribeData });
});

test('new and updated customer hooks: live data to a live subscription, one item per change', async () => {
  const created = App.triggers.new_customer.operation;
  const updated = App.triggers.customer_updated.operation;
  const subNew = await appTester(created.performSubscribe, { authData: live, targetUrl });
  const subUpdated = await appTester(updated.performSubscribe, { authData: live, targetUrl });
  const externalId = `${run}-hooks`;
  const customer = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId, full_name: 'Hugo Hook' },
  });
  await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: externalId, email: 'hugo@example.com' },
  });
  const isFor = (type) => (r) => {
    try {
      const event = eventOf(r);
      return event.type === type && event.data.object.id === customer.id;
    } catch (e) {
      return false;
    }
  };
  const newDelivery = await waitFor('customer.created', isFor('customer.created'));
  const updateDelivery = await waitFor('customer.updated', isFor('customer.updated'));

  const fromNew = await appTester(created.perform, { authData: live, subscribeData: subNew, rawRequest: newDelivery });
  assert.equal(fromNew.length, 1);
  assert.equal(fromNew[0].id, customer.id);
  // Each subscription verifies with its own secret: the other's deliveries do not pass.
  assert.deepEqual(
    await appTester(created.perform, { authData: live, subscribeData: subUpdated, rawRequest: newDelivery }),
    [],
  );
  const fromUpdate = await appTester(updated.perform, {
    authData: live,
    subscribeData: subUpdated,
    rawRequest: updateDelivery,
  });
  assert.equal(fromUpdate.length, 1);
  assert.equal(fromUpdate[0].customer_id, customer.id);
  assert.equal(fromUpdate[0].email, 'hugo@example.com');
  assert.equal(fromUpdate[0].aml, undefined, 'no AML for a subscription made without aml:read');
  assert.equal(fromUpdate[0].id, `${customer.id}@${fromUpdate[0].updated_at}`);

  // Polling fallbacks: newest change first, updated items keyed per change.
  const polledNew = await appTester(created.performList, { authData: live });
  assert.equal(polledNew[0].id, customer.id, 'the newest customer comes first');
  const polledUpdated = await appTester(updated.performList, { authData: live });
  assert.equal(polledUpdated[0].customer_id, customer.id);
  assert.ok(polledUpdated[0].id.startsWith(`${customer.id}@`));

  for (const subscribeData of [subNew, subUpdated]) {
    await appTester(created.performUnsubscribe, { authData: live, subscribeData });
  }
});

test('a key without webhooks:write cannot subscribe, and says why', async () => {
  const limited = { apiKey: process.env.IC_LIMITED_KEY, apiUrl };
  await assert.rejects(
    appTester(App.triggers.new_customer.operation.performSubscribe, { authData: limited, targetUrl }),
    (err) => err.message.includes('webhooks:write'),
  );
});

test('moving a live customer with the test helpers is refused', async () => {
  const customer = await appTester(App.creates.upsert_customer.operation.perform, {
    authData: live,
    inputData: { external_id: `${run}-live-move`, full_name: 'Liv E' },
  });
  await assert.rejects(
    appTester(App.creates.move_test_customer.operation.perform, {
      authData: live,
      inputData: { customer_id: customer.id, check: 'kyc', status: 'VERIFIED' },
    }),
    (err) => /test/i.test(err.message),
  );
});
