//! Form-encoded writes (`application/x-www-form-urlencoded`, what Zapier's webhook step sends
//! by default): the same names, validation, errors and idempotency as JSON.

use serde_json::{json, Value};

use crate::helpers::{assert_error, Req, TestEnv};

const FORM: &str = "application/x-www-form-urlencoded";

fn form(method: &str, path: &str, body: &[u8]) -> Req {
    Req::new(method, path)
        .header("content-type", FORM)
        .body(body)
}

fn json_of(response: &shared::edge::gateway_event::GatewayResponse) -> Value {
    response.json().unwrap()
}

#[tokio::test]
async fn a_form_creates_and_updates_as_its_json_twin_would() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let created = env
        .send(
            form(
                "POST",
                "/v1/customers",
                b"externalId=crm-7741&fullName=Jane+Doe&email=jane%40example.com&metadata[source]=hubspot&metadata[tier]=gold",
            )
            .key(&key),
        )
        .await;
    assert_eq!(created.status, 201);
    let customer = json_of(&created);
    assert_eq!(customer["external_id"], "crm-7741");
    assert_eq!(customer["full_name"], "Jane Doe");
    assert_eq!(customer["email"], "jane@example.com");
    assert_eq!(
        customer["metadata"],
        json!({"source": "hubspot", "tier": "gold"})
    );
    // The same contact again, as a form: the upsert by external id (200, same customer).
    let again = env
        .send(
            form(
                "POST",
                "/v1/customers",
                b"externalId=crm-7741&fullName=Jane+Doe&phone=%2B44+20+7946+0958",
            )
            .key(&key),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(json_of(&again)["id"], customer["id"]);
    assert_eq!(json_of(&again)["phone"], "+44 20 7946 0958");
    // An empty value is null: it clears an optional field.
    let id = customer["id"].as_str().unwrap();
    let patched = env
        .send(
            form(
                "PATCH",
                &format!("/v1/customers/{id}"),
                b"email=&fullName=J%C3%BCrgen+Doe",
            )
            .key(&key),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(json_of(&patched)["email"], Value::Null);
    assert_eq!(json_of(&patched)["full_name"], "Jürgen Doe");
}

#[tokio::test]
async fn a_form_and_its_json_twin_replay_each_other_under_one_idempotency_key() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    for (first_is_form, idem) in [(true, "twins-form-first"), (false, "twins-json-first")] {
        let form_req = form(
            "POST",
            "/v1/customers",
            format!("externalId={idem}&fullName=Jane+Doe&metadata[a]=1").as_bytes(),
        )
        .header("idempotency-key", idem)
        .key(&key);
        let json_req = Req::json(
            "POST",
            "/v1/customers",
            &json!({"externalId": idem, "fullName": "Jane Doe", "metadata": {"a": "1"}})
                .to_string(),
        )
        .header("idempotency-key", idem)
        .key(&key);
        let (first, second) = if first_is_form {
            (form_req, json_req)
        } else {
            (json_req, form_req)
        };
        let first = env.send(first).await;
        assert_eq!(first.status, 201);
        let second = env.send(second).await;
        assert_eq!(second.status, 201, "the twin is a replay, not an upsert");
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
        assert_eq!(second.body, first.body);
    }
    // A form that says something else under the same key is a reuse.
    let other = form(
        "POST",
        "/v1/customers",
        b"externalId=twins-form-first&fullName=Someone+Else",
    )
    .header("idempotency-key", "twins-form-first")
    .key(&key);
    assert_error(&env.send(other).await, 422, "idempotency_key_reused");
}

#[tokio::test]
async fn bad_forms_are_a_400_naming_the_field_and_write_nothing() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let mut many = String::from("fullName=Jane");
    for i in 0..21 {
        many.push_str(&format!("&metadata[k{i}]=v"));
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"fullName=Jane&fullName=Jim".to_vec(), "fullName"),
        (
            b"fullName=Jane&metadata[a]=1&metadata[a]=2".to_vec(),
            "metadata[a]",
        ),
        (many.into_bytes(), "metadata"),
        (b"fullName=Jane%2".to_vec(), "fullName"),
        (b"fullName=Jane%GG".to_vec(), "fullName"),
        (b"fullName=J\xe9r\xf4me".to_vec(), "fullName"),
        (b"fullName=J%E9r%F4me".to_vec(), "fullName"),
        (b"fullName=Jane&nickname=JJ".to_vec(), "nickname"),
        (b"fullName=Jane&full_name=Jane".to_vec(), "full_name"),
        (b"fullName=Jane&metadata=gold".to_vec(), "metadata"),
        (b"fullName=Jane&metadata[a][b]=1".to_vec(), "metadata[a][b]"),
        (b"fullName=Jane&email=not-an-email".to_vec(), "email"),
    ];
    for (body, param) in cases {
        let response = env
            .send(form("POST", "/v1/customers", &body).key(&key))
            .await;
        let error = assert_error(&response, 400, "invalid_request");
        assert_eq!(
            error["error"]["param"],
            param,
            "{}: {error}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(
        env.item_count(&env.tables.customers).await,
        0,
        "nothing written"
    );
    // A form in another charset, like JSON in one, is not read at all.
    let latin1 = form("POST", "/v1/customers", b"fullName=Jane")
        .replace_header(
            "content-type",
            "application/x-www-form-urlencoded; charset=iso-8859-1",
        )
        .key(&key);
    assert_error(&env.send(latin1).await, 415, "unsupported_media_type");
}
