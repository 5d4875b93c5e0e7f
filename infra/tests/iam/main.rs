//! `make iam` against template.yaml as it is (it passes) and against copies edited the ways
//! a policy goes wrong (each fails, naming the function, the call and the statement): a
//! grant a function needs removed, the KMS key policy's condition naming the wrong
//! encryption-context key, a statement narrowing `dynamodb:Attributes` below a recorded
//! call, and a grant no call uses without a reason beside it.
//!
//! Runs the same two steps as `make iam` (the SAM translator's resolution in .venv, then
//! iam-simulate under Node), which `make test` installs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    localdb::workspace_root()
}

/// `make iam`'s two steps on `template`: (passed, stdout + stderr).
fn make_iam(template: &Path) -> (bool, String) {
    let root = root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `make test` (or `make iam`) installs the SAM translator",
        python.display()
    );
    assert!(
        root.join("infra/iam/node_modules/@cloud-copilot/iam-simulate")
            .exists(),
        "iam-simulate is missing: `make test` (or `make iam`) installs it"
    );
    let resolved = tempfile(template, "resolved.json");
    let out = Command::new(&python)
        .arg(root.join("infra/iam/resolve.py"))
        .arg(template)
        .output()
        .expect("resolve.py runs");
    assert!(
        out.status.success(),
        "resolve.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&resolved, &out.stdout).unwrap();
    let out = Command::new("node")
        .arg(root.join("infra/iam/check.mjs"))
        .arg(&resolved)
        .arg(root.join("infra/iam/calls.json"))
        .output()
        .expect("node runs check.mjs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tempfile(next_to: &Path, name: &str) -> PathBuf {
    next_to.with_file_name(format!(
        "{}.{name}",
        next_to.file_name().unwrap().to_string_lossy()
    ))
}

/// template.yaml with `from` (found exactly once, so the edit can't silently miss) made `to`,
/// in a scratch file.
fn edited(name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{name}: the edit's anchor must appear once in template.yaml: {from:?}"
    );
    let dir = root().join(".local/iam-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

fn assert_fails(name: &str, from: &str, to: &str, expected: &[&str]) {
    let (passed, text) = make_iam(&edited(name, from, to));
    assert!(
        !passed,
        "{name}: make iam passed an edited template:\n{text}"
    );
    for needle in expected {
        assert!(
            text.contains(needle),
            "{name}: the report should name {needle:?}:\n{text}"
        );
    }
}

#[test]
fn make_iam_passes_on_the_template_as_it_is() {
    let (passed, text) = make_iam(&root().join("template.yaml"));
    assert!(passed, "{text}");
    assert!(
        text.contains("make iam: ") && text.contains(" 0 problems"),
        "{text}"
    );
}

#[test]
fn a_grant_a_function_needs_removed_fails_naming_the_call() {
    // MeFunction authenticates with the keys table's UpdateItem, granted only by the
    // verification policy.
    assert_fails(
        "me-without-verification",
        "      Policies:\n        - !Ref ApiKeyVerificationPolicy\n  MeLogGroup:",
        "      Policies: []\n  MeLogGroup:",
        &["MeFunction: dynamodb:UpdateItem", "ImplicitlyDenied"],
    );
}

#[test]
fn a_key_policy_naming_the_wrong_encryption_context_key_fails() {
    assert_fails(
        "verify-wrong-context-key",
        "            Action: kms:Decrypt\n            Resource: \"*\"\n            Condition:\n              ForAllValues:StringEquals:\n                kms:EncryptionContextKeys: [org_id, provider_key_id]\n              \"Null\":\n                kms:EncryptionContext:org_id: \"false\"",
        "            Action: kms:Decrypt\n            Resource: \"*\"\n            Condition:\n              ForAllValues:StringEquals:\n                kms:EncryptionContextKeys: [org_id, provider_key_id]\n              \"Null\":\n                kms:EncryptionContext:organisation_id: \"false\"",
        &["VerifyProviderKeyFunction: kms:Decrypt", "ImplicitlyDenied"],
    );
}

#[test]
fn a_statement_narrowing_attributes_below_a_recorded_call_fails() {
    // The last-use write names last_used_ip.
    assert_fails(
        "verification-without-last-used-ip",
        "dynamodb:Attributes: [key_hash, last_used_at, last_used_ip, \"rl_*\"]",
        "dynamodb:Attributes: [key_hash, last_used_at, \"rl_*\"]",
        &[
            "dynamodb:UpdateItem",
            "last_used_ip",
            "ApiKeyVerificationPolicy#CountAndRecordUseOnly",
        ],
    );
}

#[test]
fn a_grant_no_call_uses_fails_without_a_reason() {
    assert_fails(
        "me-may-scan",
        "            Action: dynamodb:UpdateItem\n            Resource: !GetAtt ApiKeysTable.Arn",
        "            Action: [dynamodb:UpdateItem, dynamodb:Scan]\n            Resource: !GetAtt ApiKeysTable.Arn",
        &["ApiKeyVerificationPolicy#CountAndRecordUseOnly grants dynamodb:Scan", "which no recorded call uses"],
    );
}
