//! `make run`: DynamoDB Local, the tables of template.yaml, a demo key, and the API on
//! 127.0.0.1:$PORT. Ctrl-C or SIGTERM stops everything it started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use infra::gateway::{serve, RouteTable};
use infra::log_feed::{feed, tee};
use localdb::{workspace_root, DynamoDbLocal, Template};
use shared::app::{TableNames, API_KEYS_TABLE_ENV, CUSTOMERS_TABLE_ENV, IDEMPOTENCY_TABLE_ENV};
use shared::keys::scope::Scope;
use shared::keys::table::{NewApiKey, MAX_RATE_LIMIT_RPS};
use shared::request_log::table::{RequestLogTable, REQUEST_LOG_TABLE_ENV};
use shared::{time, App};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

const DEFAULT_PORT: u16 = 3000;
const DEFAULT_DYNAMODB_PORT: u16 = 8000;
const DEMO_ORG: &str = "demo";

fn port_from_env(name: &str, default: u16) -> Result<u16, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a port number")),
    }
}

async fn shutdown_signal() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn env_file(
    path: &Path,
    api_port: u16,
    dynamodb_port: u16,
    tables: &TableNames,
    request_log: &str,
) -> Result<(), String> {
    let text = format!(
        "# Written by `make run` for the API on 127.0.0.1:{api_port}. Use: set -a; . {}; set +a\n\
         export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:{dynamodb_port}\n\
         export AWS_REGION=us-east-1\n\
         export AWS_ACCESS_KEY_ID=local\n\
         export AWS_SECRET_ACCESS_KEY=local\n\
         export {API_KEYS_TABLE_ENV}={}\n\
         export {CUSTOMERS_TABLE_ENV}={}\n\
         export {IDEMPOTENCY_TABLE_ENV}={}\n\
         export {REQUEST_LOG_TABLE_ENV}={request_log}\n\
         export IC_API_URL=http://127.0.0.1:{api_port}\n",
        path.display(),
        tables.api_keys,
        tables.customers,
        tables.idempotency
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn table_names(
    template: &Template,
    created: &BTreeMap<String, String>,
) -> Result<TableNames, String> {
    let env = template.table_env_vars();
    let name = |var: &str| {
        env.get(var)
            .and_then(|id| created.get(id))
            .cloned()
            .ok_or_else(|| format!("template.yaml has no table for {var}"))
    };
    Ok(TableNames {
        api_keys: name(API_KEYS_TABLE_ENV)?,
        customers: name(CUSTOMERS_TABLE_ENV)?,
        idempotency: name(IDEMPOTENCY_TABLE_ENV)?,
    })
}

async fn run(log_lines: UnboundedReceiver<String>) -> Result<(), String> {
    let port = port_from_env("PORT", DEFAULT_PORT)?;
    let dynamodb_port = port_from_env("DYNAMODB_PORT", DEFAULT_DYNAMODB_PORT)?;
    // Claim the API port first, so a clash is reported before anything starts.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e} (set PORT to use another port)")
    })?;
    let template = Template::load_default().map_err(|e| e.to_string())?;
    let routes = RouteTable::from_template(&template)?;

    let local_dir: PathBuf = workspace_root().join(".local");
    std::fs::create_dir_all(&local_dir).map_err(|e| format!("{}: {e}", local_dir.display()))?;
    let log = local_dir.join(format!("dynamodb-{dynamodb_port}.log"));
    let log_for_java = log.clone();
    eprintln!("Starting DynamoDB Local on port {dynamodb_port}…");
    let dynamodb = tokio::task::spawn_blocking(move || {
        DynamoDbLocal::start(dynamodb_port, Some(&log_for_java))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;

    let client = shared::app::with_api_timeouts(&dynamodb.client());
    let created = template
        .create_tables(&client, "")
        .await
        .map_err(|e| e.to_string())?;
    let tables = table_names(&template, &created)?;
    let request_log = template
        .table_env_vars()
        .get(REQUEST_LOG_TABLE_ENV)
        .and_then(|id| created.get(id))
        .cloned()
        .ok_or_else(|| format!("template.yaml has no table for {REQUEST_LOG_TABLE_ENV}"))?;
    // The request log, as the deployed subscription filters feed it.
    tokio::spawn(feed(
        log_lines,
        RequestLogTable::new(client.clone(), request_log.clone()),
    ));
    let app = Arc::new(App::new(client, &tables));

    let now = time::now();
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let request = NewApiKey::parse(
        DEMO_ORG,
        "local demo key",
        &scopes,
        None,
        &[],
        "local-stack",
        now,
    )
    // The highest limit, so the bench and the end-to-end tests are not throttled; keys
    // made otherwise get the default (50/s).
    .and_then(|new| new.with_rate_limit(MAX_RATE_LIMIT_RPS))
    .map_err(|e| e.to_string())?;
    let demo = app
        .keys
        .issue(request, now)
        .await
        .map_err(|e| e.to_string())?;

    // .local/env is the newest stack's; .local/env.<PORT> stays with each running stack.
    for name in [format!("env.{port}"), "env".to_owned()] {
        env_file(
            &local_dir.join(name),
            port,
            dynamodb_port,
            &tables,
            &request_log,
        )?;
    }

    let base = format!("http://127.0.0.1:{port}");
    let key = demo.token.expose_secret();
    println!("Instant Compliance API (local) on {base}");
    println!(
        "DynamoDB Local on 127.0.0.1:{dynamodb_port}; tables from template.yaml: {}",
        created.values().cloned().collect::<Vec<_>>().join(", ")
    );
    println!();
    println!("API key for org \"{DEMO_ORG}\" with scopes customers:write, customers:read, aml:read (shown once):");
    println!("  {key}");
    println!();
    println!("Try:");
    println!("  curl {base}/v1/customers -H \"Authorization: Bearer {key}\"");
    println!();
    println!("Operator tool against this stack (.local/env is the newest stack's; .local/env.{port} is this one's):");
    println!("  set -a; . .local/env; set +a; ./target/debug/icadmin keys list --org {DEMO_ORG}");
    println!();
    println!("Listening on {base} (Ctrl-C stops the API and DynamoDB Local)");

    serve(listener, Arc::new(routes), app, shutdown_signal()).await;
    eprintln!("Stopping DynamoDB Local…");
    drop(dynamodb);
    // This stack's own files; .local/env may already belong to a newer stack, so it stays.
    let _ = std::fs::remove_file(local_dir.join(format!("env.{port}")));
    let _ = std::fs::remove_file(local_dir.join(format!("dynamodb-{dynamodb_port}.log")));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let (tee, log_lines) = tee();
    shared::edge::telemetry::init_with(tee);
    match run(log_lines).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}
