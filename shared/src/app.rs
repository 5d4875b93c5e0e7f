//! The state a function builds once per cold start: the DynamoDB client and its tables.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

use crate::audit::log::{AuditLog, AUDIT_EVENTS_TABLE_ENV, AUDIT_HEADS_TABLE_ENV};
use crate::customers::cursor::{CursorKey, CURSOR_SECRET_ENV};
use crate::customers::table::CustomersTable;
use crate::error::ApiError;
use crate::idempotency::table::IdempotencyTable;
use crate::keys::facts::{KeyFacts, SpeculationStats};
use crate::keys::table::ApiKeysTable;
use crate::members::pool::MemberPool;
use crate::members::table::{MembersTable, MEMBERS_TABLE_ENV};
use crate::providers::client::{ProviderClient, ProviderEndpoints};
use crate::providers::table::{ProviderKeysTable, PROVIDER_KEYS_TABLE_ENV};
use crate::providers::vault::Vault;
use crate::request_log::table::{RequestLogTable, REQUEST_LOG_TABLE_ENV};
use crate::sdk::{self, LambdaSettings};
use crate::secret_scanning::github_keys::{ScanningKeys, GITHUB_KEYS_URL};
use crate::webhooks::delivery::{WebhookDeliveriesTable, WEBHOOK_DELIVERIES_TABLE_ENV};
use crate::webhooks::table::{WebhookEndpointsTable, WEBHOOK_ENDPOINTS_TABLE_ENV};
use crate::webhooks::target::TargetGuard;

pub const API_KEYS_TABLE_ENV: &str = "API_KEYS_TABLE";
pub const CUSTOMERS_TABLE_ENV: &str = "CUSTOMERS_TABLE";
pub const IDEMPOTENCY_TABLE_ENV: &str = "IDEMPOTENCY_TABLE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub api_keys: String,
    pub customers: String,
    pub idempotency: String,
    pub members: String,
    pub request_log: String,
    pub webhook_endpoints: String,
    pub webhook_deliveries: String,
    pub provider_keys: String,
    pub audit_events: String,
    pub audit_heads: String,
}

impl TableNames {
    pub fn from_env() -> Result<Self, String> {
        Self::resolve(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .map_err(|name| format!("environment variable {name} is not set"))
    }

    /// Each table's name from `lookup` of its environment variable; `Err` names the
    /// variable that has none.
    pub fn resolve(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| lookup(name).ok_or_else(|| name.to_owned());
        Ok(Self {
            api_keys: var(API_KEYS_TABLE_ENV)?,
            customers: var(CUSTOMERS_TABLE_ENV)?,
            idempotency: var(IDEMPOTENCY_TABLE_ENV)?,
            members: var(MEMBERS_TABLE_ENV)?,
            request_log: var(REQUEST_LOG_TABLE_ENV)?,
            webhook_endpoints: var(WEBHOOK_ENDPOINTS_TABLE_ENV)?,
            webhook_deliveries: var(WEBHOOK_DELIVERIES_TABLE_ENV)?,
            provider_keys: var(PROVIDER_KEYS_TABLE_ENV)?,
            audit_events: var(AUDIT_EVENTS_TABLE_ENV)?,
            audit_heads: var(AUDIT_HEADS_TABLE_ENV)?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct App {
    pub keys: ApiKeysTable,
    pub customers: CustomersTable,
    pub idempotency: IdempotencyTable,
    pub members: MembersTable,
    pub request_log: RequestLogTable,
    pub webhook_endpoints: WebhookEndpointsTable,
    pub webhook_deliveries: WebhookDeliveriesTable,
    pub provider_keys: ProviderKeysTable,
    /// The org's audit trail: every control-plane change commits its event through it.
    pub audit: AuditLog,
    /// Where webhooks may go: public https targets (the local stack also allows private).
    pub webhook_targets: TargetGuard,
    /// The org's user pool: only the functions that invite or deactivate members need it.
    pub pool: Option<MemberPool>,
    /// The secret listing cursors are authenticated with; only the listing needs it.
    pub cursor_key: Option<CursorKey>,
    /// KMS, for the functions that seal provider secrets (create, rotate) and open them
    /// (the provider client); the others never build its client.
    pub vault: Option<Vault>,
    /// Every outbound call to a provider; only the functions that call providers have it.
    pub providers: Option<ProviderClient>,
    /// GitHub's secret-scanning public keys (fetched on the first report, then cached).
    pub scanning_keys: ScanningKeys,
    /// The instance's memory of keys' data spaces, and what its warm reads did with it.
    pub key_facts: Arc<KeyFacts>,
    pub speculation: Arc<SpeculationStats>,
}

impl App {
    /// The tables, and a random cursor secret (a local stack's or a test's: its cursors
    /// live as long as the process).
    pub fn new(client: Client, tables: &TableNames) -> Self {
        Self {
            keys: ApiKeysTable::new(client.clone(), &tables.api_keys),
            customers: CustomersTable::new(client.clone(), &tables.customers),
            idempotency: IdempotencyTable::new(client.clone(), &tables.idempotency),
            members: MembersTable::new(client.clone(), &tables.members),
            request_log: RequestLogTable::new(client.clone(), &tables.request_log),
            webhook_endpoints: WebhookEndpointsTable::new(
                client.clone(),
                &tables.webhook_endpoints,
            ),
            webhook_deliveries: WebhookDeliveriesTable::new(
                client.clone(),
                &tables.webhook_deliveries,
            ),
            provider_keys: ProviderKeysTable::new(client.clone(), &tables.provider_keys),
            audit: AuditLog::new(client, &tables.audit_events, &tables.audit_heads),
            webhook_targets: TargetGuard::from_env(),
            scanning_keys: ScanningKeys::from_env().unwrap_or_else(|why| {
                tracing::error!(error = %why, "secret-scanning keys: GitHub's list is used");
                ScanningKeys::at(GITHUB_KEYS_URL).expect("GitHub's URL")
            }),
            key_facts: Arc::default(),
            speculation: Arc::default(),
            pool: None,
            cursor_key: CursorKey::random().ok(),
            vault: None,
            providers: None,
        }
    }

    /// A function's state, from the variables Lambda sets (`sdk`): the tables, the cursor
    /// secret, the user pool when `with_pool` (only the functions that invite or
    /// deactivate members reach Cognito; the others never build its client), and KMS and
    /// the provider client when `with_vault`.
    pub fn in_lambda(with_pool: bool, with_vault: bool) -> Result<Self, String> {
        let settings = LambdaSettings::from_env()?;
        let mut app = Self::from_env_with(sdk::dynamodb(&settings))?;
        if with_pool {
            app.pool = MemberPool::from_env(&settings);
        }
        if with_vault {
            app = app.with_vault(Vault::in_lambda(&settings)?, ProviderEndpoints::from_env()?);
        }
        Ok(app)
    }

    /// The same, with the provider-keys vault and the provider client (their APIs at
    /// `endpoints`).
    pub fn with_vault(mut self, vault: Vault, endpoints: ProviderEndpoints) -> Self {
        self.providers = Some(ProviderClient::new(
            self.provider_keys.clone(),
            vault.clone(),
            endpoints,
        ));
        self.vault = Some(vault);
        self
    }

    /// The same state, every AWS call signed as `access_key_id`. The local stack and the
    /// tests give each function its own (its logical id in template.yaml), as each function
    /// has its own role when deployed: the IAM ledger attributes each call by it.
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            keys: self.keys.signing_as(access_key_id),
            customers: self.customers.signing_as(access_key_id),
            idempotency: self.idempotency.signing_as(access_key_id),
            members: self.members.signing_as(access_key_id),
            request_log: self.request_log.signing_as(access_key_id),
            webhook_endpoints: self.webhook_endpoints.signing_as(access_key_id),
            webhook_deliveries: self.webhook_deliveries.signing_as(access_key_id),
            provider_keys: self.provider_keys.signing_as(access_key_id),
            audit: self.audit.signing_as(access_key_id),
            webhook_targets: self.webhook_targets.clone(),
            pool: self.pool.as_ref().map(|p| p.signing_as(access_key_id)),
            cursor_key: self.cursor_key.clone(),
            vault: self.vault.as_ref().map(|v| v.signing_as(access_key_id)),
            providers: self.providers.as_ref().map(|p| p.signing_as(access_key_id)),
            scanning_keys: self.scanning_keys.clone(),
            key_facts: self.key_facts.clone(),
            speculation: self.speculation.clone(),
        }
    }

    /// The vault, or a 500 for a deployment that forgot `PROVIDER_KEYS_KMS_KEY` (the
    /// functions that need it refuse to start without it, so this is a second line).
    pub fn vault(&self) -> Result<&Vault, ApiError> {
        self.vault.as_ref().ok_or_else(|| {
            tracing::error!("the provider-keys vault is not configured");
            ApiError::Internal
        })
    }

    pub fn providers(&self) -> Result<&ProviderClient, ApiError> {
        self.providers.as_ref().ok_or_else(|| {
            tracing::error!("the provider client is not configured");
            ApiError::Internal
        })
    }

    /// Tables and the cursor secret from the environment, with a client built elsewhere
    /// (the operator tool's, from its profile).
    pub fn from_env_with(client: Client) -> Result<Self, String> {
        let tables = TableNames::from_env()?;
        let cursor_key = CursorKey::from_env()?;
        Ok(Self {
            cursor_key,
            ..Self::new(client, &tables)
        })
    }

    /// The same, with the user pool.
    pub fn with_pool(mut self, pool: MemberPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The user pool, or a 500 for a deployment that forgot `MEMBER_POOL_ID`.
    pub fn pool(&self) -> Result<&MemberPool, ApiError> {
        self.pool.as_ref().ok_or_else(|| {
            tracing::error!("{} is not set", crate::members::pool::MEMBER_POOL_ID_ENV);
            ApiError::Internal
        })
    }

    /// The cursor secret, or a 500 for a deployment that forgot it (the listing function
    /// refuses to start without it, so this is a second line).
    pub fn cursor_key(&self) -> Result<&CursorKey, ApiError> {
        self.cursor_key.as_ref().ok_or_else(|| {
            tracing::error!("{CURSOR_SECRET_ENV} is not set");
            ApiError::Internal
        })
    }
}

/// `client` with the API's timeouts, for clients built elsewhere (the local stack).
pub fn with_api_timeouts(client: &Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(sdk::timeouts())
            .build(),
    )
}
