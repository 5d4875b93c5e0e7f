//! A function as Lambda runs it: `run_function` with one of `functions`' constants, under
//! Lambda's environment variables (region, the role's credentials, the DynamoDB endpoint
//! override), taking events from a Runtime API on loopback (the one `make bench` uses) and
//! posting answers back. This is the whole of a function's `main`, which no other test runs:
//! the clients built from the variables alone, the route's handler reached through its
//! function pointer, and what a function refuses to start without.
//!
//! One test, in phases: the process's environment is what each phase changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infra::identity::active_member;
use infra::runtime_api::{api_event, as_member, RuntimeApi};
use localdb::{DynamoDbLocal, Template};
use serde_json::{json, Value};
use shared::app::TableNames;
use shared::edge::routes::Route;
use shared::keys::scope::Scope;
use shared::keys::table::NewApiKey;
use shared::members::role::Role;
use shared::{functions, time, App, Function};

const WAIT: Duration = Duration::from_secs(20);

fn event(route: Route, params: &[(&str, &str)], auth: Option<&str>) -> Value {
    let headers = auth
        .map(|auth| vec![("authorization".to_owned(), auth.to_owned())])
        .unwrap_or_default();
    api_event(route, params, "", headers, None)
}

fn status_and_body(answer: &Value) -> (u64, Value) {
    let body = answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (answer["statusCode"].as_u64().unwrap_or(0), body)
}

/// Starts `function` as its `main` would, against a fresh Runtime API.
async fn start(
    function: Function,
) -> (
    RuntimeApi,
    tokio::task::JoinHandle<Result<(), lambda_http::Error>>,
) {
    let api = RuntimeApi::start("lambda-test").await.unwrap();
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", api.host_port());
    let task = tokio::spawn(shared::run_function(function));
    (api, task)
}

/// What a function that must not start says: `run_function` ends with an error (Lambda
/// reports it as the init error) before it asks for an event.
async fn refuses_to_start(function: Function) -> String {
    let (api, task) = start(function).await;
    let outcome = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(
        api.arrivals().is_empty(),
        "it asked for events: {:?}",
        api.arrivals()
    );
    outcome.unwrap_err().to_string()
}

#[tokio::test]
async fn a_function_runs_on_lambdas_variables_alone() {
    let dynamodb = tokio::task::spawn_blocking(DynamoDbLocal::start_on_free_port)
        .await
        .unwrap()
        .unwrap();
    let template = Template::load_default().unwrap();
    let client = dynamodb.client();
    let names = template.create_tables(&client, "lambda_").await.unwrap();
    let table_vars = template.table_env_vars();
    let tables =
        TableNames::resolve(|var| table_vars.get(var).and_then(|id| names.get(id)).cloned())
            .unwrap();
    let app = Arc::new(App::new(client, &tables));
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let issued = app
        .keys
        .issue(
            NewApiKey::parse("lambda", "lambda", &scopes, None, &[], "tests", time::now()).unwrap(),
            time::now(),
        )
        .await
        .unwrap();
    let auth = format!("Bearer {}", issued.token.expose_secret());
    let member = active_member(
        &issued.record.org_id,
        "admin@lambda.test",
        Role::Administrator,
    );
    app.members.add(&member).await.unwrap();

    // Lambda's variables, and the template's for every function (the table names). No
    // profile, no config file: HOME points nowhere the default chain could read.
    let lambda: BTreeMap<&str, String> = BTreeMap::from([
        ("AWS_LAMBDA_FUNCTION_NAME", "lambda-test".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "ASIALAMBDATEST000000".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "lambda-test-secret".to_owned()),
        ("AWS_SESSION_TOKEN", "lambda-test-token".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.endpoint()),
        ("HOME", "/nonexistent".to_owned()),
    ]);
    for (name, value) in &lambda {
        std::env::set_var(name, value);
    }
    for (var, id) in &table_vars {
        std::env::set_var(var, &names[id]);
    }
    std::env::remove_var("AWS_DEFAULT_REGION");
    std::env::remove_var("CURSOR_SECRET");
    std::env::remove_var("MEMBER_POOL_ID");

    // The route it serves, with the key verified, and its data read from the endpoint the
    // variable names (the customer is only there).
    let (api, task) = start(functions::ME).await;
    api.init_done(WAIT).await.unwrap();
    let (_, answer) = api
        .call(event(Route::Me, &[], Some(&auth)), WAIT)
        .await
        .unwrap();
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["org"]["id"], "lambda", "{body}");
    assert_eq!(body["id"], issued.record.id.as_str(), "{body}");
    // A bad key is the envelope, not an invocation error.
    let (_, answer) = api
        .call(event(Route::Me, &[], Some("Bearer nope")), WAIT)
        .await
        .unwrap();
    let (status, body) = status_and_body(&answer);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    task.abort();

    // Another function in the same process state: the customer it reads exists only in
    // DynamoDB Local, so a 200 with its id shows the endpoint override and the
    // credentials were used.
    let created = {
        use shared::customers::input::CustomerInput;
        use shared::customers::model::{AddedVia, Customer};
        let input = CustomerInput::parse(
            json!({"fullName": "Lambda Test"}).as_object().unwrap(),
            time::now().date_naive(),
        )
        .unwrap();
        let customer = Customer::create(&input, AddedVia::Integration, time::now()).unwrap();
        app.customers
            .insert(&issued.record.org_id, &customer)
            .await
            .unwrap();
        customer.id.to_string()
    };
    let (api, task) = start(functions::GET_CUSTOMER).await;
    let (_, answer) = api
        .call(
            event(Route::GetCustomer, &[("id", &created)], Some(&auth)),
            WAIT,
        )
        .await
        .unwrap();
    let (status, body) = status_and_body(&answer);
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some(created.as_str())),
        "{body}"
    );
    task.abort();

    // A member route: the claims API Gateway's authorizer passes on, then the member record.
    let (api, task) = start(functions::ORG_ME).await;
    let me = as_member(event(Route::OrgMe, &[], None), &member.id);
    let (_, answer) = api.call(me, WAIT).await.unwrap();
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 200, "{body}");
    task.abort();

    // What a function refuses to start without, each named.
    let refusal = refuses_to_start(functions::LIST_CUSTOMERS).await;
    assert!(refusal.contains("CURSOR_SECRET"), "{refusal}");
    for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        std::env::remove_var(missing);
        let refusal = refuses_to_start(functions::GET_CUSTOMER).await;
        assert!(refusal.contains(missing), "{refusal}");
        std::env::set_var(missing, &lambda[missing]);
    }
    let table = shared::app::CUSTOMERS_TABLE_ENV;
    std::env::remove_var(table);
    let refusal = refuses_to_start(functions::GET_CUSTOMER).await;
    assert!(refusal.contains(table), "{refusal}");
}
