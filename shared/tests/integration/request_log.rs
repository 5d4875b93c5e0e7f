//! The request log: the functions' own log lines, as a CloudWatch Logs subscription event,
//! through the log writer's handler, into the table, and back out per key.

use serde_json::json;
use shared::keys::scope::Scope;
use shared::request_log::table::RequestLogTable;
use shared::request_log::writer::{handle, passes_filter, subscription_event};
use shared::time;

use crate::helpers::{logs, Req, TestEnv, LOG_WRITER};

/// The log lines of the requests whose ids are given, as CloudWatch Logs would forward
/// them through the template's filter.
fn forwarded(request_ids: &[String]) -> Vec<(i64, String)> {
    let text = logs().text();
    text.lines()
        .filter(|line| passes_filter(line))
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            request_ids.iter().any(|id| v["request_id"] == id.as_str())
        })
        .map(|line| (chrono::Utc::now().timestamp_millis(), line.to_owned()))
        .collect()
}

#[tokio::test]
async fn every_identified_request_is_recorded_for_its_key_and_nothing_else() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let reader = env.issue_key("acme", &[Scope::CustomersRead], &[]).await;
    let revoked = env.full_key("acme").await;
    env.app
        .keys
        .revoke(&revoked.record.org_id, &revoked.record.id, time::now())
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut send = |response: shared::edge::gateway_event::GatewayResponse| {
        ids.push(response.header("request-id").unwrap().to_owned());
        response
    };
    let body = json!({"fullName": "Jane", "externalId": "crm-log"}).to_string();
    let created = send(
        env.send(
            Req::json("POST", "/v1/customers", &body)
                .header("idempotency-key", "log-1")
                .replace_header("user-agent", "Zapier/1.0")
                .key(&key),
        )
        .await,
    );
    let customer_id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    send(
        env.send(
            Req::json("POST", "/v1/customers", &body)
                .header("idempotency-key", "log-1")
                .key(&key),
        )
        .await,
    );
    send(env.send(Req::get("/v1/customers").key(&key)).await);
    send(
        env.send(
            Req::get("/v1/customers")
                .key(&revoked)
                .source_ip("198.51.100.66"),
        )
        .await,
    );
    send(
        env.send(Req::json("POST", "/v1/customers", &body).key(&reader))
            .await,
    );
    let stranger = shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
    send(
        env.send(Req::get("/v1/customers").header(
            "authorization",
            &format!("Bearer {}", stranger.expose_secret()),
        ))
        .await,
    );

    let lines = forwarded(&ids);
    assert_eq!(
        lines.len(),
        5,
        "the unknown key's request identifies nobody"
    );
    // The writer signs as its function; the reading below is the test's own.
    let log_table = RequestLogTable::new(env.client.clone(), &env.request_log);
    let table = log_table.signing_as(LOG_WRITER);
    let event = subscription_event("/aws/lambda/tests", &lines).unwrap();
    assert_eq!(handle(&table, &event).await.unwrap(), 5);
    // At least once: the same event again changes nothing, and so does one that carries a
    // line twice (a batch naming one item twice would be refused whole).
    assert_eq!(handle(&table, &event).await.unwrap(), 5);
    let mut doubled = lines.clone();
    doubled.push(lines[0].clone());
    let doubled = subscription_event("/aws/lambda/tests", &doubled).unwrap();
    assert_eq!(handle(&table, &doubled).await.unwrap(), 6);
    assert_eq!(env.item_count(&env.request_log).await, 5);

    let org = shared::org::OrgId::parse("acme").unwrap();
    let records = log_table
        .for_key(&org, &key.record.id, None, 100)
        .await
        .unwrap();
    let shown: Vec<serde_json::Value> = records.iter().map(|r| r.to_json()).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    // Newest first: the list, the replay, the create.
    assert_eq!(shown[0]["route"], "GET /v1/customers");
    assert_eq!(shown[0]["customer_ids"], json!([customer_id]));
    assert_eq!(shown[1]["idempotent_replayed"], true);
    assert_eq!(shown[2]["method"], "POST");
    assert_eq!(shown[2]["path"], "/v1/customers");
    assert_eq!(shown[2]["status"], 201);
    assert_eq!(shown[2]["error_code"], serde_json::Value::Null);
    assert_eq!(shown[2]["user_agent"], "Zapier/1.0");
    assert_eq!(shown[2]["source_ip"], "198.51.100.10");
    assert_eq!(shown[2]["customer_ids"], json!([customer_id]));
    assert_eq!(shown[2]["id"], ids[0].as_str());
    assert_eq!(shown[2]["object"], "request");

    // Refusals are there too, under the key refused.
    let refused = log_table
        .for_key(&org, &revoked.record.id, None, 10)
        .await
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].status, refused[0].error_code.as_deref()),
        (401, Some("unauthorized"))
    );
    assert_eq!(refused[0].source_ip.as_deref(), Some("198.51.100.66"));
    let scope = log_table
        .for_key(&org, &reader.record.id, None, 10)
        .await
        .unwrap();
    assert_eq!(scope[0].error_code.as_deref(), Some("forbidden_scope"));
    // Another org asking for the same key id finds nothing.
    let other = shared::org::OrgId::parse("globex").unwrap();
    assert!(log_table
        .for_key(&other, &key.record.id, None, 10)
        .await
        .unwrap()
        .is_empty());
    // `since` bounds the walk.
    let since = records[0].at + chrono::Duration::milliseconds(1);
    assert!(log_table
        .for_key(&org, &key.record.id, Some(since), 10)
        .await
        .unwrap()
        .is_empty());

    // No key, hash or Authorization header reaches the table.
    let scan = env
        .client
        .scan()
        .table_name(&env.request_log)
        .send()
        .await
        .unwrap();
    let text = format!("{:?}", scan.items);
    for secret in [
        key.token.expose_secret(),
        revoked.token.expose_secret(),
        stranger.expose_secret(),
    ] {
        assert!(!text.contains(secret));
    }
    assert!(!text.contains(&hex::encode(key.token.hash().as_bytes())));
    assert!(!text.to_lowercase().contains("bearer"));
    assert!(
        text.contains("expires_at_epoch"),
        "each record carries its TTL"
    );
}

#[tokio::test]
async fn a_malformed_event_fails_the_invocation_so_lambda_retries_it() {
    let env = TestEnv::new().await;
    let table = RequestLogTable::new(env.client.clone(), &env.request_log).signing_as(LOG_WRITER);
    for bad in [json!({}), json!({"awslogs": {"data": "not base64!"}})] {
        assert!(handle(&table, &bad).await.is_err(), "{bad}");
    }
    assert_eq!(env.item_count(&env.request_log).await, 0);
}

#[test]
fn the_template_forwards_exactly_what_the_writer_keeps() {
    let template =
        std::fs::read_to_string(localdb::workspace_root().join("template.yaml")).unwrap();
    let patterns: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("FilterPattern: "))
        .collect();
    let keyed = shared::edge::routes::Route::ALL
        .iter()
        .filter(|r| r.takes_key())
        .count();
    assert_eq!(
        patterns.len(),
        keyed,
        "one subscription filter per keyed function"
    );
    for pattern in patterns {
        assert_eq!(
            pattern.trim_matches('\''),
            shared::request_log::writer::FILTER_PATTERN
        );
    }
}
