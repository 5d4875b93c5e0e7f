//! Cold starts, side by side: every function's release bootstrap, the hello-world floor and
//! the minimal one-GetItem SDK function, each exec'd as Lambda execs it (a clean
//! environment with Lambda's variables, `AWS_LAMBDA_RUNTIME_API` on loopback), against
//! DynamoDB Local. Runs alternate between the binaries; medians of `RUNS`.
//!
//! - init: exec to the bootstrap's first `GET …/invocation/next`;
//! - first response: exec to the first event's answer (authentication and the route's data
//!   call included, for the routes given an event);
//! - size: the binary on disk;
//! - warm (a separate pass, through a counting proxy in front of DynamoDB Local): the
//!   process's CPU time per request and the DynamoDB operations each request made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra::call_proxy::CallProxy;
use infra::runtime_api::{api_event, as_member, RuntimeApi};
use serde_json::{json, Value};
use shared::edge::routes::Route;

pub const FLOOR: &str = "bench-floor";
pub const MINIMAL: &str = "bench-minimal";
const RUNS: usize = 9;
const WARM_REQUESTS: usize = 200;
const WARM_UP_CALLS: usize = 3_000;
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the bench seeded, for the events to name.
pub struct Seed {
    pub authorization: String,
    pub customer_id: String,
    pub key_id: String,
    pub member_sub: String,
    /// The seeded customer's item key, for the minimal function's GetItem.
    pub customer_item: (String, String),
    pub tables: BTreeMap<String, String>,
    pub dynamodb_endpoint: String,
}

/// A request a function is given: the event for invocation `i`, the status expected, and
/// the DynamoDB budget its route is held to (reads and lists 2, an idempotent create 4).
struct Scenario {
    event: Box<dyn Fn(usize) -> Value + Send + Sync>,
    expect: u16,
    budget: Option<usize>,
}

fn event(
    route: Route,
    params: &[(&str, &str)],
    query: &str,
    body: Option<String>,
    headers: Vec<(String, String)>,
    member: Option<&str>,
) -> Value {
    let event = api_event(route, params, query, headers, body);
    match member {
        Some(sub) => as_member(event, sub),
        None => event,
    }
}

/// The function a binary is: its name, less an experiment's `@label` (`BENCH_EXTRA`).
fn function_of(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

fn scenario(name: &str, seed: &Seed) -> Option<Scenario> {
    let name = function_of(name);
    let auth = vec![("authorization".to_owned(), seed.authorization.clone())];
    let json_auth = || {
        let mut headers = auth.clone();
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        headers
    };
    let customer = seed.customer_id.clone();
    let key_id = seed.key_id.clone();
    let sub = seed.member_sub.clone();
    let read = |route: Route, params: Vec<(&'static str, String)>, query: &'static str| {
        let auth = auth.clone();
        Scenario {
            event: Box::new(move |_| {
                let params: Vec<(&str, &str)> =
                    params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                event(route, &params, query, None, auth.clone(), None)
            }),
            expect: 200,
            budget: Some(2),
        }
    };
    let member_read = |route: Route, params: Vec<(&'static str, String)>| {
        let sub = sub.clone();
        Scenario {
            event: Box::new(move |_| {
                let params: Vec<(&str, &str)> =
                    params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                event(route, &params, "", None, Vec::new(), Some(&sub))
            }),
            expect: 200,
            budget: Some(2),
        }
    };
    Some(match name {
        MINIMAL => {
            let (pk, sk) = seed.customer_item.clone();
            let query = format!(
                "pk={}&sk={}",
                form_urlencoded::byte_serialize(pk.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(sk.as_bytes()).collect::<String>()
            );
            Scenario {
                event: Box::new(move |_| {
                    event(Route::GetCustomer, &[], &query, None, Vec::new(), None)
                }),
                expect: 200,
                budget: Some(1),
            }
        }
        FLOOR => Scenario {
            event: Box::new(|_| json!({})),
            expect: 200,
            budget: Some(0),
        },
        "get-customer" => read(Route::GetCustomer, vec![("id", customer)], ""),
        "get-customer-aml" => read(Route::GetCustomerAml, vec![("id", customer)], ""),
        "list-customers" => read(Route::ListCustomers, vec![], "limit=50"),
        "me" => Scenario {
            budget: Some(1),
            ..read(Route::Me, vec![], "")
        },
        "list-webhook-endpoints" => read(Route::ListWebhookEndpoints, vec![], ""),
        "create-customer" => {
            let headers = json_auth();
            let run = uuid::Uuid::new_v4().simple().to_string();
            Scenario {
                event: Box::new(move |i| {
                    let mut headers = headers.clone();
                    headers.push(("idempotency-key".to_owned(), format!("bench-{run}-{i}")));
                    let body = json!({"fullName": format!("Bench {i}")}).to_string();
                    event(Route::CreateCustomer, &[], "", Some(body), headers, None)
                }),
                expect: 201,
                budget: Some(4),
            }
        }
        "update-customer" => {
            let headers = json_auth();
            Scenario {
                event: Box::new(move |i| {
                    let body = json!({"fullName": format!("Bench update {i}")}).to_string();
                    event(
                        Route::UpdateCustomer,
                        &[("id", &customer)],
                        "",
                        Some(body),
                        headers.clone(),
                        None,
                    )
                }),
                expect: 200,
                budget: None,
            }
        }
        "org-me" => Scenario {
            budget: Some(1),
            ..member_read(Route::OrgMe, vec![])
        },
        "list-api-keys" => member_read(Route::ListApiKeys, vec![]),
        "get-api-key" => member_read(Route::GetApiKey, vec![("id", key_id)]),
        "api-key-requests" => member_read(Route::ApiKeyRequests, vec![("id", key_id)]),
        "list-members" => member_read(Route::ListMembers, vec![]),
        "org-list-webhook-endpoints" => member_read(Route::OrgListWebhookEndpoints, vec![]),
        _ => return None,
    })
}

/// The variables Lambda sets for a `provided.al2023` function, plus the function's own
/// (template.yaml's, with the bench's table names and DynamoDB endpoint).
fn lambda_env(name: &str, bin: &Path, seed: &Seed, endpoint: &str) -> Vec<(String, String)> {
    let name = function_of(name);
    let dir = bin
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/04/[$LATEST]bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIABENCHBENCHBENCH0"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-access-key"),
        ("AWS_SESSION_TOKEN", "bench-session-token"),
        ("LAMBDA_TASK_ROOT", &dir),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        ),
        ("RUST_LOG", "info"),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push((
        "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
        format!("/aws/lambda/{name}"),
    ));
    env.extend(seed.tables.iter().map(|(k, v)| (k.clone(), v.clone())));
    // To see where a bootstrap's time goes: its log level, e.g. `debug` (slower, of course).
    if let Ok(level) = std::env::var("BENCH_RUST_LOG") {
        env.push(("RUST_LOG".into(), level));
    }
    match name {
        "list-customers" => env.push((
            "CURSOR_SECRET".into(),
            "bench-cursor-secret-0123456789abcdef".into(),
        )),
        "invite-member" | "deactivate-member" => {
            env.push(("MEMBER_POOL_ID".into(), "eu-west-1_BenchPool".into()))
        }
        "developers-page" => env.push(("MEMBER_POOL_CLIENT_ID".into(), "benchclient".into())),
        _ => {}
    }
    env
}

/// One cold start: exec, wait for init, then (given an event) the first answer.
struct Cold {
    init: Duration,
    first: Option<Duration>,
}

async fn start(
    name: &str,
    bin: &Path,
    env: &[(String, String)],
    logs: &Path,
) -> Result<(RuntimeApi, tokio::process::Child, Instant), String> {
    let api = RuntimeApi::start(name).await.map_err(|e| e.to_string())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))
        .map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = tokio::process::Command::new(bin)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .current_dir(bin.parent().unwrap_or(Path::new("/")))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    Ok((api, child, started))
}

fn status_of(answer: &Value) -> u16 {
    answer["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0)
}

async fn cold_start(
    name: &str,
    bin: &Path,
    env: &[(String, String)],
    logs: &Path,
    scenario: Option<&Scenario>,
    run: usize,
) -> Result<Cold, String> {
    let (api, mut child, started) = start(name, bin, env, logs).await?;
    let init = api.init_done(TIMEOUT).await? - started;
    let mut first = None;
    if let Some(scenario) = scenario {
        let (at, answer) = api.call((scenario.event)(run), TIMEOUT).await?;
        if status_of(&answer) != scenario.expect {
            return Err(format!(
                "{name}: status {} (expected {}): {answer}",
                status_of(&answer),
                scenario.expect
            ));
        }
        first = Some(at - started);
    }
    let _ = child.kill().await;
    Ok(Cold { init, first })
}

/// CPU time of every thread of `pid` so far (the scheduler's nanoseconds).
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

struct Warm {
    cpu_per_request: Duration,
    calls: Vec<String>,
    most_calls: usize,
}

/// The warm pass: a first request, then `WARM_REQUESTS` more, each one's DynamoDB
/// operations written down by the proxy.
async fn warm(
    name: &str,
    bin: &Path,
    env: &[(String, String)],
    logs: &Path,
    scenario: &Scenario,
    proxy: &CallProxy,
) -> Result<Warm, String> {
    let (api, mut child, _) = start(name, bin, env, logs).await?;
    let pid = child.id().ok_or("the bootstrap has no pid")?;
    api.init_done(TIMEOUT).await?;
    api.call((scenario.event)(RUNS), TIMEOUT).await?;
    let mut per_request: Vec<Vec<String>> = Vec::new();
    let before = cpu_time(pid);
    for i in 0..WARM_REQUESTS {
        proxy.take();
        let (_, answer) = api.call((scenario.event)(RUNS + 1 + i), TIMEOUT).await?;
        if status_of(&answer) != scenario.expect {
            return Err(format!(
                "{name}: warm status {}: {answer}",
                status_of(&answer)
            ));
        }
        per_request.push(proxy.take());
    }
    let cpu = cpu_time(pid).saturating_sub(before);
    let _ = child.kill().await;
    // The common request's calls: the sequence most requests made.
    let mut counts: BTreeMap<&Vec<String>, usize> = BTreeMap::new();
    for calls in &per_request {
        *counts.entry(calls).or_default() += 1;
    }
    let calls = counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(calls, _)| calls.clone())
        .unwrap_or_default();
    Ok(Warm {
        cpu_per_request: cpu / u32::try_from(WARM_REQUESTS).unwrap_or(1),
        most_calls: per_request.iter().map(Vec::len).max().unwrap_or(0),
        calls,
    })
}

fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    samples.sort();
    samples.get(samples.len() / 2).copied()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The functions to measure: the floor, the minimal function, then every function crate
/// (or those `BENCH_FUNCTIONS` names, comma-separated), as built next to this binary; then
/// any `BENCH_EXTRA` binaries (comma-separated paths named `function@experiment`), so an
/// experiment is measured side by side with what it changes.
pub fn binaries() -> Result<Vec<(String, PathBuf)>, String> {
    let dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("no directory for the bench binary")?;
    let only: Option<Vec<String>> = std::env::var("BENCH_FUNCTIONS")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let mut names: Vec<String> = std::fs::read_dir(localdb::workspace_root().join("functions"))
        .map_err(|e| e.to_string())?
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    names.sort();
    let mut all = vec![FLOOR.to_owned(), MINIMAL.to_owned()];
    all.extend(names);
    let extra = std::env::var("BENCH_EXTRA").unwrap_or_default();
    let extra = extra
        .split(',')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let extra: Vec<(String, PathBuf)> = extra
        .filter_map(|path| Some((path.file_name()?.to_str()?.to_owned(), path.clone())))
        .collect();
    all.into_iter()
        .map(|name| {
            let bin = dir.join(&name);
            if bin.exists() {
                Ok((name, bin))
            } else {
                Err(format!(
                    "{} is missing: `make bench` builds every bootstrap first",
                    bin.display()
                ))
            }
        })
        .chain(extra.into_iter().map(Ok))
        .collect()
}

/// DynamoDB Local is a JVM: its first few thousand requests run slower while it compiles
/// itself. Each measured process would otherwise pay a different share of that warm-up.
/// The reads and writes the routes make, through a client of the bench's own.
async fn warm_dynamodb_local(seed: &Seed) -> Result<(), String> {
    let client = localdb::client(&seed.dynamodb_endpoint);
    let (pk, sk) = &seed.customer_item;
    let customers = seed
        .tables
        .get(shared::app::CUSTOMERS_TABLE_ENV)
        .ok_or("no customers table")?;
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    for i in 0..WARM_UP_CALLS {
        client
            .get_item()
            .table_name(customers)
            .key("pk", key(pk))
            .key("sk", key(sk))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        client
            .update_item()
            .table_name(customers)
            .key("pk", key("bench#warm-up"))
            .key("sk", key("bench"))
            .update_expression("SET calls = :n")
            .expression_attribute_values(
                ":n",
                aws_sdk_dynamodb::types::AttributeValue::N(i.to_string()),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub async fn run(seed: Arc<Seed>) -> Result<(), String> {
    let binaries = binaries()?;
    warm_dynamodb_local(&seed).await?;
    let logs = std::env::temp_dir().join(format!("ic-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let scenarios: BTreeMap<String, Scenario> = binaries
        .iter()
        .filter_map(|(name, _)| Some((name.clone(), scenario(name, &seed)?)))
        .collect();
    let envs: BTreeMap<String, Vec<(String, String)>> = binaries
        .iter()
        .map(|(name, bin)| {
            let env = lambda_env(name, bin, &seed, &seed.dynamodb_endpoint);
            (name.clone(), env)
        })
        .collect();
    // Alternating runs: each round execs every binary once, in a rotated order.
    let mut inits: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut firsts: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for run in 0..RUNS {
        for i in 0..binaries.len() {
            let (name, bin) = &binaries[(i + run) % binaries.len()];
            let cold = cold_start(name, bin, &envs[name], &logs, scenarios.get(name), run).await?;
            inits.entry(name.clone()).or_default().push(cold.init);
            if let Some(first) = cold.first {
                firsts.entry(name.clone()).or_default().push(first);
            }
        }
    }
    let median_of = |map: &BTreeMap<String, Vec<Duration>>, name: &str| {
        map.get(name).and_then(|s| median(s.clone()))
    };
    let floor_init = median_of(&inits, FLOOR).ok_or("no floor")?;
    let minimal_first = median_of(&firsts, MINIMAL).ok_or("no minimal response")?;
    let size = |bin: &Path| std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let minimal_size = binaries
        .iter()
        .find(|(n, _)| n == MINIMAL)
        .map(|(_, b)| size(b))
        .unwrap_or(1)
        .max(1);
    println!(
        "Cold starts: {RUNS} alternating runs, medians; goals: init ≤ 1.25× floor, first response ≤ 0.8× minimal, size ≤ 1.2× minimal."
    );
    println!();
    println!("| bootstrap | init ms | init × floor | first response ms | × minimal | size MB | × minimal |");
    println!("|---|---|---|---|---|---|---|");
    for (name, bin) in &binaries {
        let init = median_of(&inits, name).unwrap_or_default();
        let first = median_of(&firsts, name);
        let bytes = size(bin);
        println!(
            "| {name} | {:.2} | {:.2} | {} | {} | {:.1} | {:.2} |",
            ms(init),
            ms(init) / ms(floor_init),
            first.map(|f| format!("{:.2}", ms(f))).unwrap_or("—".into()),
            first
                .map(|f| format!("{:.2}", ms(f) / ms(minimal_first)))
                .unwrap_or("—".into()),
            bytes as f64 / 1_048_576.0,
            bytes as f64 / minimal_size as f64,
        );
    }

    // The warm pass, through the counting proxy.
    let proxy = CallProxy::start(&seed.dynamodb_endpoint).await?;
    println!();
    println!("Warm: {WARM_REQUESTS} requests per route after the first; CPU of the whole process per request (DynamoDB's time is not CPU); the operations a request makes.");
    println!();
    println!("| bootstrap | CPU µs / request | DynamoDB calls | budget | operations |");
    println!("|---|---|---|---|---|");
    for (name, bin) in &binaries {
        let Some(scenario) = scenarios.get(name) else {
            continue;
        };
        let env = lambda_env(name, bin, &seed, &proxy.endpoint());
        let warm = warm(name, bin, &env, &logs, scenario, &proxy).await?;
        let budget = scenario
            .budget
            .map(|b| {
                let verdict = if warm.most_calls <= b { "ok" } else { "OVER" };
                format!("{b} ({verdict})")
            })
            .unwrap_or("—".into());
        println!(
            "| {name} | {:.0} | {} (max {}) | {budget} | {} |",
            warm.cpu_per_request.as_secs_f64() * 1e6,
            warm.calls.len(),
            warm.most_calls,
            warm.calls.join(", "),
        );
    }
    if std::env::var_os("BENCH_KEEP_LOGS").is_some() {
        println!("\nThe bootstraps' logs: {}", logs.display());
    } else {
        let _ = std::fs::remove_dir_all(&logs);
    }
    Ok(())
}
