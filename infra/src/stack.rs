//! A deployed stack's outputs, as `icadmin --stack NAME` reads them: through the project's
//! pinned SAM CLI (`sam list stack-outputs`), so an operator copies no table name, pool id
//! or key ARN by hand, and the shell gets `API_URL` from `icadmin stack env`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Each stack output the operator tool uses, and the variable it sets (the functions'
/// own names for the same things). A test holds every one to an output of template.yaml.
pub const OUTPUT_VARIABLES: &[(&str, &str)] = &[
    ("ApiUrl", "API_URL"),
    ("ApiKeysTableName", "API_KEYS_TABLE"),
    ("CustomersTableName", "CUSTOMERS_TABLE"),
    ("IdempotencyTableName", "IDEMPOTENCY_TABLE"),
    ("MembersTableName", "MEMBERS_TABLE"),
    ("RequestLogTableName", "REQUEST_LOG_TABLE"),
    ("WebhookEndpointsTableName", "WEBHOOK_ENDPOINTS_TABLE"),
    ("WebhookDeliveriesTableName", "WEBHOOK_DELIVERIES_TABLE"),
    ("ProviderKeysTableName", "PROVIDER_KEYS_TABLE"),
    ("AuditEventsTableName", "AUDIT_EVENTS_TABLE"),
    ("AuditHeadsTableName", "AUDIT_HEADS_TABLE"),
    ("ProviderKeysKeyArn", "PROVIDER_KEYS_KMS_KEY"),
    ("MemberPoolId", "MEMBER_POOL_ID"),
    ("MemberPoolClientId", "MEMBER_POOL_CLIENT_ID"),
];

/// Which SAM CLI to run: `IC_SAM`, else the project's (`make build` installs it into
/// `.venv`), else `sam` on `PATH`.
pub fn sam_command() -> PathBuf {
    if let Some(path) = std::env::var_os("IC_SAM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let project = localdb::workspace_root().join(".venv/bin/sam");
    if project.exists() {
        project
    } else {
        PathBuf::from("sam")
    }
}

/// The variables `outputs` (what `sam list stack-outputs --output json` prints) sets; an
/// output the tool needs that the stack lacks is an error naming it (a stack deployed from
/// an older template).
pub fn variables(outputs: &str) -> Result<Vec<(&'static str, String)>, String> {
    let listed: Value = serde_json::from_str(outputs)
        .map_err(|e| format!("the stack's outputs are not the JSON SAM prints ({e})"))?;
    let listed = listed
        .as_array()
        .ok_or("the stack's outputs are not a list")?;
    let value_of = |key: &str| {
        listed
            .iter()
            .find(|o| o["OutputKey"] == key)
            .and_then(|o| o["OutputValue"].as_str())
            .map(str::to_owned)
    };
    OUTPUT_VARIABLES
        .iter()
        .map(|(output, var)| {
            value_of(output).map(|v| (*var, v)).ok_or_else(|| {
                format!(
                    "the stack has no output {output} ({var}): deploy the current template.yaml"
                )
            })
        })
        .collect()
}

/// The variables of stack `name` (in `AWS_REGION`, or the SAM CLI's default), read with
/// the SAM CLI.
pub fn read(name: &str) -> Result<Vec<(&'static str, String)>, String> {
    let sam = sam_command();
    let mut command = Command::new(&sam);
    command.args([
        "list",
        "stack-outputs",
        "--stack-name",
        name,
        "--output",
        "json",
    ]);
    if let Ok(region) = std::env::var("AWS_REGION") {
        command.args(["--region", &region]);
    }
    let out = command
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}): `make build` installs the project's SAM CLI, or set IC_SAM",
                sam.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "sam list stack-outputs --stack-name {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    variables(&String::from_utf8_lossy(&out.stdout))
}

/// `export VAR='value'` lines for a shell (`eval "$(icadmin stack env --stack NAME)"`).
pub fn exports(variables: &[(&'static str, String)]) -> String {
    variables
        .iter()
        .map(|(var, value)| format!("export {var}='{}'", value.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(skip: Option<&str>) -> String {
        let outputs: Vec<Value> = OUTPUT_VARIABLES
            .iter()
            .filter(|(o, _)| Some(*o) != skip)
            .map(|(o, _)| serde_json::json!({"OutputKey": o, "OutputValue": format!("value-of-{o}"), "Description": "…"}))
            .collect();
        Value::Array(outputs).to_string()
    }

    #[test]
    fn every_output_becomes_its_variable() {
        let vars = variables(&listed(None)).unwrap();
        assert_eq!(vars.len(), OUTPUT_VARIABLES.len());
        assert!(vars.contains(&("API_KEYS_TABLE", "value-of-ApiKeysTableName".into())));
        assert!(vars.contains(&("API_URL", "value-of-ApiUrl".into())));
    }

    #[test]
    fn a_missing_output_is_named() {
        let err = variables(&listed(Some("ProviderKeysTableName"))).unwrap_err();
        assert!(
            err.contains("ProviderKeysTableName") && err.contains("PROVIDER_KEYS_TABLE"),
            "{err}"
        );
        assert!(variables("not json").is_err());
        assert!(variables("{}").is_err());
    }

    #[test]
    fn exports_quote_for_the_shell() {
        let text = exports(&[("API_URL", "https://x.example/a'b".into())]);
        assert_eq!(text, "export API_URL='https://x.example/a'\\''b'");
    }

    #[test]
    fn every_variable_comes_from_an_output_of_the_template_and_covers_the_tables() {
        let template =
            std::fs::read_to_string(localdb::workspace_root().join("template.yaml")).unwrap();
        let outputs = &template[template.find("\nOutputs:\n").expect("an Outputs section")..];
        for (output, _) in OUTPUT_VARIABLES {
            assert!(
                outputs.contains(&format!("\n  {output}:\n")),
                "template.yaml has no output {output}"
            );
        }
        // Every table variable a function reads has its output.
        let tables = localdb::Template::load_default().unwrap().table_env_vars();
        for var in tables.keys() {
            assert!(
                OUTPUT_VARIABLES.iter().any(|(_, v)| v == var),
                "{var} comes from no stack output"
            );
        }
    }
}
