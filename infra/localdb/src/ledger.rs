//! The IAM ledger: every AWS request the local stack and the tests make on a function's
//! behalf, written down as the IAM request AWS would authorise, so `make iam` can prove the
//! function's role in template.yaml allows it. No emulator enforces IAM; this is where the
//! suite sees what each function's code really asks of AWS.
//!
//! Attribution is by credentials, as in AWS: the local stack and the test planes give each
//! function's clients an access key id that names the function (its logical id in
//! template.yaml, `App::signing_as`); calls signed with any other key (the stack's own setup,
//! the tests' fixtures, the operator tool) are not a function's and are not recorded.
//!
//! A call's shape is its action, its resource (an ARN in a fixed account and region, named by
//! the template's logical ids) and the request-context keys AWS evaluates for it, derived
//! from the request as the service documents them:
//! - DynamoDB (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html>,
//!   <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html>):
//!   `dynamodb:Attributes` is every top-level attribute name the request names (its key,
//!   item, projection, update, condition, key-condition and filter expressions);
//!   `dynamodb:LeadingKeys` the partition key values (kept as the attribute they come from:
//!   values differ on every request and no policy of ours conditions on them);
//!   `dynamodb:ReturnValues`, `dynamodb:Select` and `dynamodb:ReturnConsumedCapacity` as the
//!   request sets them. A transaction is authorised item by item, each as its own action
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>).
//! - DynamoDB Streams: the stream read (the event source mapping reads it with the
//!   function's role: <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-eventsourcemapping.html>).
//! - KMS (<https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html>):
//!   `kms:EncryptionContextKeys`, `kms:EncryptionContext:<key>` (values kept as the key's
//!   name), `kms:EncryptionAlgorithm` when given, `kms:CallerAccount`.
//! - Cognito user pools: the action on the pool (no request-context keys).
//!
//! Each process appends the distinct shapes it saw to `$IAM_LEDGER_DIR/<pid>.jsonl`;
//! `iam-ledger check` compares their union with the reviewed `infra/iam/calls.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where the processes of a run write what they record; unset, nothing is recorded.
pub const LEDGER_DIR_ENV: &str = "IAM_LEDGER_DIR";
/// The account and region every resource of the ledger (and of `make iam`'s resolved
/// template) lives in.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";
/// A stream's label, fixed (AWS stamps each stream with its creation time).
pub const STREAM_LABEL: &str = "2026-01-01T00:00:00.000";
/// A function's access key id is its logical id, which template.yaml ends in `Function`.
const FUNCTION_SUFFIX: &str = "Function";

/// One call as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Call {
    pub function: String,
    pub action: String,
    pub resource: String,
    /// Request-context keys and their values (a string or a sorted list of strings).
    pub context: BTreeMap<String, ContextValue>,
}

/// A request-context value: a string, or a list of them (sorted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextValue {
    One(String),
    Many(Vec<String>),
}

pub fn one(value: impl Into<String>) -> ContextValue {
    ContextValue::One(value.into())
}

pub fn many(values: impl IntoIterator<Item = String>) -> ContextValue {
    let mut values: Vec<String> = values.into_iter().collect();
    values.sort();
    values.dedup();
    ContextValue::Many(values)
}

impl Call {
    /// One line of the ledger file (keys in a fixed order).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

/// What the ledger knows of the stack's resources: physical name or id → logical id, and
/// each table's (and index's) partition key attribute.
#[derive(Debug, Default)]
struct Names {
    logical: HashMap<String, String>,
    /// `Table` or `Table/index/Index` → partition key attribute.
    partition_keys: HashMap<String, String>,
    /// Shard iterator → stream ARN (GetRecords names only its iterator).
    iterators: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Inner {
    names: Mutex<Names>,
    seen: Mutex<HashSet<Call>>,
    file: Mutex<Option<std::fs::File>>,
}

/// The process's recorder, an interceptor on every AWS client the local stack builds.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Inner>);

impl Ledger {
    /// The process's ledger: recording into `$IAM_LEDGER_DIR` when that is set.
    pub fn global() -> &'static Ledger {
        static GLOBAL: OnceLock<Ledger> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let ledger = Ledger::default();
            if let Ok(dir) = std::env::var(LEDGER_DIR_ENV) {
                if !dir.is_empty() {
                    let _ = std::fs::create_dir_all(&dir);
                    let path =
                        std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
                    if let Ok(mut file) = ledger.0.file.lock() {
                        *file = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .ok();
                    }
                }
            }
            ledger
        })
    }

    /// Whether this process records.
    pub fn recording(&self) -> bool {
        self.0.file.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    /// `physical` (a table name, a pool id, a key id or ARN) is the template's `logical`.
    pub fn name(&self, physical: &str, logical: &str) {
        if let Ok(mut names) = self.0.names.lock() {
            names
                .logical
                .insert(physical.to_owned(), logical.to_owned());
        }
    }

    /// The partition key attribute of a table (`Table`) or an index (`Table/index/Index`).
    pub fn partition_key(&self, of: &str, attribute: &str) {
        if let Ok(mut names) = self.0.names.lock() {
            names
                .partition_keys
                .insert(of.to_owned(), attribute.to_owned());
        }
    }

    /// The distinct calls seen so far by this process.
    pub fn seen(&self) -> BTreeSet<Call> {
        self.0
            .seen
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn logical(&self, physical: &str) -> String {
        self.0
            .names
            .lock()
            .ok()
            .and_then(|n| n.logical.get(physical).cloned())
            .unwrap_or_else(|| format!("<unknown {physical}>"))
    }

    fn record(&self, call: Call) {
        let new = self
            .0
            .seen
            .lock()
            .map(|mut seen| seen.insert(call.clone()))
            .unwrap_or(false);
        if new {
            if let Ok(mut file) = self.0.file.lock() {
                if let Some(file) = file.as_mut() {
                    let _ = writeln!(file, "{}", call.line());
                }
            }
        }
    }

    /// The calls one request makes, as IAM authorises them. `target` is its `X-Amz-Target`
    /// (`DynamoDB_20120810.UpdateItem`), `body` its JSON.
    pub fn calls(&self, function: &str, target: &str, body: &Value) -> Vec<Call> {
        let (prefix, operation) = target.rsplit_once('.').unwrap_or(("", target));
        let call =
            |action: String, resource: String, context: BTreeMap<String, ContextValue>| Call {
                function: function.to_owned(),
                action,
                resource,
                context,
            };
        match prefix {
            p if p.starts_with("DynamoDBStreams") => {
                vec![call(
                    format!("dynamodb:{operation}"),
                    self.stream_resource(operation, body),
                    BTreeMap::new(),
                )]
            }
            p if p.starts_with("DynamoDB") => self
                .dynamodb_calls(operation, body)
                .into_iter()
                .map(|(action, resource, context)| call(action, resource, context))
                .collect(),
            "TrentService" => {
                let key = body["KeyId"].as_str().unwrap_or_default();
                let mut context = BTreeMap::new();
                if let Some(ec) = body["EncryptionContext"].as_object() {
                    context.insert("kms:EncryptionContextKeys".into(), many(ec.keys().cloned()));
                    for k in ec.keys() {
                        context.insert(format!("kms:EncryptionContext:{k}"), one(format!("<{k}>")));
                    }
                }
                if let Some(algorithm) = body["EncryptionAlgorithm"].as_str() {
                    context.insert("kms:EncryptionAlgorithm".into(), one(algorithm));
                }
                context.insert("kms:CallerAccount".into(), one(ACCOUNT));
                vec![call(
                    format!("kms:{operation}"),
                    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{}", self.logical(key)),
                    context,
                )]
            }
            "AWSCognitoIdentityProviderService" => {
                let pool = body["UserPoolId"].as_str().unwrap_or_default();
                vec![call(
                    format!("cognito-idp:{operation}"),
                    format!(
                        "arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{}",
                        self.logical(pool)
                    ),
                    BTreeMap::new(),
                )]
            }
            _ => vec![call(
                format!("<unmodelled {target}>"),
                "*".into(),
                BTreeMap::new(),
            )],
        }
    }

    fn stream_resource(&self, operation: &str, body: &Value) -> String {
        let arn = match operation {
            "GetRecords" => body["ShardIterator"].as_str().and_then(|it| {
                self.0
                    .names
                    .lock()
                    .ok()
                    .and_then(|n| n.iterators.get(it).cloned())
            }),
            _ => body["StreamArn"].as_str().map(str::to_owned),
        };
        match arn {
            // …:table/<physical>/stream/<label>
            Some(arn) => match arn
                .split("/stream/")
                .next()
                .and_then(|t| t.rsplit('/').next())
            {
                Some(table) => format!("{}/stream/{STREAM_LABEL}", table_arn(&self.logical(table))),
                None => format!("<unknown stream {arn}>"),
            },
            None if operation == "ListStreams" => "*".into(),
            None => "<unknown stream>".into(),
        }
    }

    /// `(action, resource, context)` per call a DynamoDB request is authorised as.
    fn dynamodb_calls(
        &self,
        operation: &str,
        body: &Value,
    ) -> Vec<(String, String, BTreeMap<String, ContextValue>)> {
        match operation {
            "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let (kind, inner) = item.as_object()?.iter().next()?;
                    let action = match kind.as_str() {
                        "Put" => "PutItem",
                        "Update" => "UpdateItem",
                        "Delete" => "DeleteItem",
                        "ConditionCheck" => "ConditionCheckItem",
                        "Get" => "GetItem",
                        _ => return None,
                    };
                    let (resource, mut context) = self.item_request(inner);
                    // ConditionCheckItem has no EnclosingOperation key (the Service
                    // Authorization Reference lists it for the other item actions).
                    if action != "ConditionCheckItem" {
                        context.insert("dynamodb:EnclosingOperation".into(), one(operation));
                    }
                    Some((format!("dynamodb:{action}"), resource, context))
                })
                .collect(),
            "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(table, requests)| {
                    let logical = self.logical(table);
                    let mut names = BTreeSet::new();
                    for request in requests.as_array().into_iter().flatten() {
                        for kind in ["PutRequest", "DeleteRequest"] {
                            for part in ["Item", "Key"] {
                                if let Some(map) = request[kind][part].as_object() {
                                    names.extend(map.keys().cloned());
                                }
                            }
                        }
                    }
                    if let Some(keys) = requests["Keys"].as_array() {
                        for key in keys {
                            names.extend(
                                key.as_object()
                                    .into_iter()
                                    .flatten()
                                    .map(|(k, _)| k.clone()),
                            );
                        }
                    }
                    let mut context = BTreeMap::new();
                    context.insert("dynamodb:Attributes".into(), list(names));
                    (
                        format!("dynamodb:{operation}"),
                        table_arn(&logical),
                        context,
                    )
                })
                .collect(),
            _ => {
                let (resource, context) = self.item_request(body);
                vec![(format!("dynamodb:{operation}"), resource, context)]
            }
        }
    }

    /// The resource and context keys of a single-table request (or transaction item).
    fn item_request(&self, body: &Value) -> (String, BTreeMap<String, ContextValue>) {
        let keyed_request = body.get("Key").is_some()
            || body.get("Item").is_some()
            || body.get("KeyConditionExpression").is_some();
        let table = self.logical(body["TableName"].as_str().unwrap_or_default());
        let (resource, keyed) = match body["IndexName"].as_str() {
            Some(index) => (
                format!("{}/index/{index}", table_arn(&table)),
                format!("{table}/index/{index}"),
            ),
            None => (table_arn(&table), table.clone()),
        };
        let names = body["ExpressionAttributeNames"].as_object();
        let mut attributes = BTreeSet::new();
        for part in ["Key", "Item", "Expected", "AttributeUpdates"] {
            if let Some(map) = body[part].as_object() {
                attributes.extend(map.keys().cloned());
            }
        }
        if let Some(list) = body["AttributesToGet"].as_array() {
            attributes.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
        }
        for expression in [
            "ProjectionExpression",
            "UpdateExpression",
            "ConditionExpression",
            "KeyConditionExpression",
            "FilterExpression",
        ] {
            if let Some(text) = body[expression].as_str() {
                attributes.extend(top_level_names(text, names));
            }
        }
        let mut context = BTreeMap::new();
        if !attributes.is_empty() {
            context.insert("dynamodb:Attributes".into(), list(attributes));
        }
        // LeadingKeys are the partition key values of a request that names its items by key
        // (a Scan names none).
        let partition = self
            .0
            .names
            .lock()
            .ok()
            .and_then(|n| n.partition_keys.get(&keyed).cloned())
            .filter(|_| keyed_request);
        if let Some(partition) = partition {
            context.insert(
                "dynamodb:LeadingKeys".into(),
                many([format!("<{partition}>")]),
            );
        }
        for (parameter, key) in [
            ("ReturnValues", "dynamodb:ReturnValues"),
            ("Select", "dynamodb:Select"),
            ("ReturnConsumedCapacity", "dynamodb:ReturnConsumedCapacity"),
        ] {
            if let Some(value) = body[parameter].as_str() {
                context.insert(key.into(), one(value));
            }
        }
        (resource, context)
    }

    /// Notes where a stream's shard iterators lead, from its answers.
    fn follow_iterators(&self, target: &str, request: &Value, response: &Value) {
        let stream = match target.rsplit_once('.').map(|(_, op)| op) {
            Some("GetShardIterator") => request["StreamArn"].as_str().map(str::to_owned),
            Some("GetRecords") => request["ShardIterator"].as_str().and_then(|it| {
                self.0
                    .names
                    .lock()
                    .ok()
                    .and_then(|n| n.iterators.get(it).cloned())
            }),
            _ => None,
        };
        let next = response["ShardIterator"]
            .as_str()
            .or_else(|| response["NextShardIterator"].as_str());
        if let (Some(stream), Some(next)) = (stream, next) {
            if let Ok(mut names) = self.0.names.lock() {
                // Iterators are single-use and expire: keep the map small.
                if names.iterators.len() > 10_000 {
                    names.iterators.clear();
                }
                names.iterators.insert(next.to_owned(), stream);
            }
        }
    }
}

fn list(names: BTreeSet<String>) -> ContextValue {
    many(names.into_iter().map(|n| normalize(&n)))
}

/// An attribute name as the ledger keeps it: the digits of names made per second or per day
/// (`rl_<second>`, `calls_<date>`) replaced, and a rate window's source (`rl_<second>_<an
/// address or /64>`) too, so one shape stands for every such name.
pub fn normalize(name: &str) -> String {
    if let Some((second, _source)) = name
        .strip_prefix("rl_")
        .and_then(|rest| rest.split_once('_'))
    {
        if !second.is_empty() && second.bytes().all(|b| b.is_ascii_digit()) {
            return "rl_<n>_<source>".to_owned();
        }
    }
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '-')
            {
                chars.next();
            }
            out.push_str("<n>");
        } else {
            out.push(c);
        }
    }
    out
}

/// The top-level attribute names an expression names: each path's first element, with
/// `#placeholders` resolved; functions, keywords and `:values` are not names.
pub fn top_level_names(expression: &str, names: Option<&Map<String, Value>>) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE",
    ];
    let chars: Vec<char> = expression.chars().collect();
    let mut found = BTreeSet::new();
    let mut i = 0;
    // Whether the previous significant character makes the next name a path's inner part.
    let mut after_dot = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' || c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_function = !word.starts_with('#') && j < chars.len() && chars[j] == '(';
            let is_keyword = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word));
            if !after_dot && !is_function && !is_keyword {
                let name = match word.strip_prefix('#') {
                    Some(_) => names
                        .and_then(|n| n.get(&word))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or(word),
                    None => word,
                };
                found.insert(name);
            }
            after_dot = false;
        } else if c == ':' {
            // A value placeholder: skip it whole.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            after_dot = false;
        } else if c == '.' {
            after_dot = true;
            i += 1;
        } else if c == '[' {
            // A list index: `a[0].b` stays inside the path.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else {
            if !c.is_whitespace() {
                after_dot = false;
            }
            i += 1;
        }
    }
    found
}

/// The access key id of a SigV4 `Authorization` header.
fn access_key_id(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next()
}

/// A stream read's request, kept for its answer (where the next iterator leads).
#[derive(Debug, Clone)]
struct PendingStreamRead {
    target: String,
    body: Value,
}

impl Storable for PendingStreamRead {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Ledger {
    fn name(&self) -> &'static str {
        "IamLedger"
    }

    /// Each attempt as signed: its key names the function (the request is gone by the
    /// attempt's end, sent).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.recording() {
            return Ok(());
        }
        let request = context.request();
        let headers = request.headers();
        let target = headers.get("x-amz-target").unwrap_or_default().to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if target.ends_with(".GetShardIterator") || target.ends_with(".GetRecords") {
            cfg.interceptor_state().store_put(PendingStreamRead {
                target: target.clone(),
                body: body.clone(),
            });
        }
        let Some(function) = headers
            .get("authorization")
            .and_then(access_key_id)
            .filter(|id| id.ends_with(FUNCTION_SUFFIX))
        else {
            return Ok(());
        };
        for call in self.calls(function, &target, &body) {
            self.record(call);
        }
        Ok(())
    }

    /// A stream read's answer: where its next shard iterator leads.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(pending) = cfg.load::<PendingStreamRead>().cloned() else {
            return Ok(());
        };
        if let Some(answer) = context
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        {
            self.follow_iterators(&pending.target, &pending.body, &answer);
        }
        Ok(())
    }
}

/// Every distinct call the files in `dir` hold.
pub fn read_dir(dir: &std::path::Path) -> Result<BTreeSet<Call>, String> {
    let mut calls = BTreeSet::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            calls.insert(
                serde_json::from_str(line)
                    .map_err(|e| format!("{}: {e}: {line}", path.display()))?,
            );
        }
    }
    Ok(calls)
}

/// The committed ledger file's calls.
pub fn read_file(path: &std::path::Path) -> Result<BTreeSet<Call>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let calls: Vec<Call> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(calls.into_iter().collect())
}

/// The ledger file's text: a JSON array, one call a line, in order, so a change reads as a
/// line in review.
pub fn file_text(calls: &BTreeSet<Call>) -> String {
    let lines: Vec<String> = calls.iter().map(|c| format!("  {}", c.line())).collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn expressions_name_their_top_level_attributes() {
        let n = names(&[
            ("#now", "rl_1765000000"),
            ("#p2", "rl_1764999990"),
            ("#n", "name"),
        ]);
        assert_eq!(
            top_level_names("ADD #now :one REMOVE #p2, old", Some(&n)),
            BTreeSet::from(["rl_1765000000".into(), "rl_1764999990".into(), "old".into()])
        );
        assert_eq!(
            top_level_names(
                "attribute_exists(key_hash) AND attribute_not_exists(revoked_at) AND (attribute_not_exists(expires_at) OR expires_at > :now)",
                None
            ),
            BTreeSet::from(["key_hash".into(), "revoked_at".into(), "expires_at".into()])
        );
        assert_eq!(
            top_level_names(
                "SET a.b.c = :v, #n[2].x = if_not_exists(counts.total, :zero) + :one",
                Some(&n)
            ),
            BTreeSet::from(["a".into(), "name".into(), "counts".into()])
        );
        assert_eq!(
            top_level_names("pk = :org AND begins_with(sk, :prefix)", None),
            BTreeSet::from(["pk".into(), "sk".into()])
        );
        assert_eq!(
            top_level_names(
                "size(tags) > :n AND contains(scopes, :s) OR NOT #n IN (:a, :b)",
                Some(&n)
            ),
            BTreeSet::from(["tags".into(), "scopes".into(), "name".into()])
        );
        assert_eq!(
            top_level_names("updated_key BETWEEN :a AND :b", None),
            BTreeSet::from(["updated_key".into()])
        );
    }

    #[test]
    fn per_second_and_per_day_names_normalize() {
        assert_eq!(normalize("rl_1765000000"), "rl_<n>");
        assert_eq!(normalize("rl_1765000000_203.0.113.7"), "rl_<n>_<source>");
        assert_eq!(
            normalize("rl_1765000000_2001:db8:1:2::/64"),
            "rl_<n>_<source>"
        );
        assert_eq!(normalize("rl_1765000000_none"), "rl_<n>_<source>");
        assert_eq!(normalize("calls_2026-12-06"), "calls_<n>");
        assert_eq!(normalize("key_hash"), "key_hash");
    }

    #[test]
    fn the_authenticating_update_is_one_call_with_its_attributes() {
        let ledger = Ledger::default();
        ledger.name("t1_ApiKeysTable", "ApiKeysTable");
        ledger.partition_key("ApiKeysTable", "key_hash");
        let body = json!({
            "TableName": "t1_ApiKeysTable",
            "Key": {"key_hash": {"S": "ab"}},
            "UpdateExpression": "ADD #now :one REMOVE #p2",
            "ConditionExpression": "attribute_exists(key_hash)",
            "ExpressionAttributeNames": {"#now": "rl_1765000000", "#p2": "rl_1764999990"},
            "ReturnValues": "ALL_NEW",
        });
        let calls = ledger.calls("MeFunction", "DynamoDB_20120810.UpdateItem", &body);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].action, "dynamodb:UpdateItem");
        assert_eq!(calls[0].resource, table_arn("ApiKeysTable"));
        assert_eq!(
            calls[0].context["dynamodb:Attributes"],
            many(["key_hash".into(), "rl_<n>".into()])
        );
        assert_eq!(
            calls[0].context["dynamodb:LeadingKeys"],
            many(["<key_hash>".into()])
        );
        assert_eq!(calls[0].context["dynamodb:ReturnValues"], one("ALL_NEW"));
    }

    #[test]
    fn a_transaction_is_authorised_item_by_item() {
        let ledger = Ledger::default();
        ledger.name("x_CustomersTable", "CustomersTable");
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "x_CustomersTable", "Item": {"pk": {"S": "o"}, "sk": {"S": "c"}, "full_name": {"S": "J"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Delete": {"TableName": "x_CustomersTable", "Key": {"pk": {"S": "o"}, "sk": {"S": "e"}}}},
            {"ConditionCheck": {"TableName": "x_CustomersTable", "Key": {"pk": {"S": "o"}, "sk": {"S": "m"}},
                                "ConditionExpression": "attribute_exists(owner)"}},
        ]});
        let calls = ledger.calls(
            "CreateCustomerFunction",
            "DynamoDB_20120810.TransactWriteItems",
            &body,
        );
        let actions: Vec<_> = calls.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem"
            ]
        );
        assert_eq!(
            calls[0].context["dynamodb:Attributes"],
            many(["full_name".into(), "pk".into(), "sk".into()])
        );
        assert_eq!(
            calls[0].context["dynamodb:EnclosingOperation"],
            one("TransactWriteItems")
        );
        assert!(!calls[2].context.contains_key("dynamodb:EnclosingOperation"));
        assert_eq!(
            calls[2].context["dynamodb:Attributes"],
            many(["owner".into(), "pk".into(), "sk".into()])
        );
    }

    #[test]
    fn kms_calls_carry_their_encryption_context_keys() {
        let ledger = Ledger::default();
        ledger.name(
            "arn:aws:kms:us-east-1:123456789012:key/abc",
            "ProviderKeysKey",
        );
        let body = json!({"KeyId": "arn:aws:kms:us-east-1:123456789012:key/abc", "KeySpec": "AES_256",
                          "EncryptionContext": {"org_id": "acme", "provider_key_id": "pk_1"}});
        let calls = ledger.calls(
            "CreateProviderKeyFunction",
            "TrentService.GenerateDataKey",
            &body,
        );
        assert_eq!(calls[0].action, "kms:GenerateDataKey");
        assert_eq!(
            calls[0].resource,
            format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/ProviderKeysKey")
        );
        assert_eq!(
            calls[0].context["kms:EncryptionContextKeys"],
            many(["org_id".into(), "provider_key_id".into()])
        );
        assert_eq!(
            calls[0].context["kms:EncryptionContext:org_id"],
            one("<org_id>")
        );
    }

    #[test]
    fn only_a_functions_key_is_a_functions_call() {
        assert_eq!(
            access_key_id("AWS4-HMAC-SHA256 Credential=MeFunction/20261206/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab"),
            Some("MeFunction")
        );
        assert_eq!(access_key_id("Bearer x"), None);
    }
}
