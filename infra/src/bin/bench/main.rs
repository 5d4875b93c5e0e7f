//! `make bench`: cold starts of every function's bootstrap side by side with a floor and a
//! minimal SDK function (`cold`), then latency of the API through the local gateway over
//! loopback HTTP, against DynamoDB Local, plus the cost of the in-process part of key
//! verification. Bounded request counts; loopback only. Numbers go in the README; tests
//! never assert times. `BENCH_ONLY=cold` stops after the cold starts.

mod cold;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra::gateway::{serve, RouteTable};
use infra::identity::active_member;
use localdb::{CallCounter, DynamoDbLocal, Template};
use shared::app::TableNames;
use shared::edge::gateway_event::{invoke, v2_event, Context, GatewayRequest};
use shared::edge::routes::Route;
use shared::keys::scope::Scope;
use shared::keys::table::{ApiKeysTable, IssuedKey, NewApiKey, MAX_RATE_LIMIT_RPS};
use shared::keys::token::ApiKeyToken;
use shared::members::role::Role;
use shared::{time, App, Endpoint};

const SEQUENTIAL_REQUESTS: usize = 400;
const CONCURRENT_THREADS: usize = 8;
const REQUESTS_PER_THREAD: usize = 100;
const HASH_ITERATIONS: u32 = 200_000;

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    /// The status, the body read to its end as a client reads it (so the connection goes
    /// back to the pool for the next request, as an integrator's would).
    fn get(&self, path: &str) -> u16 {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call();
        match response {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let _ = r.body_mut().read_to_vec();
                status
            }
            Err(_) => 0,
        }
    }

    fn post(&self, body: &str, idempotency_key: Option<&str>) -> (u16, String) {
        let mut req = self
            .agent
            .post(format!("{}/v1/customers", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json");
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        match req.send(body) {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration, expected: u16, statuses: &[u16]) {
    samples.sort();
    let bad = statuses.iter().filter(|s| **s != expected).count();
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {bad} |",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64(),
    );
}

fn timed<F: FnMut(usize) -> u16>(n: usize, mut f: F) -> (Vec<Duration>, Vec<u16>, Duration) {
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        statuses.push(f(i));
        samples.push(t.elapsed());
    }
    (samples, statuses, started.elapsed())
}

const READ_ROUTES: [(&str, &str); 3] = [
    ("GET /v1/customers/{id}", ""),
    ("GET /v1/customers?limit=50", "/v1/customers?limit=50"),
    (
        "GET /v1/customers?updated_since (polling)",
        "/v1/customers?updated_since=2026-01-01T00:00:00Z&limit=50",
    ),
];

fn p50(samples: &mut [Duration]) -> f64 {
    samples.sort();
    percentile(samples, 0.50)
}

/// Each read route, warm (its data call beside authentication) and on an instance that
/// remembers no key (authentication, then the data call), against `GET /v1/me`
/// (authentication alone), alternating request by request in one run.
fn warm_reads(warm: &Client, sequential: &Client, ids: &[String]) {
    let mut me = Vec::new();
    let mut samples: Vec<(Vec<Duration>, Vec<Duration>)> = READ_ROUTES
        .iter()
        .map(|_| (Vec::new(), Vec::new()))
        .collect();
    let mut unexpected = 0;
    let mut time = |client: &Client, path: &str, into: &mut Vec<Duration>| {
        let t = Instant::now();
        if client.get(path) != 200 {
            unexpected += 1;
        }
        into.push(t.elapsed());
    };
    for i in 0..SEQUENTIAL_REQUESTS {
        time(warm, "/v1/me", &mut me);
        for (r, (_, path)) in READ_ROUTES.iter().enumerate() {
            let path = if path.is_empty() {
                format!("/v1/customers/{}", ids[i % ids.len()])
            } else {
                (*path).to_owned()
            };
            let (warm_samples, cold_samples) = &mut samples[r];
            time(warm, &path, warm_samples);
            time(sequential, &path, cold_samples);
        }
    }
    let me = p50(&mut me);
    println!();
    println!("| read, alternating with GET /v1/me ({SEQUENTIAL_REQUESTS} each) | p50 ms | ÷ GET /v1/me | sequential p50 ms | ÷ GET /v1/me |");
    println!("|---|---|---|---|---|");
    println!("| GET /v1/me (authentication alone) | {me:.2} | 1.00 | | |");
    for ((name, _), (warm_samples, cold_samples)) in READ_ROUTES.iter().zip(samples.iter_mut()) {
        let (w, s) = (p50(warm_samples), p50(cold_samples));
        println!(
            "| {name} | {w:.2} | {:.2} | {s:.2} | {:.2} |",
            w / me,
            s / me
        );
    }
    println!("(unexpected statuses: {unexpected})");
}

/// What the cold starts' events name: a customer (created through the route's own handler),
/// an administrator, the key and the tables.
async fn seed(
    app: &Arc<App>,
    issued: &IssuedKey,
    client: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    names: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    endpoint: &str,
) -> Result<cold::Seed, String> {
    let authorization = format!("Bearer {}", issued.token.expose_secret());
    let event = v2_event(&GatewayRequest {
        method: "POST".into(),
        raw_path: "/v1/customers".into(),
        raw_query: String::new(),
        headers: vec![
            ("authorization".into(), authorization.clone()),
            ("content-type".into(), "application/json".into()),
        ],
        body: br#"{"fullName":"Bench Customer","externalId":"bench-cold"}"#.to_vec(),
        source_ip: [127, 0, 0, 1].into(),
        route_key: Route::CreateCustomer.key(),
        path_parameters: BTreeMap::new(),
        request_id: "bench-seed".into(),
    });
    let mut context = Context::default();
    context.deadline =
        u64::try_from((time::now() + chrono::Duration::seconds(10)).timestamp_millis())
            .unwrap_or(0);
    let answer = invoke(
        app.clone(),
        Endpoint::Route(Route::CreateCustomer),
        event,
        context,
    )
    .await;
    let created: serde_json::Value =
        serde_json::from_str(answer["body"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
    let customer_id = created["id"]
        .as_str()
        .ok_or("no customer created")?
        .to_owned();
    let item = client
        .scan()
        .table_name(&tables.customers)
        .limit(1)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .items
        .and_then(|items| items.into_iter().next())
        .ok_or("the customers table is empty")?;
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or(format!("the customer item has no {name}"))
    };
    let customer_item = (text("pk")?, text("sk")?);
    let member = active_member(
        &issued.record.org_id,
        "admin@bench.test",
        Role::Administrator,
    );
    app.members.add(&member).await.map_err(|e| e.to_string())?;
    Ok(cold::Seed {
        authorization,
        customer_id,
        key_id: issued.record.id.clone(),
        member_sub: member.id,
        customer_item,
        tables: env
            .iter()
            .filter_map(|(var, id)| Some((var.clone(), names.get(id)?.clone())))
            .collect(),
        dynamodb_endpoint: endpoint.to_owned(),
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    // Pure part of verification: format, checksum and SHA-256, no I/O.
    let key = ApiKeyToken::generate(shared::org::Mode::Live).map_err(|e| e.to_string())?;
    let text = key.expose_secret().to_owned();
    let started = Instant::now();
    for _ in 0..HASH_ITERATIONS {
        let parsed = ApiKeyToken::parse(std::hint::black_box(&text)).map_err(|e| e.to_string())?;
        std::hint::black_box(parsed.hash());
    }
    let per_op = started.elapsed().as_nanos() as f64 / f64::from(HASH_ITERATIONS);

    let dynamodb = tokio::task::spawn_blocking(DynamoDbLocal::start_on_free_port)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let template = Template::load_default().map_err(|e| e.to_string())?;
    let client = shared::app::with_api_timeouts(&dynamodb.client());
    let names = template
        .create_tables(&client, "bench_")
        .await
        .map_err(|e| e.to_string())?;
    let env = template.table_env_vars();
    let tables = TableNames::resolve(|var| env.get(var).and_then(|id| names.get(id)).cloned())
        .map_err(|var| format!("template.yaml has no table for {var}"))?;
    let keys_table_name = tables.api_keys.clone();
    // The bench's instance counts its DynamoDB calls, to show each route's.
    let route_calls = CallCounter::default();
    let app = Arc::new(App::new(
        shared::app::with_api_timeouts(&localdb::counting_client(
            &dynamodb.endpoint(),
            &route_calls,
        )),
        &tables,
    ));
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let request = NewApiKey::parse("bench", "bench", &scopes, None, &[], "bench", time::now())
        .and_then(|new| new.with_rate_limit(MAX_RATE_LIMIT_RPS))
        .map_err(|e| e.to_string())?;
    let issued = app
        .keys
        .issue(request, time::now())
        .await
        .map_err(|e| e.to_string())?;

    let seed = seed(
        &app,
        &issued,
        &client,
        &tables,
        &names,
        &env,
        &dynamodb.endpoint(),
    )
    .await?;
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "warm" {
        cold::run(Arc::new(seed)).await?;
    }
    if only == "cold" {
        return Ok(());
    }

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let routes = Arc::new(RouteTable::from_template(&template)?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let warm_app = app.clone();
    let server = tokio::spawn(serve(listener, routes, app, async {
        let _ = stop_rx.await;
    }));

    // The same tables behind a second gateway whose instance remembers no key: every read
    // there is cold (authentication, then the data call), for the side-by-side below.
    let mut sequential_app = App::new(client.clone(), &tables);
    sequential_app.key_facts = Arc::new(shared::keys::facts::KeyFacts::with_capacity(0));
    let sequential_app = Arc::new(sequential_app);
    let cold_listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let cold_addr = cold_listener.local_addr().map_err(|e| e.to_string())?;
    let (cold_stop_tx, cold_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cold_server = tokio::spawn(serve(
        cold_listener,
        Arc::new(RouteTable::from_template(&template)?),
        sequential_app.clone(),
        async {
            let _ = cold_stop_rx.await;
        },
    ));

    let base = format!("http://{addr}");
    let cold_base = format!("http://{cold_addr}");
    let auth = format!("Bearer {}", issued.token.expose_secret());
    let results = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let sequential = Client {
            agent: agent.clone(),
            base: cold_base,
            auth: auth.clone(),
        };
        let c = Arc::new(Client { agent, base, auth });
        println!("| scenario | requests | p50 ms | p95 ms | p99 ms | req/s | unexpected status |");
        println!("|---|---|---|---|---|---|---|");

        let mut ids = Vec::new();
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |i| {
            let (status, body) = c.post(
                &format!(r#"{{"externalId":"crm-{i}","fullName":"Customer {i}"}}"#),
                None,
            );
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            }
            status
        });
        report("POST /v1/customers (new external_id)", s, w, 201, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |i| {
            c.post(
                &format!(r#"{{"externalId":"crm-{i}","fullName":"Customer {i}"}}"#),
                None,
            )
            .0
        });
        report("POST /v1/customers (upsert, no change)", s, w, 200, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |i| {
            c.post(
                &format!(r#"{{"fullName":"Idem {i}"}}"#),
                Some(&format!("bench-{i}")),
            )
            .0
        });
        report("POST /v1/customers (Idempotency-Key)", s, w, 201, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |i| {
            c.get(&format!("/v1/customers/{}", ids[i % ids.len()]))
        });
        report("GET /v1/customers/{id}", s, w, 200, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |_| c.get("/v1/customers?limit=50"));
        report("GET /v1/customers?limit=50", s, w, 200, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |_| {
            c.get("/v1/customers?updated_since=2026-01-01T00:00:00Z&limit=50")
        });
        report("GET /v1/customers?updated_since (polling)", s, w, 200, &st);
        let (s, st, w) = timed(SEQUENTIAL_REQUESTS, |_| {
            let agent: &ureq::Agent = &c.agent;
            agent
                .get(format!("{}/v1/customers", c.base))
                // Well formed, but its checksum fails: refused before any DynamoDB call.
                .header(
                    "authorization",
                    format!("Bearer ic_live_{}", "0".repeat(37)),
                )
                .call()
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
        report("401 for a malformed key (no DynamoDB call)", s, w, 401, &st);

        warm_reads(&c, &sequential, &ids);
        println!();
        println!("| route (warm) | DynamoDB calls |");
        println!("|---|---|");
        for (name, path) in
            [("GET /v1/me", "/v1/me".to_owned())]
                .into_iter()
                .chain(READ_ROUTES.iter().map(|(name, path)| {
                    let path = if path.is_empty() {
                        format!("/v1/customers/{}", ids[0])
                    } else {
                        (*path).to_owned()
                    };
                    (*name, path)
                }))
        {
            route_calls.take();
            c.get(&path);
            println!("| {name} | {} |", route_calls.take().join(" + "));
        }

        let started = Instant::now();
        let threads: Vec<_> = (0..CONCURRENT_THREADS)
            .map(|t| {
                let c = c.clone();
                let ids = ids.clone();
                std::thread::spawn(move || {
                    timed(REQUESTS_PER_THREAD, |i| {
                        c.get(&format!("/v1/customers/{}", ids[(t * 31 + i) % ids.len()]))
                    })
                })
            })
            .collect();
        let mut samples = Vec::new();
        let mut statuses = Vec::new();
        for t in threads {
            if let Ok((s, st, _)) = t.join() {
                samples.extend(s);
                statuses.extend(st);
            }
        }
        report(
            &format!("GET /v1/customers/{{id}}, {CONCURRENT_THREADS} clients"),
            samples,
            started.elapsed(),
            200,
            &statuses,
        );
    })
    .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = cold_stop_tx.send(());
    let _ = cold_server.await;
    results.map_err(|e| e.to_string())?;
    let warm = warm_app.speculation.counts();
    println!();
    println!(
        "Warm reads on the bench's instance: {} data calls started beside authentication, {} used, {} thrown away (authentication refused)",
        warm.started, warm.used, warm.wasted
    );
    println!(
        "The always-cold instance: {} started",
        sequential_app.speculation.counts().started
    );

    // The auth path's DynamoDB side, in process, alternating in one run: the consistent
    // GetItem by hash that authentication was before rate limits, and the find-and-count
    // UpdateItem that replaced it. Then the calls one authentication makes, counted.
    let counter = CallCounter::default();
    let keys = ApiKeysTable::new(
        localdb::counting_client(&dynamodb.endpoint(), &counter),
        &keys_table_name,
    );
    let hash = issued.token.hash();
    // The read routes' data calls, for the same comparison: what a warm read waits for is
    // the slower of authentication and its data call.
    let customers = shared::customers::table::CustomersTable::new(
        localdb::counting_client(&dynamodb.endpoint(), &counter),
        &tables.customers,
    );
    let org = shared::org::OrgId::parse("bench").map_err(|e| e.to_string())?;
    let first = customers
        .list_by_creation(&org, 1, None)
        .await
        .map_err(|e| e.to_string())?
        .customers
        .first()
        .map(|c| c.id)
        .ok_or("the bench's org has no customer")?;
    let since = time::parse("2026-01-01T00:00:00Z").ok_or("a time")?;
    let (mut one, mut page, mut poll) = (Vec::new(), Vec::new(), Vec::new());
    let (mut read, mut count) = (Vec::new(), Vec::new());
    for _ in 0..SEQUENTIAL_REQUESTS {
        let t = Instant::now();
        customers
            .get(&org, &first)
            .await
            .map_err(|e| e.to_string())?;
        one.push(t.elapsed());
        let t = Instant::now();
        customers
            .list_by_creation(&org, 50, None)
            .await
            .map_err(|e| e.to_string())?;
        page.push(t.elapsed());
        let t = Instant::now();
        customers
            .list_updated_since(&org, &since, 50, None)
            .await
            .map_err(|e| e.to_string())?;
        poll.push(t.elapsed());
        let t = Instant::now();
        keys.find_by_hash(&hash).await.map_err(|e| e.to_string())?;
        read.push(t.elapsed());
        let t = Instant::now();
        let source = shared::keys::ip_allowlist::SourceBucket::of(Some([203, 0, 113, 7].into()));
        keys.find_and_count(&hash, time::now(), &source)
            .await
            .map_err(|e| e.to_string())?;
        count.push(t.elapsed());
    }
    let wall = |samples: &[Duration]| -> Duration { samples.iter().sum() };
    let (read_wall, count_wall): (Duration, Duration) = (read.iter().sum(), count.iter().sum());
    println!();
    println!("| key lookup (in process) | requests | p50 ms | p95 ms | p99 ms | req/s | unexpected status |");
    println!("|---|---|---|---|---|---|---|");
    let ok = vec![0; SEQUENTIAL_REQUESTS];
    report("GetItem by hash (no counting)", read, read_wall, 0, &ok);
    report(
        "UpdateItem: find + count (rate limit)",
        count,
        count_wall,
        0,
        &ok,
    );
    let (one_wall, page_wall, poll_wall) = (wall(&one), wall(&page), wall(&poll));
    report(
        "GetItem customer (GET /v1/customers/{id})",
        one,
        one_wall,
        0,
        &ok,
    );
    report(
        "Query 50 by creation (the listing)",
        page,
        page_wall,
        0,
        &ok,
    );
    report("Query 50 by update (polling)", poll, poll_wall, 0, &ok);
    counter.take();
    let mut headers = lambda_http::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", issued.token.expose_secret())
            .parse()
            .map_err(|_| "header".to_owned())?,
    );
    // The first may also write last_used_at (once a minute); the second is the common path.
    for _ in 0..2 {
        counter.take();
        let mut log = shared::request::RequestLog::default();
        shared::keys::verify::authenticate(
            &keys,
            &headers,
            None,
            Some(Scope::CustomersRead),
            time::now(),
            &mut log,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let calls = counter.take();
    drop(dynamodb);
    println!();
    println!(
        "DynamoDB calls per authenticated request, rate limit counted: {} ({})",
        calls.len(),
        calls.join(", ")
    );
    println!();
    println!("key format + checksum + SHA-256, in process: {per_op:.0} ns per key ({HASH_ITERATIONS} iterations)");
    Ok(())
}
