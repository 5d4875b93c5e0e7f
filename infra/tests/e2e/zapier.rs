//! The Zapier app (`infra/zapier`, on Zapier's own `zapier-platform-core`) against a real
//! local stack: its tests run with the platform's app tester under Node, with keys made by
//! icadmin. Deliveries reach the tests' receiver on loopback through the stack's webhook
//! workers, as they would reach Zapier's hook URL.

use std::process::Command;

use crate::helpers::{root, Stack};

fn key(stack: &Stack, mode: &str, scopes: &[&str]) -> String {
    let mut args = vec![
        "keys", "create", "--org", "demo", "--label", "zapier", "--mode", mode,
    ];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    stack.icadmin_json(&args)["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_zapier_app_passes_its_tests_against_the_local_stack() {
    let app = root().join("infra/zapier");
    assert!(
        app.join("node_modules/zapier-platform-core").is_dir(),
        "infra/zapier/node_modules is missing: `make test` installs it (npm ci)"
    );
    let stack = Stack::start();
    let all = ["customers:write", "customers:read", "webhooks:write"];
    let live = key(&stack, "live", &all);
    let test = key(
        &stack,
        "test",
        &[
            "customers:write",
            "customers:read",
            "webhooks:write",
            "aml:read",
        ],
    );
    let limited = key(&stack, "live", &["customers:read"]);
    // Each test bounded, and the run ends when the tests have (a keep-alive socket held by
    // the app tester's HTTP agent once kept a finished run waiting for minutes).
    let out = Command::new("node")
        .args([
            "--test",
            "--test-force-exit",
            "--test-timeout=120000",
            "--test-reporter=spec",
            "test/",
        ])
        .current_dir(&app)
        .env("IC_API_URL", stack.url(""))
        .env("IC_LIVE_KEY", &live)
        .env("IC_TEST_KEY", &test)
        .env("IC_LIMITED_KEY", &limited)
        .output()
        .expect("node runs (apt-get install nodejs)");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the Zapier app's tests failed:\n{report}"
    );
    // Every test ran (none skipped or filtered away).
    assert!(report.contains("ℹ pass 7"), "{report}");
    assert!(report.contains("ℹ fail 0"), "{report}");
}
