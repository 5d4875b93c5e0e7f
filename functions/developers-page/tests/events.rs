//! The page's sample events (`events/developers-page*.json`) through its handler, as
//! `sam local invoke DevelopersPageFunction -e …` would, without Docker.

use std::sync::Arc;

use developers_page::{serve, PageConfig};
use serde_json::Value;
use shared::edge::gateway_event::{invoke_with, Context, GatewayResponse};

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn text(response: &GatewayResponse) -> String {
    String::from_utf8(response.body.clone()).unwrap()
}

async fn answer(event: Value) -> GatewayResponse {
    let config = Arc::new(
        PageConfig::new(
            "sampleclientid",
            "https://cognito-idp.eu-west-1.amazonaws.com/",
        )
        .unwrap(),
    );
    let response = invoke_with(
        move |req| serve(config.clone(), req),
        event,
        Context::default(),
    )
    .await;
    GatewayResponse::from_event(&response).expect("a v2 response event")
}

#[tokio::test]
async fn the_page_event_is_answered_with_the_page_and_its_policy() {
    let event = load("developers-page.json");
    let response = answer(event.clone()).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        response.header("request-id"),
        event["requestContext"]["requestId"].as_str()
    );
    let csp = response.header("content-security-policy").unwrap();
    assert!(
        csp.contains("connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com;"),
        "{csp}"
    );
    assert!(text(&response).contains("content=\"sampleclientid\""));
    assert!(text(&response).contains("content=\"https://cognito-idp.eu-west-1.amazonaws.com/\""));
    assert!(
        !text(&response).contains("{{"),
        "every placeholder is filled"
    );
}

#[tokio::test]
async fn the_asset_event_is_answered_with_the_module() {
    let response = answer(load("developers-page-asset.json")).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(text(&response).contains("export async function renderKeys"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn an_unknown_asset_is_a_404_envelope() {
    let mut event = load("developers-page-asset.json");
    event["rawPath"] = "/settings/developers/..%2F..%2Fetc%2Fpasswd".into();
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event["pathParameters"]["asset"] = "..%2F..%2Fetc%2Fpasswd".into();
    let response = answer(event).await;
    assert_eq!(response.status, 404);
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
