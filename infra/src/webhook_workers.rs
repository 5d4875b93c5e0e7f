//! The local stack's webhook workers, as the deployment runs them: the dispatcher fed by
//! the customers, keys and audit events tables' streams (read from DynamoDB Local by the local event
//! source mapping), the retrier sweeping due deliveries, and the daily `api_key.expiring`
//! sweep, each calling the same code the deployed functions run.

use std::sync::Arc;
use std::time::Duration;

use localdb::streams::{follow_table, idle_since, Handler, Idle};
use shared::app::TableNames;
use shared::webhooks::dispatch::Webhooks;
use shared::App;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long one handler call may run, as the dispatcher function's timeout.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the local retrier looks for due deliveries.
pub const SWEEP_POLL: Duration = Duration::from_millis(200);
/// The daily sweep's period.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The functions the workers are, deployed (template.yaml's logical ids): each signs its
/// calls as itself, as each has its own role (the IAM ledger attributes them so).
pub const DISPATCHER_FUNCTION: &str = "WebhookDispatcherFunction";
pub const RETRIER_FUNCTION: &str = "WebhookRetrierFunction";
pub const EXPIRING_FUNCTION: &str = "WebhookExpiringFunction";

/// The running workers; dropping this stops them.
pub struct WebhookWorkers {
    tasks: Vec<JoinHandle<()>>,
    /// The two stream followers' and the retrier's idle passes.
    idle: Vec<Idle>,
}

impl Drop for WebhookWorkers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl WebhookWorkers {
    /// Follows the two streams and starts the retrier and the daily sweep, each as its own
    /// function (`webhooks`, with its timings, signing as each). `endpoint` is DynamoDB
    /// Local's, `client` the tables' client.
    pub async fn start(
        app: Arc<App>,
        webhooks: Arc<Webhooks>,
        client: &aws_sdk_dynamodb::Client,
        endpoint: &str,
        tables: &TableNames,
    ) -> Result<Self, String> {
        let dispatcher: Handler = {
            let webhooks = Arc::new(webhooks.signing_as(DISPATCHER_FUNCTION));
            Arc::new(move |batch| {
                let webhooks = webhooks.clone();
                Box::pin(async move {
                    webhooks
                        .handle_stream(&batch, Instant::now() + HANDLER_TIMEOUT)
                        .await
                })
            })
        };
        let mut tasks = Vec::new();
        let mut idle = Vec::new();
        for table in [&tables.customers, &tables.api_keys, &tables.audit_events] {
            let follower = follow_table(
                client,
                endpoint,
                table,
                DISPATCHER_FUNCTION,
                dispatcher.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
            tasks.push(follower.task);
            idle.push(follower.idle);
        }
        let retrier = Arc::new(webhooks.signing_as(RETRIER_FUNCTION));
        let (report, retrier_idle) = tokio::sync::watch::channel(None);
        idle.push(retrier_idle);
        tasks.push(tokio::spawn(async move {
            loop {
                retrier
                    .sweep_until_observed(Instant::now() + DAY, SWEEP_POLL, |began| {
                        report.send_replace(Some(began));
                    })
                    .await;
            }
        }));
        let expiring = Arc::new(webhooks.signing_as(EXPIRING_FUNCTION));
        let keys = app.keys.signing_as(EXPIRING_FUNCTION);
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(err) = expiring
                    .expiring(&keys, Instant::now() + HANDLER_TIMEOUT)
                    .await
                {
                    eprintln!("local-stack: api_key.expiring sweep failed: {err}");
                }
                tokio::time::sleep(DAY).await;
            }
        }));
        Ok(Self { tasks, idle })
    }

    /// Waits until both streams were read and the retrier swept, each finding nothing, in
    /// passes begun at or after `since`: everything written and due before then has been
    /// handled. False if a worker stopped.
    pub async fn idle_since(&self, since: Instant) -> bool {
        for idle in &self.idle {
            if !idle_since(&mut idle.clone(), since).await {
                return false;
            }
        }
        true
    }
}
