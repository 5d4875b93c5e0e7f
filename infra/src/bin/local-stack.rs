//! `make run`: DynamoDB Local, the tables of template.yaml, a demo key, and the API on
//! 127.0.0.1:$PORT. Ctrl-C or SIGTERM stops everything it started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use infra::gateway::{serve, RouteTable};
use infra::identity::{
    add_member_with_password, member_pool, random_password, with_member_identity,
};
use infra::log_feed::{feed, tee};
use infra::provider_fakes::ProviderFakes;
use infra::secret_scanner::{KeyListServer, ScannerKey, SIGNING_KEY_ENV};
use infra::webhook_workers::WebhookWorkers;
use localdb::cognito_local::LOCAL_REGION;
use localdb::{kms_client, workspace_root, DynamoDbLocal, LocalKmsKey, Template};
use localdb::{CognitoLocal, PoolIds};
use shared::app::{TableNames, API_KEYS_TABLE_ENV, CUSTOMERS_TABLE_ENV, IDEMPOTENCY_TABLE_ENV};
use shared::audit::log::{AUDIT_EVENTS_TABLE_ENV, AUDIT_HEADS_TABLE_ENV};
use shared::audit::Author;
use shared::keys::scope::Scope;
use shared::keys::table::{NewApiKey, MAX_RATE_LIMIT_RPS};
use shared::members::pool::{MEMBER_POOL_CLIENT_ID_ENV, MEMBER_POOL_ID_ENV};
use shared::members::role::Role;
use shared::members::table::MEMBERS_TABLE_ENV;
use shared::org::OrgId;
use shared::providers::table::PROVIDER_KEYS_TABLE_ENV;
use shared::providers::vault::{Vault, PROVIDER_KEYS_KMS_KEY_ENV};
use shared::request_log::table::{RequestLogTable, REQUEST_LOG_TABLE_ENV};
use shared::secret_scanning::github_keys::{ScanningKeys, SECRET_SCANNING_KEYS_URL_ENV};
use shared::webhooks::delivery::WEBHOOK_DELIVERIES_TABLE_ENV;
use shared::webhooks::dispatch::Webhooks;
use shared::webhooks::table::WEBHOOK_ENDPOINTS_TABLE_ENV;
use shared::{time, App};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

const DEFAULT_PORT: u16 = 3000;
const DEFAULT_DYNAMODB_PORT: u16 = 8000;
const DEFAULT_COGNITO_PORT: u16 = 9229;
const DEMO_ORG: &str = "demo";
const DEMO_ADMIN: &str = "admin@demo.test";

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
    cognito: &CognitoLocal,
    pool: &PoolIds,
    tables: &TableNames,
    providers: &str,
) -> Result<(), String> {
    let text = format!(
        "# Written by `make run` for the API on 127.0.0.1:{api_port}. Use: set -a; . {path}; set +a\n\
         export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:{dynamodb_port}\n\
         export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER={cognito}\n\
         export AWS_ENDPOINT_URL_KMS={cognito}\n\
         export AWS_REGION={LOCAL_REGION}\n\
         export AWS_ACCESS_KEY_ID=local\n\
         export AWS_SECRET_ACCESS_KEY=local\n\
         export {API_KEYS_TABLE_ENV}={api_keys}\n\
         export {CUSTOMERS_TABLE_ENV}={customers}\n\
         export {IDEMPOTENCY_TABLE_ENV}={idempotency}\n\
         export {REQUEST_LOG_TABLE_ENV}={request_log}\n\
         export {MEMBERS_TABLE_ENV}={members}\n\
         export {PROVIDER_KEYS_TABLE_ENV}={provider_keys}\n\
         export {WEBHOOK_ENDPOINTS_TABLE_ENV}={webhook_endpoints}\n\
         export {WEBHOOK_DELIVERIES_TABLE_ENV}={webhook_deliveries}\n\
         export {AUDIT_EVENTS_TABLE_ENV}={audit_events}\n\
         export {AUDIT_HEADS_TABLE_ENV}={audit_heads}\n\
         export {MEMBER_POOL_ID_ENV}={pool_id}\n\
         export {MEMBER_POOL_CLIENT_ID_ENV}={client_id}\n\
         export IC_API_URL=http://127.0.0.1:{api_port}\n{providers}",
        path = path.display(),
        cognito = cognito.endpoint(),
        api_keys = tables.api_keys,
        customers = tables.customers,
        idempotency = tables.idempotency,
        request_log = tables.request_log,
        members = tables.members,
        provider_keys = tables.provider_keys,
        webhook_endpoints = tables.webhook_endpoints,
        webhook_deliveries = tables.webhook_deliveries,
        audit_events = tables.audit_events,
        audit_heads = tables.audit_heads,
        pool_id = pool.pool_id,
        client_id = pool.client_id,
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The provider-keys lines of `.local/env`: the KMS key and the providers' fake APIs.
fn providers_env(kms_key: &LocalKmsKey, fakes: &ProviderFakes) -> String {
    let mut lines = format!("export {PROVIDER_KEYS_KMS_KEY_ENV}={}\n", kms_key.arn);
    for (name, url) in fakes.env_vars() {
        lines.push_str(&format!("export {name}={url}\n"));
    }
    lines
}

fn table_names(
    template: &Template,
    created: &BTreeMap<String, String>,
) -> Result<TableNames, String> {
    let env = template.table_env_vars();
    TableNames::resolve(|var| env.get(var).and_then(|id| created.get(id)).cloned())
        .map_err(|var| format!("template.yaml has no table for {var}"))
}

async fn run(log_lines: UnboundedReceiver<String>) -> Result<(), String> {
    let port = port_from_env("PORT", DEFAULT_PORT)?;
    let dynamodb_port = port_from_env("DYNAMODB_PORT", DEFAULT_DYNAMODB_PORT)?;
    let cognito_port = port_from_env("COGNITO_PORT", DEFAULT_COGNITO_PORT)?;
    // Claim the API port first, so a clash is reported before anything starts.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e} (set PORT to use another port)")
    })?;
    let template = Template::load_default().map_err(|e| e.to_string())?;
    let routes = RouteTable::from_template(&template)?.with_docs(infra::docs_site::default_dir());

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
    // The request log, as the deployed subscription filters feed it.
    tokio::spawn(feed(
        log_lines,
        RequestLogTable::new(client.clone(), tables.request_log.clone())
            .signing_as(infra::log_feed::LOG_WRITER_FUNCTION),
    ));

    eprintln!("Starting the Cognito-API emulator on port {cognito_port}…");
    let cognito = tokio::task::spawn_blocking(move || CognitoLocal::start(cognito_port))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e} (set COGNITO_PORT to use another port)"))?;
    let pool = template
        .create_user_pool(&cognito.client(), "")
        .await
        .map_err(|e| e.to_string())?;
    let routes = with_member_identity(routes, &template, &cognito, &pool)?;
    // The same emulator holds the provider-keys KMS key of template.yaml; the providers'
    // APIs are local fakes that take any well-formed key (verify says "ok" here).
    let kms = kms_client(&cognito.endpoint());
    let kms_key = template
        .create_kms_key(&kms)
        .await
        .map_err(|e| e.to_string())?;
    let fakes = ProviderFakes::start_accepting_any()
        .await
        .map_err(|e| format!("the provider fakes: {e}"))?;
    let mut app = App::new(client.clone(), &tables)
        .with_pool(member_pool(&cognito, &pool))
        .with_vault(
            Vault::new(
                aws_sdk_kms::Client::from_conf(
                    kms.config()
                        .to_builder()
                        .timeout_config(shared::sdk::timeouts())
                        .build(),
                ),
                kms_key.arn.clone(),
            ),
            fakes.endpoints(),
        );
    // The local stack alone lets webhooks go to http and private addresses (a receiver on
    // localhost); a deployment never sets WEBHOOK_ALLOW_PRIVATE_TARGETS.
    app.webhook_targets.allow_private = true;
    // GitHub secret scanning: SECRET_SCANNING_KEYS_URL when set (App::new read it), else a
    // key list of this machine's own, whose private key `icadmin secret-scanning report`
    // signs with.
    let (scanning_env, _key_list) =
        if std::env::var(SECRET_SCANNING_KEYS_URL_ENV).is_ok_and(|url| !url.is_empty()) {
            (String::new(), None)
        } else {
            let key_path = local_dir.join("secret-scanning-key.pem");
            let key = ScannerKey::load_or_create(&key_path)?;
            let list = KeyListServer::start(vec![key])
                .await
                .map_err(|e| format!("the secret-scanning key list: {e}"))?;
            app.scanning_keys = ScanningKeys::at(&list.url())?;
            (
                format!(
                    "export {SIGNING_KEY_ENV}={}\nexport {SECRET_SCANNING_KEYS_URL_ENV}={}\n",
                    key_path.display(),
                    list.url()
                ),
                Some(list),
            )
        };
    let app = Arc::new(app);
    // Webhooks: the streams of DynamoDB Local feed the dispatcher; the retrier sweeps.
    let _webhook_workers = WebhookWorkers::start(
        app.clone(),
        Arc::new(Webhooks::new(&app)),
        &client,
        &dynamodb.endpoint(),
        &tables,
    )
    .await?;
    let admin_password = random_password()?;
    add_member_with_password(
        &app,
        &OrgId::parse(DEMO_ORG).map_err(|e| e.to_string())?,
        DEMO_ADMIN,
        Role::Administrator,
        &admin_password,
        "local-stack",
    )
    .await?;

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
    // Made by the stack as the operator tool would make it: its creation is the demo
    // org's first audit event.
    let demo = app
        .keys
        .issue_audited(&app.audit, &Author::operator("local-stack"), request, now)
        .await
        .map_err(|e| e.to_string())?;

    // .local/env is the newest stack's; .local/env.<PORT> stays with each running stack.
    for name in [format!("env.{port}"), "env".to_owned()] {
        env_file(
            &local_dir.join(name),
            port,
            dynamodb_port,
            &cognito,
            &pool,
            &tables,
            &format!("{}{scanning_env}", providers_env(&kms_key, &fakes)),
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
    println!("API key for org \"{DEMO_ORG}\" with scopes customers:write, customers:read, aml:read, webhooks:write (shown once):");
    println!("  {key}");
    println!();
    println!("Settings → Developers, the page (open it in a browser and sign in):");
    println!("  {base}/settings/developers");
    println!("Member {DEMO_ADMIN} (administrator of \"{DEMO_ORG}\"), password (this stack only):");
    println!("  {admin_password}");
    println!();
    println!(
        "The docs, whose examples run as pasted once your shell has (from the repository's root):"
    );
    println!("  {base}/docs/");
    println!("  export IC_API_URL={base}");
    println!("  export IC_ADMIN_PASSWORD='{admin_password}'");
    println!();
    println!("Try:");
    println!("  curl {base}/v1/customers -H \"Authorization: Bearer {key}\"");
    println!();
    println!("Sign in as that member and create a key (the member API):");
    println!("  set -a; . .local/env; set +a");
    println!("  TOKEN=$(./target/debug/icadmin members login --email {DEMO_ADMIN} --password '{admin_password}' --token-only)");
    println!("  curl -X POST {base}/v1/org/api-keys -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\");
    println!("    -d '{{\"label\": \"CRM sync\", \"scopes\": [\"customers:write\", \"customers:read\", \"aml:read\"]}}'");
    println!();
    println!(
        "Webhooks: this stack delivers events (a receiver on http://127.0.0.1 works here alone):"
    );
    println!("  curl -X POST {base}/v1/webhook_endpoints -H \"Authorization: Bearer {key}\" -H 'Content-Type: application/json' \\");
    println!("    -d '{{\"url\": \"http://127.0.0.1:8787/hooks\", \"events\": [\"customer.created\", \"customer.verified\"]}}'");
    println!();
    println!("Provider keys (the org's credentials for its data providers; sealed under the local KMS key):");
    println!("  curl -X POST {base}/v1/org/provider-keys -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\");
    println!("    -d '{{\"key_type\": \"O\", \"label\": \"Open Sanctions\", \"secret\": \"<your Open Sanctions key>\"}}'");
    println!("  (verify calls local fakes of the providers here, which take any key)");
    println!();
    println!("A leaked key revokes itself: GitHub secret scanning's report, signed with this machine's key:");
    println!("  set -a; . .local/env; set +a; ./target/debug/icadmin secret-scanning report --token <a key> --url https://github.com/acme/app/blob/main/.env");
    println!();
    println!("Operator tool against this stack (.local/env is the newest stack's; .local/env.{port} is this one's):");
    println!("  set -a; . .local/env; set +a; ./target/debug/icadmin keys list --org {DEMO_ORG}");
    println!();
    println!("Listening on {base} (Ctrl-C stops the API, DynamoDB Local and the Cognito emulator)");

    serve(listener, Arc::new(routes), app, shutdown_signal()).await;
    eprintln!("Stopping DynamoDB Local and the Cognito emulator…");
    drop(dynamodb);
    drop(cognito);
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
