//! End to end: the real local stack (DynamoDB Local + gateway), driven over HTTP, and the
//! real icadmin binary against it.

mod customers;
mod helpers;
mod providers;
mod zapier;

use helpers::{get, listening, send, Stack};
use serde_json::json;

#[test]
fn make_run_serves_the_quickstart_and_stops_everything_on_sigterm() {
    let mut stack = Stack::start();
    // Seed quickstart step 2.
    let reply = get(&stack.url("/v1/customers"), &stack.key);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"object": "list", "data": [], "has_more": false, "next_cursor": null, "limit": 50})
    );
    assert!(reply.header("request-id").is_some());

    send("GET", &stack.url("/v1/customers"), &[], None).assert_error(401, "unauthorized");
    get(&stack.url("/v1/nope"), &stack.key).assert_error(404, "not_found");
    let reply = send("PUT", &stack.url("/v1/customers"), &[], Some("{}"));
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, POST"));

    assert!(listening(stack.dynamodb_port));
    let status = stack.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!listening(stack.port), "the API port is released");
    // The JVM takes a moment to close its port: wait for that, not a fixed time.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while listening(stack.dynamodb_port) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !listening(stack.dynamodb_port),
        "DynamoDB Local is stopped with it"
    );
}

#[test]
fn two_stacks_run_side_by_side_with_separate_data() {
    let a = Stack::start();
    let b = Stack::start();
    assert_eq!(get(&a.url("/v1/customers"), &a.key).status, 200);
    assert_eq!(get(&b.url("/v1/customers"), &b.key).status, 200);
    // Each has its own DynamoDB Local: a key of one is unknown to the other.
    get(&b.url("/v1/customers"), &a.key).assert_error(401, "unauthorized");
}

#[test]
fn icadmin_issues_lists_and_revokes_keys_against_the_local_stack() {
    let stack = Stack::start();
    let url = stack.url("/v1/customers");

    let listed = stack.icadmin_json(&["keys", "list", "--org", "demo"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "the demo key");
    let text = listed.to_string();
    assert!(
        !text.contains(&stack.key) && !text.contains("key_hash") && !text.contains("\"key\""),
        "{text}"
    );

    // Scopes: a write-only key cannot list.
    let writer = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "writer",
        "--scope",
        "customers:write",
    ]);
    let writer_key = writer["key"].as_str().unwrap();
    assert_eq!(writer["prefix"], &writer_key[..12]);
    assert_eq!(writer["last4"], &writer_key[42..]);
    assert_eq!(writer["scopes"], json!(["customers:write"]));
    let body = get(&url, writer_key).assert_error(403, "forbidden_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("customers:read"));

    // Allowlists: the source IP is the TCP peer, 127.0.0.1.
    let home = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "home",
        "--scope",
        "customers:read",
        "--allow-ip",
        "127.0.0.0/8",
        "--allow-ip",
        "::1",
    ]);
    assert_eq!(home["ip_allowlist"], json!(["127.0.0.0/8", "::1/128"]));
    assert_eq!(get(&url, home["key"].as_str().unwrap()).status, 200);
    let away = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "away",
        "--scope",
        "customers:read",
        "--allow-ip",
        "203.0.113.0/24",
    ]);
    get(&url, away["key"].as_str().unwrap()).assert_error(403, "ip_not_allowed");

    // Expiry in the future is accepted and shown.
    let dated = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "dated",
        "--scope",
        "customers:read",
        "--expires-at",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!(dated["expires_at"], "2099-01-01T00:00:00.000Z");
    assert_eq!(get(&url, dated["key"].as_str().unwrap()).status, 200);

    // Revoke: another org's id is refused and the key keeps working; the own org's is immediate.
    let id = home["id"].as_str().unwrap();
    let out = stack.icadmin(&["keys", "revoke", "--org", "globex", id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(id));
    assert_eq!(
        get(&url, home["key"].as_str().unwrap()).status,
        200,
        "still works"
    );
    let out = stack.icadmin(&["keys", "revoke", "--org", "demo", "key_unknown"]);
    assert!(!out.status.success());
    let revoked = stack.icadmin_json(&["keys", "revoke", "--org", "demo", id]);
    assert_eq!(revoked["status"], "revoked");
    get(&url, home["key"].as_str().unwrap()).assert_error(401, "unauthorized");

    let listed = stack.icadmin_json(&["keys", "list", "--org", "demo"]);
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 5);
    assert_eq!(
        statuses.iter().filter(|s| **s == "revoked").count(),
        1,
        "revoked keys stay listed"
    );
    assert!(stack
        .icadmin_json(&["keys", "list", "--org", "globex"])
        .as_array()
        .unwrap()
        .is_empty());

    // The operator's changes are on the org's audit trail, as the operator (the demo
    // administrator's invitation and the demo key by the stack, then the four keys made
    // here and the one revocation; the refused calls wrote nothing), and the chain holds.
    let trail = stack.icadmin_json(&["audit", "list", "--org", "demo", "--limit", "100"]);
    let trail = trail.as_array().unwrap();
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "api_key.created").count(),
        5,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "api_key.revoked").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(trail[0]["action"], "api_key.revoked");
    assert_eq!(trail[0]["target"]["id"], id);
    assert_eq!(trail[0]["actor"]["type"], "operator");
    assert!(trail[0]["actor"]["id"]
        .as_str()
        .unwrap()
        .starts_with("local:"));
    let verdict = stack.icadmin_json(&["audit", "verify", "--org", "demo"]);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["events"].as_u64(), Some(trail.len() as u64));
}

#[test]
fn icadmin_refuses_bad_requests_with_a_clear_message_and_writes_nothing() {
    let stack = Stack::start();
    let cases: &[(&[&str], &str)] = &[
        (&["--scope", "customers:delete"], "unknown scope"),
        (
            &["--scope", "aml:read", "--allow-ip", "10.0.0.0/33"],
            "CIDR",
        ),
        (
            &["--scope", "aml:read", "--allow-ip", "10.0.0.1/8"],
            "host bits",
        ),
        (
            &[
                "--scope",
                "aml:read",
                "--expires-at",
                "2020-01-01T00:00:00Z",
            ],
            "not in the future",
        ),
        (
            &["--scope", "aml:read", "--expires-at", "next week"],
            "RFC 3339",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["keys", "create", "--org", "demo", "--label", "bad"];
        args.extend_from_slice(extra);
        let out = stack.icadmin(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "errors go to stderr only");
    }
    let out = stack.icadmin(&["keys", "create", "--org", "demo", "--label", "x"]);
    assert!(!out.status.success(), "a scope is required");
    let listed = stack.icadmin_json(&["keys", "list", "--org", "demo"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing was written");
}

#[test]
fn icadmin_records_who_created_a_key_and_refuses_when_it_cannot_tell() {
    let stack = Stack::start();
    let create = |label: &str| {
        vec![
            "keys".to_owned(),
            "create".into(),
            "--org".into(),
            "demo".into(),
            "--label".into(),
            label.to_owned(),
            "--scope".into(),
            "customers:read".into(),
        ]
    };
    let args = create("ops");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = stack.icadmin_with_env(&args, &[("USER", "alice")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["created_by"]["id"], "local:alice");
    let no_user = stack.icadmin_json(&args);
    assert_eq!(
        no_user["created_by"]["id"], "local:operator",
        "never \"unknown\""
    );
    assert_eq!(
        no_user["rate_limit"]["requests_per_second"], 50,
        "the default"
    );
    // Revoking records who did, the same way.
    let key_id = created["id"].as_str().unwrap().to_owned();
    let out = stack.icadmin_with_env(
        &["keys", "revoke", "--org", "demo", &key_id],
        &[("USER", "alice")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(revoked["revoked_by"], "local:alice");

    // A rate limit of its own, within 1-1000; the key says so itself at /v1/me.
    let limited = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "slow",
        "--scope",
        "customers:read",
        "--rate-limit",
        "2",
    ]);
    assert_eq!(limited["rate_limit"]["requests_per_second"], 2);
    let me = get(&stack.url("/v1/me"), limited["key"].as_str().unwrap());
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["rate_limit"]["requests_per_second"], 2);
    for bad in ["0", "1001", "fast"] {
        let out = stack.icadmin(&[
            "keys",
            "create",
            "--org",
            "demo",
            "--label",
            "bad",
            "--scope",
            "customers:read",
            "--rate-limit",
            bad,
        ]);
        assert!(!out.status.success(), "--rate-limit {bad}");
    }

    // Where STS is the authority and does not answer, no key is made with a made-up creator.
    let dead = format!(
        "http://127.0.0.1:{}",
        localdb::dynamodb_local::free_port().unwrap()
    );
    let args = create("nobody");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = stack.icadmin_with_env(&args, &[("AWS_ENDPOINT_URL_STS", &dead)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("who you are"), "{stderr}");
    let listed = stack.icadmin_json(&["keys", "list", "--org", "demo"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["label"] != "nobody"),
        "{listed}"
    );
}

#[test]
fn the_request_log_shows_a_keys_requests_within_a_minute() {
    let stack = Stack::start();
    let me = get(&stack.url("/v1/me"), &stack.key);
    assert_eq!(me.status, 200);
    let key_id = me.json()["id"].as_str().unwrap().to_owned();
    let listed = get(&stack.url("/v1/customers"), &stack.key);
    let request_id = listed.header("request-id").unwrap().to_owned();

    // Written off the request path: poll, as an admin after a leak would look.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let records = loop {
        let records = stack.icadmin_json(&["keys", "requests", "--org", "demo", &key_id]);
        if records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == request_id.as_str())
        {
            break records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not logged within 60 s: {records}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let record = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == request_id.as_str())
        .unwrap();
    assert_eq!(record["route"], "GET /v1/customers");
    assert_eq!(record["status"], 200);
    assert_eq!(record["source_ip"], "127.0.0.1");
    assert_eq!(record["key_id"], key_id.as_str());
    assert!(!records.to_string().contains(&stack.key), "never the key");
    // Another org cannot read this key's log.
    let other = stack.icadmin_json(&["keys", "requests", "--org", "other", &key_id]);
    assert_eq!(other, json!([]));
}

/// The README's newcomer walk: sign in as the printed member with `icadmin members login`,
/// create a key through the member API, use it, see the requests in its log, roll it and
/// revoke it — against the real `make run` binary and its Cognito emulator.
#[test]
fn members_add_with_a_password_the_pool_refuses_leaves_nothing_and_runs_again() {
    let stack = Stack::start();
    let email = format!("{}@demo.test", uuid::Uuid::new_v4().simple());
    let add = |password: &str| {
        stack.icadmin(&[
            "members",
            "add",
            "--org",
            "demo",
            "--email",
            &email,
            "--role",
            "developer",
            "--password",
            password,
        ])
    };
    // Long enough for the emulator's own checks, but no capital and no digit.
    let refused = add("only-lower-case-letters");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refused the password"), "{stderr}");
    assert!(stderr.contains("nothing was made"), "{stderr}");
    let listed = stack.icadmin_json(&["members", "list", "--org", "demo"]);
    assert!(
        !listed.to_string().contains(&email),
        "no member record left behind: {listed}"
    );
    // The same command with a password the pool takes goes through, and signs in.
    let password = format!("Better-{}-9", uuid::Uuid::new_v4().simple());
    let added = add(&password);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let member: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(member["email"], email.as_str());
    let login = stack.icadmin(&[
        "members",
        "login",
        "--email",
        &email,
        "--password",
        &password,
        "--token-only",
    ]);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
}

#[test]
fn icadmin_ends_quietly_when_its_reader_has_gone() {
    let stack = Stack::start();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_icadmin"))
        .args(["members", "list", "--org", "demo"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `icadmin … | head` once head has read enough: the pipe is closed before it writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn a_newcomer_signs_in_creates_a_key_reads_its_log_rolls_and_revokes_it() {
    let mut stack = Stack::start();
    let login = stack.icadmin(&[
        "members",
        "login",
        "--email",
        "admin@demo.test",
        "--password",
        &stack.admin_password,
        "--token-only",
    ]);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let token = String::from_utf8(login.stdout).unwrap().trim().to_owned();
    let wrong = stack.icadmin(&[
        "members",
        "login",
        "--email",
        "admin@demo.test",
        "--password",
        "not-it",
    ]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong email or password"));

    let created = helpers::post(
        &stack.url("/v1/org/api-keys"),
        &token,
        None,
        r#"{"label": "CRM sync", "scopes": ["customers:write", "customers:read", "aml:read"]}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let (key_id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let used = get(&stack.url("/v1/customers"), &key);
    assert_eq!(used.status, 200, "{}", used.body);
    let request_id = used.header("request-id").unwrap().to_owned();

    // Its request log, through the member API, within 60 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let log_path = stack.url(&format!("/v1/org/api-keys/{key_id}/requests"));
    loop {
        let log = get(&log_path, &token);
        assert_eq!(log.status, 200, "{}", log.body);
        if log.body.contains(&request_id) {
            assert!(!log.body.contains(&key), "never the key");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not logged within 60 s: {}",
            log.body
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let rolled = helpers::post(
        &stack.url(&format!("/v1/org/api-keys/{key_id}/roll")),
        &token,
        None,
        r#"{"expire_old_in_seconds": 60}"#,
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_key = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(get(&stack.url("/v1/me"), &new_key).status, 200);
    assert_eq!(
        get(&stack.url("/v1/me"), &key).status,
        200,
        "within the grace"
    );
    let revoked = helpers::post(
        &stack.url(&format!("/v1/org/api-keys/{key_id}/revoke")),
        &token,
        None,
        "{}",
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    get(&stack.url("/v1/me"), &key).assert_error(401, "unauthorized");
    assert_eq!(get(&stack.url("/v1/me"), &new_key).status, 200);
    assert!(stack.terminate().success());
}

/// Test mode's CI recipe, as a team runs it against a running stack: a test key from
/// `icadmin keys create --mode test` alone takes a customer to VERIFIED + CLEAR; a live key,
/// or a key the API refuses, stops it with a non-zero exit that says why.
#[test]
fn the_rehearsal_script_reaches_verified_and_clear_with_a_test_key_alone() {
    let stack = Stack::start();
    let created = stack.icadmin_json(&[
        "keys",
        "create",
        "--org",
        "demo",
        "--label",
        "CI",
        "--mode",
        "test",
        "--scope",
        "customers:write",
        "--scope",
        "customers:read",
        "--scope",
        "aml:read",
    ]);
    let test_key = created["key"].as_str().unwrap();
    assert!(test_key.starts_with("ic_test_"), "{created}");
    assert_eq!(created["mode"], "test");
    let url = format!("http://127.0.0.1:{}", stack.port);
    let rehearse = |key: &str| {
        std::process::Command::new(helpers::root().join("infra/tools/rehearse.sh"))
            .env("IC_API_URL", &url)
            .env("IC_TEST_KEY", key)
            .env("REHEARSE_POLL_SECONDS", "20")
            .output()
            .expect("the script runs")
    };
    let ok = rehearse(test_key);
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(said.contains("VERIFIED + CLEAR"), "{said}");
    // The live demo key has the same data model, but the rehearsal refuses to touch live data.
    let live = rehearse(&stack.key);
    assert!(!live.status.success());
    assert!(
        String::from_utf8_lossy(&live.stderr).contains("a rehearsal takes a test key"),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    // A revoked test key: the first call is refused, and the script says so.
    let id = created["id"].as_str().unwrap();
    stack.icadmin_json(&["keys", "revoke", "--org", "demo", id]);
    let revoked = rehearse(test_key);
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("expected 200, got 401"),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // Nothing the live key can see was touched by the rehearsal.
    let live_list = get(&format!("{url}/v1/customers"), &stack.key).json();
    assert_eq!(live_list["data"], serde_json::json!([]));
}

#[test]
fn a_key_reported_by_icadmins_signed_report_answers_401_next_as_the_readme_shows() {
    let stack = Stack::start();
    assert_eq!(get(&stack.url("/v1/me"), &stack.key).status, 200);
    let found_at = "https://github.com/acme/app/blob/main/.env";
    let answer = stack.icadmin_json(&[
        "secret-scanning",
        "report",
        "--token",
        &stack.key,
        "--token",
        "ic_live_not_a_key_of_ours",
        "--url",
        found_at,
    ]);
    assert_eq!(answer[0]["label"], "true_positive", "{answer}");
    assert_eq!(answer[0]["token_type"], "instant_compliance_api_key");
    assert_eq!(answer[1]["label"], "false_positive", "{answer}");
    get(&stack.url("/v1/me"), &stack.key).assert_error(401, "unauthorized");

    // The operator sees why and where.
    let listed = stack.icadmin_json(&["keys", "list", "--org", "demo"]);
    let demo = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "local demo key")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(demo["revocation_reason"], "leaked");
    assert_eq!(
        demo["revoked_by"],
        json!({"type": "secret_scanning", "source": "github", "url": found_at})
    );

    // Without the stack's signing key, icadmin says what is missing.
    let out = stack.icadmin_with_env(
        &["secret-scanning", "report", "--token", "x"],
        &[("SECRET_SCANNING_SIGNING_KEY", "")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_SCANNING_SIGNING_KEY"));
}
