//! `icadmin`: the operator tool. JSON on stdout, errors on stderr, non-zero exit on failure.
//! AWS settings come from the standard environment; `--stack NAME` reads a deployed stack's
//! table names, pool and key from its outputs; `.local/env` points it at `make run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use infra::clock::{self, DateRecorder};
use infra::identity::add_member_with_password;
use serde_json::Value;
use shared::app::{API_KEYS_TABLE_ENV, CUSTOMERS_TABLE_ENV};
use shared::audit::log::{EventQuery, AUDIT_EVENTS_TABLE_ENV, AUDIT_HEADS_TABLE_ENV};
use shared::audit::{AuditLog, Author};
use shared::customers::lifecycle::{self, IllegalMove};
use shared::customers::model::{AmlCategory, AmlStatus, Customer, CustomerView, KycStatus};
use shared::customers::table::CustomersTable;
use shared::keys::table::{ApiKeysTable, NewApiKey};
use shared::members::api::{add_member, change_role, deactivate};
use shared::members::pool::{sign_in, MemberPool, MEMBER_POOL_CLIENT_ID_ENV, MEMBER_POOL_ID_ENV};
use shared::members::role::Role;
use shared::org::OrgId;
use shared::providers::api as providers_api;
use shared::providers::kind::KeyType;
use shared::providers::secret::ProviderSecret;
use shared::providers::table::{Edit, ProviderKey};
use shared::providers::vault::{Vault, PROVIDER_KEYS_KMS_KEY_ENV};
use shared::request_log::table::{RequestLogTable, REQUEST_LOG_TABLE_ENV};
use shared::time::{self, Timestamp};
use shared::{ApiError, App};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "icadmin",
    about = "Operate the Instant Compliance integration API: API keys, members, customers."
)]
struct Cli {
    /// A deployed stack (its name): its outputs name the tables, the pool and the
    /// provider-keys key, read with the project's SAM CLI (region: AWS_REGION).
    #[arg(long, global = true)]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue, list and revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Add members, sign in as one, list them, change roles, deactivate.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// The org's provider keys (its credentials for Chainalysis, TRM, Open Sanctions, ...):
    /// list, add, disable, enable, rotate, call summaries. Secrets are read from stdin, never
    /// from the command line, and never printed.
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },
    /// Move a customer through its compliance lifecycle (the back office's moves).
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// GitHub secret scanning, played locally: sign a report as GitHub would (with the key
    /// `make run` made) and send it to the local API.
    SecretScanning {
        #[command(subcommand)]
        command: SecretScanningCommand,
    },
    /// The org's audit trail: verify its hash chain, list its events.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A deployed stack's settings: `eval "$(icadmin stack env --stack NAME)"` sets
    /// API_URL, the table names, the pool and the key for a shell.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-compute the org's hash chain from its stored events and head; prints the verdict
    /// and names the first break (exit status 1 when there is one).
    Verify {
        #[arg(long)]
        org: String,
    },
    /// The org's most recent events, newest first (the API's objects, with their hashes).
    List {
        #[arg(long)]
        org: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum SecretScanningCommand {
    /// Report tokens as found in public: POST /v1/secret-scanning/github on IC_API_URL,
    /// signed with SECRET_SCANNING_SIGNING_KEY (both in .local/env); prints GitHub's
    /// feedback answer. Each of our keys reported is revoked at once.
    Report {
        /// A token found; repeat for several.
        #[arg(long = "token", required = true)]
        tokens: Vec<String>,
        /// Where it was found (a public URL).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum StackCommand {
    /// `export VAR='value'` lines, from the stack's outputs (needs --stack).
    Env,
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Move KYC status: NOT_STARTED, IN_PROGRESS, NEEDS_REVIEW, VERIFIED, REJECTED.
    Kyc {
        #[arg(long)]
        org: String,
        customer_id: String,
        status: String,
    },
    /// Move AML status: PENDING, CLEAR, POTENTIAL_MATCH, CONFIRMED_MATCH (with --category).
    Aml {
        #[arg(long)]
        org: String,
        customer_id: String,
        status: String,
        /// PEP, SANCTIONS, ADVERSE_MEDIA or WATCHLIST; repeat for several.
        #[arg(long = "category")]
        categories: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ProvidersCommand {
    /// Every provider key of the org, masked, disabled ones too.
    List {
        #[arg(long)]
        org: String,
    },
    /// Add a key: the secret is read from stdin (one line), sealed under the
    /// provider-keys KMS key (PROVIDER_KEYS_KMS_KEY), printed masked.
    Add {
        #[arg(long)]
        org: String,
        /// H Chainalysis, T TRM, O Open Sanctions, W World Check, C Castellum, A OpenAI,
        /// P Perplexity.
        #[arg(long)]
        key_type: String,
        #[arg(long)]
        label: String,
    },
    /// Retire a key: it is never used again; its history stays (there is no delete).
    Disable {
        #[arg(long)]
        org: String,
        provider_key_id: String,
    },
    /// Enable a disabled key again.
    Enable {
        #[arg(long)]
        org: String,
        provider_key_id: String,
    },
    /// Replace a key's secret (read from stdin): same id, same history.
    Rotate {
        #[arg(long)]
        org: String,
        provider_key_id: String,
    },
    /// Calls and errors per UTC day (default: the last 30 days).
    Summaries {
        #[arg(long)]
        org: String,
        provider_key_id: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        since: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Create the pool user and the member. With --password they can sign in with it at
    /// once; without, the pool emails them a temporary password.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// administrator, compliance_officer, developer or analyst.
        #[arg(long)]
        role: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Sign in (InitiateAuth, USER_PASSWORD_AUTH) and print the access token.
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// Print only the access token (for `TOKEN=$(…)`).
        #[arg(long)]
        token_only: bool,
    },
    /// Every member of the org, deactivated ones too.
    List {
        #[arg(long)]
        org: String,
    },
    /// Change a member's role; their keys lose the scopes the new role doesn't cover.
    SetRole {
        #[arg(long)]
        org: String,
        member_id: String,
        role: String,
    },
    /// Deactivate a member: their keys are revoked, or moved with --transfer-keys-to.
    Deactivate {
        #[arg(long)]
        org: String,
        member_id: String,
        #[arg(long)]
        transfer_keys_to: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a key. The plaintext is printed this once and never stored.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        label: String,
        /// customers:write, customers:read, aml:read or webhooks:write; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// RFC 3339, in the future, e.g. 2027-06-30T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// A CIDR (or a single address) the key may be used from; repeat for several.
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
        /// Requests per second the key may make, 1-1000 (default 50).
        #[arg(long)]
        rate_limit: Option<u32>,
        /// `live` (default) or `test`: a test key (`ic_test_…`) reaches only the org's
        /// test data.
        #[arg(long, default_value = "live", value_parser = ["live", "test"])]
        mode: String,
    },
    /// Every key of the org, revoked and expired ones too; never a hash or a plaintext.
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a key of the org. Immediate: its next request gets 401.
    Revoke {
        #[arg(long)]
        org: String,
        key_id: String,
    },
    /// The key's request log, newest first: every request in which it was identified,
    /// served or refused (kept 90 days).
    Requests {
        #[arg(long)]
        org: String,
        key_id: String,
        /// Only requests at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// At most this many records (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn table_from_env(var: &str) -> Result<String, String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            format!(
                "{var} is not set (the table name: a stack output, or `. .local/env` for make run)"
            )
        })
}

/// The operator's AWS settings: the full default chain (profiles, SSO, a role), unlike the
/// functions, which take Lambda's variables directly (`shared::sdk`).
async fn operator_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(shared::sdk::timeouts())
        .load()
        .await
}

async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&operator_config().await)
}

async fn cognito_client() -> aws_sdk_cognitoidentityprovider::Client {
    aws_sdk_cognitoidentityprovider::Client::new(&operator_config().await)
}

async fn keys_table() -> Result<ApiKeysTable, String> {
    let name = table_from_env(API_KEYS_TABLE_ENV)?;
    Ok(ApiKeysTable::new(dynamodb_client().await, name))
}

/// The org's audit trail: every change the tool makes commits its event there.
async fn audit_log() -> Result<AuditLog, String> {
    Ok(AuditLog::new(
        dynamodb_client().await,
        table_from_env(AUDIT_EVENTS_TABLE_ENV)?,
        table_from_env(AUDIT_HEADS_TABLE_ENV)?,
    ))
}

/// The customers table, through a client that records each response's `Date`.
async fn customers_table(recorder: &DateRecorder) -> Result<CustomersTable, String> {
    let name = table_from_env(CUSTOMERS_TABLE_ENV)?;
    let client = dynamodb_client().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build(),
    );
    Ok(CustomersTable::new(client, name))
}

fn parse_wire<T: std::str::FromStr>(what: &str, text: &str, valid: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("unknown {what} {text:?}; one of {valid}"))
}

/// Applies one lifecycle move with the same read-modify-write the API uses for writes,
/// once this machine's clock is shown to be within a second of AWS's: the move stamps
/// `updated_at` with it.
async fn move_customer(
    org: &str,
    customer_id: &str,
    apply: impl Fn(&mut Customer, Timestamp) -> Result<(), IllegalMove>,
) -> Result<Value, String> {
    let org = OrgId::parse(org).map_err(|e| e.to_string())?;
    let id = Uuid::parse_str(customer_id)
        .map_err(|_| format!("{customer_id:?} is not a customer id (a UUID)"))?;
    let recorder = DateRecorder::default();
    let table = customers_table(&recorder).await?;
    clock::check_skew(&recorder, || async {
        table
            .get(&org, &id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    let change = table
        .update(&org, &id, |customer, stamp| {
            apply(customer, stamp)
                .map(|()| true)
                .map_err(|e| ApiError::invalid(e.to_string()))
        })
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("org {org} has no customer {id}"))?;
    Ok(CustomerView::FULL.render(change.customer()))
}

/// Who is running the tool, for `created_by`: the AWS principal's ARN from STS
/// GetCallerIdentity, which no flag can set. Against a local stack (DynamoDB on loopback,
/// no STS) it is `local:` and the login name.
async fn operator_identity() -> Result<String, String> {
    let local = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok_and(|url| {
        ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| url.starts_with(prefix))
    });
    if local && std::env::var_os("AWS_ENDPOINT_URL_STS").is_none() {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "operator".into());
        return Ok(format!("local:{user}"));
    }
    let identity = aws_sdk_sts::Client::new(&operator_config().await)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot establish who you are (STS GetCallerIdentity failed: {}); \
                 created_by must name the AWS principal, so no key was created",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
    identity
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| "STS GetCallerIdentity returned no ARN; no key was created".into())
}

/// The API's own state for member commands: the tables and the user pool, from the
/// environment (a stack's outputs, or `.local/env`).
async fn member_app() -> Result<App, String> {
    let mut app = App::from_env_with(dynamodb_client().await)?;
    if let Some(pool_id) = std::env::var(MEMBER_POOL_ID_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        app = app.with_pool(MemberPool::new(cognito_client().await, pool_id));
    }
    if app.pool.is_none() {
        return Err(format!(
            "{MEMBER_POOL_ID_ENV} is not set (the MemberPoolId stack output, or `. .local/env`)"
        ));
    }
    Ok(app)
}

/// The provider-keys vault for operators: KMS from the operator's settings, the key from
/// `PROVIDER_KEYS_KMS_KEY` (the ProviderKeysKeyArn stack output, or `. .local/env`). The key
/// policy lets an operator seal (add, rotate), never open.
async fn operator_vault() -> Result<Vault, String> {
    let key = std::env::var(PROVIDER_KEYS_KMS_KEY_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            format!("{PROVIDER_KEYS_KMS_KEY_ENV} is not set (the ProviderKeysKeyArn stack output, or `. .local/env`)")
        })?;
    Ok(Vault::new(
        aws_sdk_kms::Client::new(&operator_config().await),
        key,
    ))
}

/// One line of stdin: a secret, so that it is in no shell history or process list.
fn secret_from_stdin(key_type: KeyType) -> Result<ProviderSecret, String> {
    let typed = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if typed {
        eprintln!("Paste the {} secret and press Enter:", key_type.provider());
    }
    // The line is the secret: every copy here is wiped when dropped.
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the secret from stdin: {e}"))?;
    let text = line.strip_suffix('\n').unwrap_or(&line);
    let text = text.strip_suffix('\r').unwrap_or(text);
    // A piped secret is one line: more after it is a paste gone wrong, refused rather than
    // cut. (Typed, the line ends at Enter.)
    let mut rest = zeroize::Zeroizing::new(String::new());
    if !typed {
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest)
            .map_err(|e| format!("reading the secret from stdin: {e}"))?;
    }
    if !rest.trim().is_empty() {
        return Err(
            "stdin holds more than one line: a secret is one line. Nothing was stored.".into(),
        );
    }
    providers_api::parse_secret_text(text, key_type).map_err(api_error)
}

fn parse_day(flag: &str, text: Option<String>) -> Result<Option<chrono::NaiveDate>, String> {
    text.map(|t| {
        chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d")
            .map_err(|_| format!("--{flag} {t:?} is not a date (YYYY-MM-DD)"))
    })
    .transpose()
}

async fn providers(command: ProvidersCommand) -> Result<Value, String> {
    let app = App::from_env_with(dynamodb_client().await)?;
    let org_of = |org: &str| OrgId::parse(org).map_err(|e| e.to_string());
    let key = |k: ProviderKey| k.to_json();
    match command {
        ProvidersCommand::List { org } => {
            let mut keys = app
                .provider_keys
                .list(&org_of(&org)?)
                .await
                .map_err(|e| e.to_string())?;
            // Newest first, as the member API lists them.
            keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            Ok(Value::Array(keys.into_iter().map(key).collect()))
        }
        ProvidersCommand::Add {
            org,
            key_type,
            label,
        } => {
            let org = org_of(&org)?;
            let key_type =
                providers_api::parse_key_type(Some(&Value::String(key_type))).map_err(api_error)?;
            let label =
                shared::members::api::parse_label(&Value::String(label)).map_err(api_error)?;
            let secret = secret_from_stdin(key_type)?;
            let vault = operator_vault().await?;
            let by = providers_api::Actor::operator(&operator_identity().await?);
            providers_api::add_key(&app, &vault, &org, key_type, label, &secret, &by)
                .await
                .map(key)
                .map_err(api_error)
        }
        ProvidersCommand::Disable {
            org,
            provider_key_id,
        } => set_enabled(&app, &org_of(&org)?, &provider_key_id, false).await,
        ProvidersCommand::Enable {
            org,
            provider_key_id,
        } => set_enabled(&app, &org_of(&org)?, &provider_key_id, true).await,
        ProvidersCommand::Rotate {
            org,
            provider_key_id,
        } => {
            let org = org_of(&org)?;
            let mut current = app
                .provider_keys
                .get(&org, &provider_key_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("org {org} has no provider key {provider_key_id:?}"))?;
            let secret = secret_from_stdin(current.key_type)?;
            let vault = operator_vault().await?;
            let by = providers_api::Actor::operator(&operator_identity().await?);
            providers_api::rotate_to(&app, &vault, &mut current, &secret, &by)
                .await
                .map(key)
                .map_err(api_error)
        }
        ProvidersCommand::Summaries {
            org,
            provider_key_id,
            since,
            until,
        } => {
            let org = org_of(&org)?;
            let until = parse_day("until", until)?.unwrap_or_else(|| time::now().date_naive());
            let since = parse_day("since", since)?.unwrap_or_else(|| {
                until - chrono::Duration::days(providers_api::DEFAULT_SUMMARY_DAYS - 1)
            });
            if since > until || (until - since).num_days() >= providers_api::MAX_SUMMARY_DAYS {
                return Err(format!(
                    "--since must be on or before --until, at most {} days apart",
                    providers_api::MAX_SUMMARY_DAYS
                ));
            }
            let days = app
                .provider_keys
                .summaries(&org, &provider_key_id, since, until)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("org {org} has no provider key {provider_key_id:?}"))?;
            Ok(Value::Array(days.iter().map(|d| d.to_json()).collect()))
        }
    }
}

async fn set_enabled(app: &App, org: &OrgId, id: &str, enabled: bool) -> Result<Value, String> {
    let edit = Edit {
        label: None,
        enabled: Some(enabled),
    };
    let by = providers_api::Actor::operator(&operator_identity().await?);
    match providers_api::edit_key(app, org, id, &edit, &by).await {
        Ok(key) => Ok(key.to_json()),
        Err(ApiError::NotFound(_)) => Err(format!("org {org} has no provider key {id:?}")),
        Err(err) => Err(api_error(err)),
    }
}

fn api_error(err: ApiError) -> String {
    match err.param() {
        Some(param) => format!("{err} ({param})"),
        None => err.to_string(),
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|e| e.to_string())
}

async fn members(command: MembersCommand) -> Result<Value, String> {
    match command {
        MembersCommand::Add {
            org,
            email,
            role,
            password,
        } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            let role = parse_role(&role)?;
            let email = email.trim().to_lowercase();
            let app = member_app().await?;
            let by = operator_identity().await?;
            let member = match password {
                Some(password) => {
                    add_member_with_password(&app, &org, &email, role, &password, &by).await?
                }
                None => add_member(&app, &Author::operator(&by), &org, &email, role, &by, None)
                    .await
                    .map_err(api_error)?,
            };
            Ok(member.to_json())
        }
        MembersCommand::Login {
            email,
            password,
            token_only,
        } => {
            let client_id = std::env::var(MEMBER_POOL_CLIENT_ID_ENV)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("{MEMBER_POOL_CLIENT_ID_ENV} is not set (the MemberPoolClientId stack output, or `. .local/env`)")
                })?;
            let tokens = sign_in(&cognito_client().await, &client_id, &email, &password)
                .await
                .map_err(|e| e.to_string())?;
            if token_only {
                return Ok(Value::String(tokens.access_token));
            }
            Ok(serde_json::json!({
                "access_token": tokens.access_token,
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
            }))
        }
        MembersCommand::List { org } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            let app = App::from_env_with(dynamodb_client().await)?;
            let members = app.members.list(&org).await.map_err(|e| e.to_string())?;
            Ok(Value::Array(members.iter().map(|m| m.to_json()).collect()))
        }
        MembersCommand::SetRole {
            org,
            member_id,
            role,
        } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            let role = parse_role(&role)?;
            let app = App::from_env_with(dynamodb_client().await)?;
            let by = operator_identity().await?;
            let member = change_role(&app, &Author::operator(&by), &org, &member_id, role)
                .await
                .map_err(api_error)?;
            Ok(member.to_json())
        }
        MembersCommand::Deactivate {
            org,
            member_id,
            transfer_keys_to,
        } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            let app = member_app().await?;
            let by = operator_identity().await?;
            let author = Author::operator(&by);
            let done = deactivate(
                &app,
                &author,
                &org,
                &member_id,
                transfer_keys_to.as_deref(),
                &by,
            )
            .await
            .map_err(api_error)?;
            let mut body = done.member.to_json();
            body["keys_revoked"] = serde_json::json!(done.keys_revoked);
            body["keys_transferred"] = serde_json::json!(done.keys_transferred);
            Ok(body)
        }
    }
}

async fn run(cli: Cli) -> Result<Value, String> {
    let now = time::now();
    match cli.command {
        Command::Stack {
            command: StackCommand::Env,
        } => {
            let name = cli
                .stack
                .as_deref()
                .ok_or("stack env needs --stack NAME (the deployed stack)")?;
            Ok(Value::String(infra::stack::exports(&infra::stack::read(
                name,
            )?)))
        }
        Command::SecretScanning {
            command: SecretScanningCommand::Report { tokens, url },
        } => report_leaks(&tokens, url.as_deref()).await,
        Command::Members { command } => members(command).await,
        Command::Audit { command } => audit(command, now).await,
        Command::Providers { command } => providers(command).await,
        Command::Keys { command } => match command {
            KeysCommand::Create {
                org,
                label,
                scopes,
                expires_at,
                allow_ips,
                rate_limit,
                mode,
            } => {
                // Validate everything before touching AWS; the creator is who STS says.
                let mut request = NewApiKey::parse(
                    &org,
                    &label,
                    &scopes,
                    expires_at.as_deref(),
                    &allow_ips,
                    "",
                    now,
                )
                .and_then(|new| match rate_limit {
                    Some(rps) => new.with_rate_limit(rps),
                    None => Ok(new),
                })
                .map_err(|e| e.to_string())?
                .with_mode(shared::org::Mode::parse(&mode).unwrap_or_default());
                request.created_by = operator_identity().await?;
                let author = Author::operator(&request.created_by);
                let issued = keys_table()
                    .await?
                    .issue_audited(&audit_log().await?, &author, request, now)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(issued.to_json(now))
            }
            KeysCommand::List { org } => {
                let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
                let keys = keys_table()
                    .await?
                    .list_for_org(&org)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Value::Array(
                    keys.iter().map(|k| k.to_public_json(now)).collect(),
                ))
            }
            KeysCommand::Requests {
                org,
                key_id,
                since,
                limit,
            } => {
                let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
                let since = since
                    .map(|text| {
                        time::parse(&text)
                            .ok_or_else(|| format!("--since {text:?} is not an RFC 3339 time"))
                    })
                    .transpose()?;
                if !(1..=1000).contains(&limit) {
                    return Err("--limit must be 1-1000".into());
                }
                let name = table_from_env(REQUEST_LOG_TABLE_ENV)?;
                let table = RequestLogTable::new(dynamodb_client().await, name);
                let records = table
                    .for_key(&org, &key_id, since, limit)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Value::Array(records.iter().map(|r| r.to_json()).collect()))
            }
            KeysCommand::Revoke { org, key_id } => {
                let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
                let by = operator_identity().await?;
                let keys = keys_table().await?;
                let key = keys
                    .find_by_id(&org, &key_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!("org {org} has no key {key_id:?}; nothing was revoked")
                    })?;
                let revoked = keys
                    .revoke_audited(&audit_log().await?, &Author::operator(&by), &key, &by, now)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(revoked.to_public_json(now))
            }
        },
        Command::Customers { command } => match command {
            CustomersCommand::Kyc {
                org,
                customer_id,
                status,
            } => {
                let to: KycStatus = parse_wire(
                    "KYC status",
                    &status,
                    "NOT_STARTED, IN_PROGRESS, NEEDS_REVIEW, VERIFIED, REJECTED",
                )?;
                move_customer(&org, &customer_id, |c, stamp| {
                    lifecycle::move_kyc(c, to, stamp)
                })
                .await
            }
            CustomersCommand::Aml {
                org,
                customer_id,
                status,
                categories,
            } => {
                let to: AmlStatus = parse_wire(
                    "AML status",
                    &status,
                    "NOT_SCREENED, PENDING, CLEAR, POTENTIAL_MATCH, CONFIRMED_MATCH",
                )?;
                let categories = categories
                    .iter()
                    .map(|c| {
                        parse_wire(
                            "AML category",
                            c,
                            "PEP, SANCTIONS, ADVERSE_MEDIA, WATCHLIST",
                        )
                    })
                    .collect::<Result<Vec<AmlCategory>, _>>()?;
                move_customer(&org, &customer_id, |c, stamp| {
                    lifecycle::move_aml(c, to, &categories, stamp)
                })
                .await
            }
        },
    }
}

/// `audit verify` and `audit list`.
async fn audit(command: AuditCommand, now: Timestamp) -> Result<Value, String> {
    match command {
        AuditCommand::Verify { org } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            let verdict = audit_log()
                .await?
                .verify(&org, now)
                .await
                .map_err(|e| e.to_string())?;
            match &verdict.first_break {
                None => Ok(verdict.to_json()),
                Some(found) => Err(format!(
                    "the audit chain of {org} breaks at event {}{}: {}\n{}",
                    found.seq,
                    found
                        .id
                        .as_deref()
                        .map(|id| format!(" ({id})"))
                        .unwrap_or_default(),
                    found.why,
                    verdict.to_json()
                )),
            }
        }
        AuditCommand::List { org, limit } => {
            let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
            if !(1..=1000).contains(&limit) {
                return Err("--limit must be 1-1000".into());
            }
            let (events, _) = audit_log()
                .await?
                .list(&org, &EventQuery::default(), limit)
                .await
                .map_err(|e| e.to_string())?;
            events
                .iter()
                .map(|e| e.public_json().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

/// `secret-scanning report`: the signed report, sent; GitHub's answer back.
async fn report_leaks(tokens: &[String], url: Option<&str>) -> Result<Value, String> {
    use infra::secret_scanner::{report, ScannerKey, SIGNING_KEY_ENV};
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is not set (`. .local/env` after make run)"))
    };
    let key_path = var(SIGNING_KEY_ENV)?;
    let pem = std::fs::read_to_string(&key_path).map_err(|e| format!("{key_path}: {e}"))?;
    let key = ScannerKey::from_pem(&pem).map_err(|e| format!("{key_path}: {e}"))?;
    let api = var("IC_API_URL")?;
    let entries: Vec<(&str, Option<&str>)> = tokens.iter().map(|t| (t.as_str(), url)).collect();
    let body = report(&entries);
    let endpoint = format!("{}/v1/secret-scanning/github", api.trim_end_matches('/'));
    tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(&endpoint);
        for (name, value) in key.headers(&body) {
            request = request.header(name, value);
        }
        let mut response = request
            .send(&body[..])
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("POST {endpoint}: {status}, not JSON: {e}"))?;
        if status == 200 {
            Ok(answer)
        } else {
            Err(format!("POST {endpoint}: {status} {answer}"))
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The stack's settings become the environment every command reads, before any thread
    // exists (no table name copied by hand).
    if let (Some(name), false) = (&cli.stack, matches!(cli.command, Command::Stack { .. })) {
        match infra::stack::read(name) {
            Ok(vars) => {
                for (var, value) in vars {
                    std::env::set_var(var, value);
                }
            }
            Err(err) => {
                eprintln!("icadmin: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("icadmin: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Value::String(text)) => emit(&text),
        Ok(output) => {
            emit(&serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string()))
        }
        Err(err) => {
            eprintln!("icadmin: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the answer to stdout. A reader that went away (`icadmin … | head`) ends the
/// tool quietly, as it would any Unix tool; any other write failure is reported.
fn emit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("icadmin: cannot write the answer: {err}");
            ExitCode::FAILURE
        }
    }
}
