//! `icadmin`: the operator tool. JSON on stdout, errors on stderr, non-zero exit on failure.
//! AWS settings come from the standard environment; `.local/env` points it at `make run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use shared::app::{dynamodb_client, API_KEYS_TABLE_ENV};
use shared::keys_table::{ApiKeysTable, NewApiKey};
use shared::org::OrgId;
use shared::time;

#[derive(Parser)]
#[command(
    name = "icadmin",
    about = "Operate the Instant Compliance integration API: API keys."
)]
struct Cli {
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
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a key. The plaintext is printed this once and never stored.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        label: String,
        /// customers:write, customers:read or aml:read; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// RFC 3339, in the future, e.g. 2027-06-30T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// A CIDR (or a single address) the key may be used from; repeat for several.
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
        /// Recorded as created_by; defaults to icadmin:$USER.
        #[arg(long)]
        created_by: Option<String>,
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

async fn keys_table() -> Result<ApiKeysTable, String> {
    let name = table_from_env(API_KEYS_TABLE_ENV)?;
    Ok(ApiKeysTable::new(dynamodb_client().await, name))
}

async fn run(cli: Cli) -> Result<Value, String> {
    let now = time::now();
    match cli.command {
        Command::Keys { command } => match command {
            KeysCommand::Create {
                org,
                label,
                scopes,
                expires_at,
                allow_ips,
                created_by,
            } => {
                let created_by = created_by.unwrap_or_else(|| {
                    format!(
                        "icadmin:{}",
                        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                    )
                });
                // Validate everything before touching AWS.
                let request = NewApiKey::parse(
                    &org,
                    &label,
                    &scopes,
                    expires_at.as_deref(),
                    &allow_ips,
                    &created_by,
                    now,
                )
                .map_err(|e| e.to_string())?;
                let issued = keys_table()
                    .await?
                    .issue(request, now)
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
            KeysCommand::Revoke { org, key_id } => {
                let org = OrgId::parse(&org).map_err(|e| e.to_string())?;
                let revoked = keys_table()
                    .await?
                    .revoke(&org, &key_id, now)
                    .await
                    .map_err(|e| e.to_string())?;
                revoked
                    .map(|k| k.to_public_json(now))
                    .ok_or_else(|| format!("org {org} has no key {key_id:?}; nothing was revoked"))
            }
        },
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("icadmin: {err}");
            ExitCode::FAILURE
        }
    }
}
