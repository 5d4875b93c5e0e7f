//! The deployed stack. `make iam` against template.yaml as it is (it passes) and against
//! copies edited the ways a policy goes wrong (each fails, naming the function, the call and
//! the statement): a grant a function needs removed, the KMS key policy's condition naming
//! the wrong encryption-context key, a statement narrowing `dynamodb:Attributes` below a
//! recorded call, and a grant no call uses without a reason beside it. And the deploy path:
//! a guided first deploy needs no answer it must invent, two stacks coexist, and the stream
//! consumers and schedules are bounded.
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

/// The test's scratch directory (never the repository's own files).
fn scratch() -> PathBuf {
    let dir = root().join(".local/iam-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch file for `template`'s `name` (`<template file name>.<name>`).
fn tempfile(template: &Path, name: &str) -> PathBuf {
    scratch().join(format!(
        "{}.{name}",
        template.file_name().unwrap().to_string_lossy()
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
    let path = scratch().join(format!("{name}.yaml"));
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

#[test]
fn a_grant_that_could_change_an_audit_event_fails_whatever_its_form() {
    let reader = "              Action: [dynamodb:Query]\n              Resource: !GetAtt AuditEventsTable.Arn";
    assert_fails(
        "audit-reader-may-update",
        reader,
        "              Action: [dynamodb:Query, dynamodb:UpdateItem]\n              Resource: !GetAtt AuditEventsTable.Arn",
        &["ListAuditEventsFunction", "grants dynamodb:UpdateItem on AuditEventsTable, whose audit events must never change"],
    );
    // A wildcard, on a wildcard resource, with a condition: still a grant that could.
    assert_fails(
        "audit-reader-may-delete-anything",
        reader,
        "              Action: [dynamodb:Query]\n              Resource: !GetAtt AuditEventsTable.Arn\n            - Effect: Allow\n              Action: [\"dynamodb:Delete*\"]\n              Resource: \"*\"\n              Condition:\n                StringEquals:\n                  aws:RequestedRegion: eu-west-1",
        &["ListAuditEventsFunction", "grants dynamodb:DeleteItem on AuditEventsTable", "grants dynamodb:DeleteTable on AuditEventsTable"],
    );
}

/// template.yaml as YAML (CloudFormation's short-form tags kept as tagged values).
fn template() -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap())
        .unwrap()
}

fn functions(template: &serde_yaml_ng::Value) -> Vec<(String, serde_yaml_ng::Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[test]
fn a_guided_deploy_needs_no_parameter_and_keeps_its_secret_itself() {
    let template = template();
    for (name, parameter) in template["Parameters"].as_mapping().unwrap() {
        assert!(
            parameter.get("Default").is_some(),
            "{name:?} has no default: a first deploy would have to invent it"
        );
    }
    // The cursor secret is the stack's own, generated once and kept.
    let secret = &template["Resources"]["CursorSecret"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(secret["DeletionPolicy"].as_str(), Some("Retain"));
    assert!(
        secret["Properties"]["GenerateSecretString"]["PasswordLength"]
            .as_u64()
            .is_some_and(|n| n >= 32)
    );
}

#[test]
fn two_stacks_coexist_and_stream_consumers_and_schedules_are_bounded() {
    let template = template();
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut schedules = 0;
    let mut streams = 0;
    for (function, resource) in functions(&template) {
        for (event, spec) in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let props = &spec["Properties"];
            match spec["Type"].as_str() {
                Some("ScheduleV2") => {
                    schedules += 1;
                    let name = format!("{:?}", props["Name"]);
                    assert!(
                        name.contains("${AWS::StackName}"),
                        "{function}.{event:?}: a schedule's name must carry the stack's ({name})"
                    );
                    assert!(
                        props["RetryPolicy"].get("MaximumRetryAttempts").is_some(),
                        "{function}.{event:?}"
                    );
                }
                Some("DynamoDB") => {
                    streams += 1;
                    assert!(
                        props["MaximumRetryAttempts"]
                            .as_u64()
                            .is_some_and(|n| n <= 10),
                        "{function}.{event:?}: bounded retries"
                    );
                    assert!(
                        props["MaximumRecordAgeInSeconds"].as_u64().is_some_and(|s| s <= 86_400),
                        "{function}.{event:?}: records older than the stream keeps them are not retried"
                    );
                    assert_eq!(props["BisectBatchOnFunctionError"].as_bool(), Some(true));
                    assert!(props["DestinationConfig"]["OnFailure"]
                        .get("Destination")
                        .is_some());
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        (schedules, streams),
        (2, 3),
        "the retrier, the daily sweep; the customers', keys' and audit events' streams"
    );
    // Every other name the stack gives a resource carries the stack's.
    for property in [
        "UserPoolName:",
        "AliasName:",
        "LogGroupName: !Sub \"/aws/vendedlogs",
    ] {
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with(property))
        {
            assert!(line.contains("${AWS::StackName}"), "{line}");
        }
    }
}
