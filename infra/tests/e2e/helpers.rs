//! Running the real `local-stack` binary (what `make run` runs) and `icadmin`, and calling
//! the gateway over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const START_TIMEOUT_SECS: u64 = 120;

/// A running local stack on free ports; SIGTERM on drop.
pub struct Stack {
    pub child: Child,
    pub port: u16,
    pub dynamodb_port: u16,
    /// The demo key it printed.
    pub key: String,
    /// The password of admin@demo.test it printed.
    pub admin_password: String,
    pub env: Vec<(String, String)>,
}

pub fn root() -> PathBuf {
    localdb::workspace_root()
}

impl Stack {
    /// A stack on free ports. A port probed free can be taken by a parallel test before the
    /// stack binds it, so a stack that exits during start-up is tried again on new ports.
    pub fn start() -> Stack {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(stack) => return stack,
                Err(why) => failures.push(why),
            }
        }
        panic!("local-stack did not come up:\n{}", failures.join("\n---\n"));
    }

    fn try_start() -> Result<Stack, String> {
        let port = localdb::dynamodb_local::free_port().unwrap();
        let mut dynamodb_port = localdb::dynamodb_local::free_port().unwrap();
        while dynamodb_port == port {
            dynamodb_port = localdb::dynamodb_local::free_port().unwrap();
        }
        let mut cognito_port = localdb::dynamodb_local::free_port().unwrap();
        while cognito_port == port || cognito_port == dynamodb_port {
            cognito_port = localdb::dynamodb_local::free_port().unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-stack"))
            .env("PORT", port.to_string())
            .env("DYNAMODB_PORT", dynamodb_port.to_string())
            .env("COGNITO_PORT", cognito_port.to_string())
            .env("RUST_LOG", "warn")
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("local-stack runs");
        let stderr = child.stderr.take().unwrap();
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep only what the stack says about failing; request logs are at warn anyway.
            let lines: Vec<String> = BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect();
            let _ = err_tx.send(lines.join("\n"));
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut key = None;
            let mut password = None;
            let mut password_next = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let trimmed = line.trim();
                if trimmed.starts_with("ic_live_") {
                    key = Some(trimmed.to_owned());
                }
                if password_next {
                    password = Some(trimmed.to_owned());
                }
                password_next = line.contains("password (this stack only)");
                if line.starts_with("Listening on") {
                    let _ = tx.send(key.take().zip(password.take()));
                }
            }
        });
        let (key, admin_password) = match rx.recv_timeout(Duration::from_secs(START_TIMEOUT_SECS)) {
            Ok(Some(printed)) => printed,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let said = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return Err(format!("{other:?} (ports {port}/{dynamodb_port}): {said}"));
            }
        };
        let env_text = std::fs::read_to_string(root().join(format!(".local/env.{port}")))
            .expect(".local/env.<PORT> written");
        let env = env_text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Stack {
            child,
            port,
            dynamodb_port,
            key,
            admin_password,
            env,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Runs icadmin with this stack's `.local/env`, as the README says.
    pub fn icadmin(&self, args: &[&str]) -> Output {
        self.icadmin_with_env(args, &[])
    }

    /// `icadmin` with only PATH, the stack's `.local/env` and `extra` in its environment.
    pub fn icadmin_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_icadmin"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .output()
            .expect("icadmin runs")
    }

    pub fn icadmin_json(&self, args: &[&str]) -> Value {
        let out = self.icadmin(args);
        assert!(
            out.status.success(),
            "icadmin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// SIGTERM, as `make run` receives it, and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "local-stack ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(300),
    )
    .is_ok()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("JSON body, got {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The contract envelope with `code`, whose request id equals the header.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(
            Some(body["error"]["request_id"].as_str().unwrap()),
            self.header("request-id")
        );
        body
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(body.unwrap_or("").to_owned()).unwrap();
    let mut response = agent().run(request).expect("an HTTP answer");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str, key: &str) -> Reply {
    send(
        "GET",
        url,
        &[("authorization", &format!("Bearer {key}"))],
        None,
    )
}

pub fn post(url: &str, key: &str, idempotency_key: Option<&str>, body: &str) -> Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(k) = idempotency_key {
        headers.push(("idempotency-key", k));
    }
    send("POST", url, &headers, Some(body))
}

pub fn patch(url: &str, key: &str, body: &str) -> Reply {
    let auth = format!("Bearer {key}");
    send(
        "PATCH",
        url,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
}

impl Stack {
    /// A key for another org, with every scope.
    pub fn key_for(&self, org: &str) -> String {
        let created = self.icadmin_json(&[
            "keys",
            "create",
            "--org",
            org,
            "--label",
            "e2e",
            "--scope",
            "customers:write",
            "--scope",
            "customers:read",
            "--scope",
            "aml:read",
        ]);
        created["key"].as_str().unwrap().to_owned()
    }
}
