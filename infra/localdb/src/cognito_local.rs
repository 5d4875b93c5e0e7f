//! The Cognito-API emulator of the local stack and the tests: moto's server (PyPI
//! `moto[server,cognitoidp]`, pinned in infra/tools/cognito-requirements.txt and installed
//! into `.venv-cognito` by the Makefile), on loopback, with the user pool and app client of
//! template.yaml. It signs tokens with its own RS256 key and serves the pool's JWKS; the
//! tokens' issuer is the real Cognito form, `https://cognito-idp.<region>.amazonaws.com/<pool>`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, PasswordPolicyType, UserPoolPolicyType, UsernameAttributeType,
    UsernameConfigurationType,
};
use serde_yaml_ng::Value;

use crate::{workspace_root, LocalError, Template};

/// The region the local stack says it is in (its issuer names it).
pub const LOCAL_REGION: &str = "us-east-1";
const READY_TIMEOUT_SECS: u64 = 60;

/// The user pool and app client the emulator holds, as the stack's physical ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolIds {
    /// Logical id in template.yaml → physical id (pool id, client id).
    pub pool_logical_id: String,
    pub pool_id: String,
    pub client_logical_id: String,
    pub client_id: String,
}

/// A running emulator, stopped when dropped; a watchdog stops it if this process dies.
#[derive(Debug)]
pub struct CognitoLocal {
    port: u16,
    server: crate::Watched,
}

/// moto's server script: `$COGNITO_EMULATOR` (the Makefile sets it), else `.venv-cognito`.
pub fn server_path() -> Result<PathBuf, LocalError> {
    let path = std::env::var_os("COGNITO_EMULATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-cognito/bin/moto_server"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(LocalError::Setup(format!(
            "the Cognito-API emulator is not installed at {} (run `make run` or `make test`, which install it)",
            path.display()
        )))
    }
}

impl CognitoLocal {
    pub fn start(port: u16) -> Result<Self, LocalError> {
        let server = Command::new(server_path()?)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LocalError::Setup(format!("cannot run the Cognito emulator: {e}")))?;
        let mut local = Self {
            port,
            server: crate::Watched::new(server)?,
        };
        let deadline = Instant::now() + Duration::from_secs(READY_TIMEOUT_SECS);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(local);
            }
            if let Ok(Some(status)) = local.server.server.try_wait() {
                return Err(LocalError::Setup(format!(
                    "the Cognito emulator exited during start-up ({status}); is port {port} free?"
                )));
            }
            if Instant::now() > deadline {
                local.stop();
                return Err(LocalError::Setup(
                    "the Cognito emulator did not start in time".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process's one emulator (a test binary's, shared by its tests, each with a pool
    /// of its own), started on first use.
    pub fn shared() -> &'static Self {
        static SHARED: std::sync::OnceLock<CognitoLocal> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            Self::start_on_free_port()
                .unwrap_or_else(|e| panic!("the Cognito emulator did not start: {e}"))
        })
    }

    pub fn start_on_free_port() -> Result<Self, LocalError> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start(crate::dynamodb_local::free_port()?) {
                Ok(local) => return Ok(local),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| LocalError::Setup("no port".into())))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the emulator serves a pool's keys (Cognito's own URL is on the issuer's host).
    pub fn jwks_url(&self, pool_id: &str) -> String {
        format!("{}/{pool_id}/.well-known/jwks.json", self.endpoint())
    }

    /// A client for the emulator, with local credentials.
    pub fn client(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let config = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(LOCAL_REGION))
            .credentials_provider(Credentials::new("local", "local", None, None, "local"))
            .endpoint_url(self.endpoint())
            .interceptor(crate::Ledger::global().clone())
            .build();
        aws_sdk_cognitoidentityprovider::Client::from_conf(config)
    }

    pub fn stop(&mut self) {
        self.server.stop();
    }
}

impl Drop for CognitoLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

fn setup<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> LocalError + '_ {
    move |e| LocalError::Setup(format!("{what}: {e:?}"))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Template {
    /// Creates the template's user pool and app client in `client`'s Cognito, with the
    /// settings that shape sign-in (username attributes, case, password policy, auth flows,
    /// token lifetimes). `name_suffix` keeps pools of parallel tests apart.
    pub async fn create_user_pool(
        &self,
        client: &aws_sdk_cognitoidentityprovider::Client,
        name_suffix: &str,
    ) -> Result<PoolIds, LocalError> {
        let (pool_logical_id, pool) = self.single_resource("AWS::Cognito::UserPool")?;
        let (client_logical_id, app) = self.single_resource("AWS::Cognito::UserPoolClient")?;
        let mut request = client
            .create_user_pool()
            .pool_name(format!("{pool_logical_id}{name_suffix}"));
        for attribute in strings(pool.get("UsernameAttributes")) {
            request = request.username_attributes(UsernameAttributeType::from(attribute.as_str()));
        }
        if let Some(case) = pool
            .get("UsernameConfiguration")
            .and_then(|c| c.get("CaseSensitive"))
            .and_then(Value::as_bool)
        {
            request = request.username_configuration(
                UsernameConfigurationType::builder()
                    .case_sensitive(case)
                    .build()
                    .map_err(setup("UsernameConfiguration"))?,
            );
        }
        if let Some(policy) = pool.get("Policies").and_then(|p| p.get("PasswordPolicy")) {
            let int = |k: &str| policy.get(k).and_then(Value::as_i64).map(|n| n as i32);
            let flag = |k: &str| policy.get(k).and_then(Value::as_bool);
            request = request.policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .set_minimum_length(int("MinimumLength"))
                            .set_require_lowercase(flag("RequireLowercase"))
                            .set_require_uppercase(flag("RequireUppercase"))
                            .set_require_numbers(flag("RequireNumbers"))
                            .set_require_symbols(flag("RequireSymbols"))
                            .set_temporary_password_validity_days(int(
                                "TemporaryPasswordValidityDays",
                            ))
                            .build(),
                    )
                    .build(),
            );
        }
        let pool_id = request
            .send()
            .await
            .map_err(setup("CreateUserPool"))?
            .user_pool()
            .and_then(|p| p.id())
            .ok_or_else(|| LocalError::Setup("CreateUserPool: no id".into()))?
            .to_owned();
        crate::Ledger::global().name(&pool_id, &pool_logical_id);
        let mut request = client
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name(
                app.get("ClientName")
                    .and_then(Value::as_str)
                    .unwrap_or(&client_logical_id),
            )
            .generate_secret(
                app.get("GenerateSecret")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            );
        for flow in strings(app.get("ExplicitAuthFlows")) {
            request = request.explicit_auth_flows(ExplicitAuthFlowsType::from(flow.as_str()));
        }
        let client_id = request
            .send()
            .await
            .map_err(setup("CreateUserPoolClient"))?
            .user_pool_client()
            .and_then(|c| c.client_id())
            .ok_or_else(|| LocalError::Setup("CreateUserPoolClient: no id".into()))?
            .to_owned();
        Ok(PoolIds {
            pool_logical_id,
            pool_id,
            client_logical_id,
            client_id,
        })
    }
}
