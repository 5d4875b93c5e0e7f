//! The yardstick `make bench` compares first responses and sizes with: the smallest useful
//! SDK function, written the way the SDK's guides show it. `aws_config::load_from_env`, one
//! `GetItem` of `?pk=…&sk=…` in `CUSTOMERS_TABLE`, the item's attribute count as the body.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("CUSTOMERS_TABLE")?;
    lambda_http::run(service_fn(move |req: Request| {
        let client = client.clone();
        let table = table.clone();
        async move {
            let query = req.query_string_parameters();
            let key = |name: &str| AttributeValue::S(query.first(name).unwrap_or("").to_owned());
            let item = client
                .get_item()
                .table_name(table)
                .key("pk", key("pk"))
                .key("sk", key("sk"))
                .send()
                .await?
                .item;
            let (status, attributes) = match item {
                Some(item) => (200, item.len()),
                None => (404, 0),
            };
            Ok::<_, Error>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(format!("{{\"attributes\":{attributes}}}")))?,
            )
        }
    }))
    .await
}
