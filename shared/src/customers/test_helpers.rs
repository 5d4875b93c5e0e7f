//! Test mode's helpers: `POST /v1/test_helpers/customers/{id}/kyc` and `…/aml` move a test
//! customer through the same lifecycle state machine the back office uses, so an
//! integration can rehearse ingest → poll → VERIFIED + CLEAR with a test key alone. A live
//! key finds no such route (404): the helpers can never touch live data.

use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::App;
use crate::customers::api::{customer_id, json_object_body, update_one};
use crate::customers::lifecycle::{self, IllegalMove};
use crate::customers::model::{AmlCategory, AmlStatus, Customer, KycStatus};
use crate::error::ApiError;
use crate::keys::verify::Principal;
use crate::org::Mode;
use crate::query::QueryParams;
use crate::request::{RequestLog, RequestMeta};
use crate::time::Timestamp;

const KYC_STATUSES: &str = "NOT_STARTED, IN_PROGRESS, NEEDS_REVIEW, VERIFIED, REJECTED";
const AML_STATUSES: &str = "NOT_SCREENED, PENDING, CLEAR, POTENTIAL_MATCH, CONFIRMED_MATCH";
const AML_CATEGORIES: &str = "PEP, SANCTIONS, ADVERSE_MEDIA, WATCHLIST";

/// `POST /v1/test_helpers/customers/{id}/kyc {"status"}`.
pub async fn move_kyc(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let (id, body, object) = helper_request(req, principal, &["status"])?;
    let to: KycStatus = wire(&object, "status", KYC_STATUSES)?;
    apply(
        app,
        req,
        principal,
        meta,
        log,
        id,
        &body,
        move |customer, stamp| lifecycle::move_kyc(customer, to, stamp),
    )
    .await
}

/// `POST /v1/test_helpers/customers/{id}/aml {"status", "categories"?}`.
pub async fn move_aml(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let (id, body, object) = helper_request(req, principal, &["status", "categories"])?;
    let to: AmlStatus = wire(&object, "status", AML_STATUSES)?;
    let categories: Vec<AmlCategory> = match object.get("categories") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                serde_json::from_value(item.clone()).map_err(|_| {
                    ApiError::invalid_param(
                        "categories",
                        format!("categories are a list of {AML_CATEGORIES}."),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "categories",
                format!("categories are a list of {AML_CATEGORIES}."),
            ))
        }
    };
    apply(
        app,
        req,
        principal,
        meta,
        log,
        id,
        &body,
        move |customer, stamp| lifecycle::move_aml(customer, to, &categories, stamp),
    )
    .await
}

/// The customer id and the JSON body of a helper call, once the caller is a test key.
fn helper_request(
    req: &Request,
    principal: &Principal,
    fields: &[&str],
) -> Result<(uuid::Uuid, Value, Map<String, Value>), ApiError> {
    if principal.mode() != Mode::Test {
        // As if the route did not exist: live keys have no test helpers.
        return Err(ApiError::NotFound(
            "Test helpers answer test-mode keys (ic_test_…) only.".into(),
        ));
    }
    QueryParams::parse(req.uri().query(), &[])?;
    let id = customer_id(req)?;
    let (body, object) = json_object_body(req)?;
    if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::invalid_param(
            unknown,
            format!(
                "Unknown field {unknown}; this helper takes {}.",
                fields.join(", ")
            ),
        ));
    }
    Ok((id, body, object))
}

/// A required enum field in its wire spelling (`VERIFIED`).
fn wire<T: DeserializeOwned>(
    object: &Map<String, Value>,
    name: &str,
    allowed: &str,
) -> Result<T, ApiError> {
    let value = object.get(name).ok_or_else(|| {
        ApiError::invalid_param(name, format!("{name} is required: one of {allowed}."))
    })?;
    serde_json::from_value(value.clone())
        .map_err(|_| ApiError::invalid_param(name, format!("{name} must be one of {allowed}.")))
}

/// Moves the caller's test customer (under the request's Idempotency-Key, if any). An
/// illegal move is a 409 that changes nothing; categories that don't fit the status a 400.
#[allow(clippy::too_many_arguments)]
async fn apply(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
    id: uuid::Uuid,
    body: &Value,
    step: impl Fn(&mut Customer, Timestamp) -> Result<(), IllegalMove>,
) -> Result<Response<Body>, ApiError> {
    update_one(
        app,
        req,
        principal,
        meta,
        log,
        id,
        body,
        |customer, stamp| {
            step(customer, stamp)
                .map(|()| true)
                .map_err(|illegal| match illegal {
                    IllegalMove::Kyc { .. } | IllegalMove::Aml { .. } => {
                        ApiError::conflict(illegal.to_string())
                    }
                    IllegalMove::CategoriesRequired(_) | IllegalMove::CategoriesNotAllowed(_) => {
                        ApiError::invalid_param("categories", format!("{illegal}."))
                    }
                })
        },
    )
    .await
}
