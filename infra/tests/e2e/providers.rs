//! Provider keys on the real `make run` stack: the member API (the README's curl) and
//! `icadmin providers`, sealed under the KMS key the stack made in its emulator, verified
//! against the stack's provider fakes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::helpers::{self, get, Stack};

/// `icadmin` with the stack's environment and `stdin` on its standard input.
fn icadmin_stdin(stack: &Stack, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_icadmin"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("icadmin runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn operators_and_members_manage_provider_keys_on_the_local_stack() {
    let stack = Stack::start();
    let secret = format!("os-{}", uuid::Uuid::new_v4().simple());

    // icadmin providers add: the secret on stdin, masked on stdout.
    let out = icadmin_stdin(
        &stack,
        &[
            "providers",
            "add",
            "--org",
            "demo",
            "--key-type",
            "O",
            "--label",
            "Open Sanctions",
        ],
        &format!("{secret}\n"),
    );
    let added = json_of(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(&secret), "the secret is printed");
    assert_eq!(added["provider"], "Open Sanctions");
    assert!(added["masked_key"]
        .as_str()
        .unwrap()
        .ends_with(&secret[secret.len() - 4..]));
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(added["created_by"]["id"]
        .as_str()
        .unwrap()
        .starts_with("local:"));

    // A bad key type or secret is refused before anything is stored.
    let bad = icadmin_stdin(
        &stack,
        &[
            "providers",
            "add",
            "--org",
            "demo",
            "--key-type",
            "Z",
            "--label",
            "x",
        ],
        "whatever\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("key_type"));
    let empty = icadmin_stdin(
        &stack,
        &[
            "providers",
            "add",
            "--org",
            "demo",
            "--key-type",
            "O",
            "--label",
            "x",
        ],
        "\n",
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("secret"));
    // A paste that spans two lines is refused, not cut to its first line.
    let two_lines = icadmin_stdin(
        &stack,
        &[
            "providers",
            "add",
            "--org",
            "demo",
            "--key-type",
            "O",
            "--label",
            "x",
        ],
        &format!(
            "{}\n{}\n",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    );
    assert!(!two_lines.status.success());
    assert!(String::from_utf8_lossy(&two_lines.stderr).contains("more than one line"));
    let listed = json_of(&stack.icadmin(&["providers", "list", "--org", "demo"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // The member API sees the operator's key and verifies it against the stack's fake.
    let login = stack.icadmin(&[
        "members",
        "login",
        "--email",
        "admin@demo.test",
        "--password",
        &stack.admin_password,
        "--token-only",
    ]);
    let token = String::from_utf8(login.stdout).unwrap().trim().to_owned();
    let listed = get(&stack.url("/v1/org/provider-keys"), &token);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["data"][0]["id"], id.as_str());
    let verified = helpers::post(
        &stack.url(&format!("/v1/org/provider-keys/{id}/verify")),
        &token,
        None,
        "",
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.json()["result"], "ok");

    // Summaries, rotation and retirement through icadmin.
    let days = json_of(&stack.icadmin(&["providers", "summaries", "--org", "demo", &id]));
    let today = days.as_array().unwrap().last().unwrap();
    assert_eq!(
        (today["calls"].as_u64(), today["errors"].as_u64()),
        (Some(1), Some(0))
    );
    let rotated_secret = format!("os2-{}", uuid::Uuid::new_v4().simple());
    let rotated = json_of(&icadmin_stdin(
        &stack,
        &["providers", "rotate", "--org", "demo", &id],
        &format!("{rotated_secret}\n"),
    ));
    assert_eq!(rotated["id"], id.as_str());
    assert!(rotated["rotated_at"].is_string());
    assert_eq!(rotated["usage_count"], 1);
    let disabled = json_of(&stack.icadmin(&["providers", "disable", "--org", "demo", &id]));
    assert_eq!(disabled["enabled"], false);
    let refused = helpers::post(
        &stack.url(&format!("/v1/org/provider-keys/{id}/verify")),
        &token,
        None,
        "",
    );
    refused.assert_error(409, "conflict");
    let other_org = stack.icadmin(&["providers", "disable", "--org", "other", &id]);
    assert!(!other_org.status.success());
    assert!(String::from_utf8_lossy(&other_org.stderr).contains("org other has no provider key"));
    // A newer key lists first, as on the member API.
    let newer = json_of(&icadmin_stdin(
        &stack,
        &[
            "providers",
            "add",
            "--org",
            "demo",
            "--key-type",
            "A",
            "--label",
            "newer",
        ],
        &format!("sk-{}\n", uuid::Uuid::new_v4().simple()),
    ));
    let listed = json_of(&stack.icadmin(&["providers", "list", "--org", "demo"]));
    assert_eq!(listed[0]["id"], newer["id"]);
    assert_eq!(listed[1]["id"], id.as_str());
    let api_listed = get(&stack.url("/v1/org/provider-keys"), &token).json();
    assert_eq!(api_listed["data"][0]["id"], newer["id"]);
    let everything = json_of(&stack.icadmin(&["providers", "list", "--org", "demo"])).to_string();
    assert!(!everything.contains(&secret) && !everything.contains(&rotated_secret));
    assert_eq!(
        json_of(&stack.icadmin(&["providers", "enable", "--org", "demo", &id]))["enabled"],
        json!(true)
    );
}
