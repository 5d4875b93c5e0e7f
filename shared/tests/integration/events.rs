//! Every sample event in `events/` through its handler, as `sam local invoke` would, without
//! Docker: the same lambda_http event path, the status and body checked.

use serde_json::Value;
use shared::customers::input::CustomerInput;
use shared::customers::model::{AddedVia, Customer};
use shared::edge::gateway_event::{invoke, Context, GatewayResponse};
use shared::edge::routes::Route;
use shared::org::OrgId;
use shared::{time, Endpoint};

use crate::helpers::TestEnv;

const PLACEHOLDER: &str = "ic_live_REPLACE_WITH_A_KEY_FROM_ICADMIN";
/// The test helpers' events take a test key (`icadmin keys create --mode test`).
const TEST_PLACEHOLDER: &str = "ic_test_REPLACE_WITH_A_TEST_KEY_FROM_ICADMIN";
const SAMPLE_CUSTOMER: &str = "0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f";

/// file, status with a real key, and what the body must be (`object` or error `code`).
const EXPECTED: &[(&str, u16, &str)] = &[
    ("list-customers.json", 200, "list"),
    ("list-customers-updated-since.json", 200, "list"),
    ("list-customers-bad-key.json", 401, "unauthorized"),
    ("create-customer.json", 201, "customer"),
    ("get-customer.json", 200, "customer"),
    ("update-customer.json", 200, "customer"),
    ("get-customer-aml.json", 200, "aml_result"),
    ("me.json", 200, "api_key"),
    // Test mode's helpers, with a test key: the sample test customer moves on.
    ("test-helper-kyc.json", 200, "customer"),
    ("test-helper-aml.json", 200, "customer"),
    ("unknown-route.json", 404, "not_found"),
    // The member API: as API Gateway passes them after its JWT authorizer, claims included.
    ("org-me.json", 200, "member"),
    ("list-api-keys.json", 200, "list"),
    ("create-api-key.json", 201, "api_key"),
    ("get-api-key.json", 404, "not_found"),
    ("update-api-key.json", 404, "not_found"),
    ("revoke-api-key.json", 404, "not_found"),
    ("roll-api-key.json", 404, "not_found"),
    ("dismiss-key-leak.json", 404, "not_found"),
    ("api-key-requests.json", 404, "not_found"),
    ("list-members.json", 200, "list"),
    ("list-audit-events.json", 200, "list"),
    ("invite-member.json", 201, "member"),
    ("update-member.json", 404, "not_found"),
    ("deactivate-member.json", 404, "not_found"),
    // Webhook endpoints: a key with webhooks:write, and a member (a public address
    // literal as the target: no DNS needed).
    ("list-webhook-endpoints.json", 200, "list"),
    ("create-webhook-endpoint.json", 201, "webhook_endpoint"),
    ("get-webhook-endpoint.json", 404, "not_found"),
    ("update-webhook-endpoint.json", 404, "not_found"),
    ("delete-webhook-endpoint.json", 404, "not_found"),
    ("org-list-webhook-endpoints.json", 200, "list"),
    ("org-create-webhook-endpoint.json", 201, "webhook_endpoint"),
    ("org-get-webhook-endpoint.json", 404, "not_found"),
    ("org-update-webhook-endpoint.json", 404, "not_found"),
    ("org-delete-webhook-endpoint.json", 404, "not_found"),
    ("org-webhook-endpoint-secret.json", 404, "not_found"),
    ("org-rotate-webhook-secret.json", 404, "not_found"),
    ("org-list-webhook-deliveries.json", 404, "not_found"),
    ("org-resend-webhook-delivery.json", 404, "not_found"),
    // Provider keys: the org's credentials for its providers (KMS: the emulator's key).
    ("list-provider-keys.json", 200, "list"),
    ("create-provider-key.json", 201, "provider_key"),
    ("get-provider-key.json", 404, "not_found"),
    ("update-provider-key.json", 404, "not_found"),
    ("rotate-provider-key.json", 404, "not_found"),
    ("provider-key-call-summaries.json", 404, "not_found"),
    ("verify-provider-key.json", 404, "not_found"),
    // GitHub's report without its signature: refused before any key is looked at.
    ("github-secret-scanning.json", 401, "unauthorized"),
];

/// The member events' `sub` claim: no member has it, so as committed they answer 401.
const MEMBER_PLACEHOLDER: &str = "REPLACE_WITH_A_MEMBER_SUB";

/// Not an API Gateway event: the log writer's, checked on its own below.
const LOG_WRITER_EVENT: &str = "log-writer.json";

/// Not an API Gateway event: a DynamoDB Streams batch for the webhook dispatcher, checked
/// on its own below.
const DISPATCHER_EVENT: &str = "webhook-dispatcher.json";

/// The page's events: its own function (not the library's handlers) answers them, and its
/// crate's tests check them (`functions/developers-page`).
const PAGE_EVENTS: &[&str] = &["developers-page.json", "developers-page-asset.json"];

#[tokio::test]
async fn the_log_writer_sample_event_is_stored() {
    let env = TestEnv::new().await;
    let reader =
        shared::request_log::table::RequestLogTable::new(env.client.clone(), &env.request_log);
    let writer = reader.signing_as(crate::helpers::LOG_WRITER);
    let stored = shared::request_log::writer::handle(&writer, &load(LOG_WRITER_EVENT))
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let records = reader
        .for_key(&OrgId::parse("events").unwrap(), "key_SAMPLE", None, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id, "events-log-writer");
    assert_eq!(records[0].customer_ids, [SAMPLE_CUSTOMER]);
}

#[tokio::test]
async fn the_dispatcher_sample_event_makes_a_delivery_for_a_subscribed_endpoint() {
    use shared::webhooks::endpoint::{Creator, WebhookEndpoint};
    let env = TestEnv::new().await;
    let org = OrgId::parse("events").unwrap();
    // An endpoint of `events` for customer.created, made by a key that may read customers.
    let maker = env
        .issue_key(
            "events",
            &[
                shared::keys::scope::Scope::WebhooksWrite,
                shared::keys::scope::Scope::CustomersRead,
            ],
            &[],
        )
        .await;
    let now = time::now();
    let endpoint_id = shared::webhooks::endpoint::new_endpoint_id().unwrap();
    let secret = shared::webhooks::signing::StoredSecret::seal(
        env.app.vault.as_ref().unwrap(),
        &org,
        &endpoint_id,
        &shared::webhooks::signing::WebhookSecret::generate().unwrap(),
    )
    .await
    .unwrap();
    let endpoint = WebhookEndpoint {
        org_id: org.clone(),
        endpoint_id,
        mode: "live".into(),
        url: "https://93.184.215.14/hooks".into(),
        events: [shared::webhooks::event::EventType::CustomerCreated].into(),
        description: None,
        enabled: true,
        include_aml: false,
        secret,
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        created_by: Creator::ApiKey {
            id: maker.record.id.clone(),
        },
        bound_to: None,
        bound_at: None,
        disabled_reason: None,
        disabled_at: None,
        failing_since: None,
        version: 0,
    };
    env.app
        .webhook_endpoints
        .create(
            &env.app.audit,
            &shared::audit::Author::operator("tests"),
            &endpoint,
        )
        .await
        .unwrap();
    let webhooks = std::sync::Arc::new(
        shared::webhooks::dispatch::Webhooks::new(&env.app).signing_as("WebhookDispatcherFunction"),
    );
    let answer = webhooks
        .handle_stream(
            &load(DISPATCHER_EVENT),
            // Too little time left for a first attempt: stored only, for the retrier.
            tokio::time::Instant::now() + std::time::Duration::from_secs(5),
        )
        .await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let deliveries = env
        .app
        .webhook_deliveries
        .list(&endpoint.endpoint_id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].event_type.as_str(), "customer.created");
    let payload: Value = serde_json::from_str(&deliveries[0].payload).unwrap();
    assert_eq!(payload["data"]["object"]["id"], SAMPLE_CUSTOMER);
}

fn events_dir() -> std::path::PathBuf {
    localdb::workspace_root().join("events")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The function `sam local invoke` would run for the event, from its route key.
fn endpoint_of(event: &Value) -> Endpoint {
    let key = event["routeKey"].as_str().unwrap();
    if key == "$default" {
        return Endpoint::Fallback;
    }
    let (method, path) = key.split_once(' ').unwrap();
    Endpoint::Route(
        Route::from_declaration(method, path).unwrap_or_else(|| panic!("no route {key}")),
    )
}

fn check(name: &str, event: &Value, response: &GatewayResponse, status: u16, what: &str) {
    let body = response
        .json()
        .unwrap_or_else(|| panic!("{name}: JSON body"));
    assert_eq!(response.status, status, "{name}: {body}");
    let request_id = event["requestContext"]["requestId"].as_str().unwrap();
    assert_eq!(
        response.header("request-id"),
        Some(request_id),
        "{name}: Request-Id is API Gateway's"
    );
    if status >= 400 {
        assert_eq!(body["error"]["code"], what, "{name}: {body}");
        assert_eq!(body["error"]["request_id"], request_id, "{name}");
    } else {
        assert_eq!(body["object"], what, "{name}: {body}");
    }
}

#[tokio::test]
async fn every_sample_event_is_answered_as_documented() {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".json")
                && n != LOG_WRITER_EVENT
                && n != DISPATCHER_EVENT
                && !PAGE_EVENTS.contains(&n.as_str())
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(n, _, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every file in events/ has an expectation here, and back"
    );
    let routes: std::collections::HashSet<_> = EXPECTED
        .iter()
        .map(|(n, _, _)| endpoint_of(&load(n)))
        .collect();
    for &route in Route::ALL.iter().filter(|r| !r.is_page()) {
        assert!(
            routes.contains(&Endpoint::Route(route)),
            "no sample event for {}",
            route.key()
        );
    }

    let env = TestEnv::new().await;
    let key = env.full_key("events").await;
    let test_key = env
        .app
        .keys
        .issue(
            shared::keys::table::NewApiKey::parse(
                "events",
                "test key",
                &["customers:write".to_owned()],
                None,
                &[],
                "tests",
                time::now(),
            )
            .unwrap()
            .with_mode(shared::org::Mode::Test),
            time::now(),
        )
        .await
        .unwrap();
    // The member the member events name: an administrator of `events`, in a user pool of
    // the Cognito emulator (the invitation creates a pool user).
    let cognito = tokio::task::spawn_blocking(localdb::CognitoLocal::start_on_free_port)
        .await
        .unwrap()
        .expect("the Cognito emulator");
    let pool = localdb::Template::load_default()
        .unwrap()
        .create_user_pool(&cognito.client(), "")
        .await
        .unwrap();
    // The same emulator holds the provider-keys KMS key of template.yaml.
    let kms = localdb::kms_client(&cognito.endpoint());
    let kms_key = localdb::Template::load_default()
        .unwrap()
        .create_kms_key(&kms)
        .await
        .unwrap();
    let app = std::sync::Arc::new(
        (*env.app)
            .clone()
            .with_pool(shared::members::pool::MemberPool::new(
                cognito.client(),
                pool.pool_id,
            ))
            .with_vault(
                shared::providers::vault::Vault::new(kms, kms_key.arn),
                shared::providers::client::ProviderEndpoints::all_at("http://127.0.0.1:9").unwrap(),
            ),
    );
    let member = shared::members::table::Member {
        id: uuid::Uuid::new_v4().to_string(),
        org_id: OrgId::parse("events").unwrap(),
        email: "admin@events.test".into(),
        role: shared::members::role::Role::Administrator,
        status: shared::members::table::MemberStatus::Active,
        created_at: time::now(),
        invited_by: None,
        deactivated_at: None,
        key_hashes: Default::default(),
    };
    app.members.add(&member).await.unwrap();
    // The customer the {id} events name.
    let input = CustomerInput::parse(
        serde_json::json!({"fullName": "Sample"})
            .as_object()
            .unwrap(),
        time::now().date_naive(),
    )
    .unwrap();
    let mut sample = Customer::create(&input, AddedVia::Integration, time::now()).unwrap();
    sample.id = SAMPLE_CUSTOMER.parse().unwrap();
    // In both modes: the helpers' events move the test one.
    for mode in shared::org::Mode::ALL {
        env.app
            .customers
            .insert(&OrgId::parse("events").unwrap().data_space(mode), &sample)
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap();
    }

    for &(name, status, what) in EXPECTED {
        let as_committed = load(name);
        // As committed, with the placeholder: never a key, so every routed event is a 401.
        let response = invoke(
            app.clone(),
            endpoint_of(&as_committed),
            as_committed.clone(),
            Context::default(),
        )
        .await;
        let response = GatewayResponse::from_event(&response).unwrap();
        if endpoint_of(&as_committed) == Endpoint::Fallback {
            check(name, &as_committed, &response, 404, "not_found");
        } else {
            check(name, &as_committed, &response, 401, "unauthorized");
        }
        // With a real key, as the README says to use them.
        let text = serde_json::to_string(&as_committed)
            .unwrap()
            .replace(PLACEHOLDER, key.token.expose_secret())
            .replace(TEST_PLACEHOLDER, test_key.token.expose_secret())
            .replace(MEMBER_PLACEHOLDER, &member.id);
        let event: Value = serde_json::from_str(&text).unwrap();
        let response = invoke(
            app.clone(),
            endpoint_of(&event),
            event.clone(),
            Context::default(),
        )
        .await;
        check(
            name,
            &event,
            &GatewayResponse::from_event(&response).unwrap(),
            status,
            what,
        );
    }
}
