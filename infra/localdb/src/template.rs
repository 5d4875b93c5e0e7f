//! Reading template.yaml: the tables (to create them locally exactly as CloudFormation
//! would), the environment that names them, and the HTTP API routes.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde_yaml_ng::Value;

use crate::LocalError;

/// An HTTP API route a function declares; `method` and `path` are `None` for `$default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRoute {
    pub function: String,
    pub binary: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The HTTP API authorizer the route sits behind (`Auth.Authorizer`), if any.
    pub authorizer: Option<String>,
}

/// A string of the template as written: a literal, `!Ref Id`, or `!Sub` with `${Id}` and
/// `${AWS::Region}` in it. Resolved against the physical ids of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateString {
    Literal(String),
    Ref(String),
    Sub(String),
}

impl TemplateString {
    fn read(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => Some(Self::Literal(text.clone())),
            Value::Tagged(tagged) => {
                let text = tagged.value.as_str()?.to_owned();
                if tagged.tag == "Ref" {
                    Some(Self::Ref(text))
                } else if tagged.tag == "Sub" {
                    Some(Self::Sub(text))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The value, `ids` giving each logical id's physical id (and `AWS::Region`).
    pub fn resolve(&self, ids: &BTreeMap<String, String>) -> Result<String, LocalError> {
        let lookup = |name: &str| {
            ids.get(name).cloned().ok_or_else(|| {
                err(format!(
                    "template names {name}, which the local stack does not have"
                ))
            })
        };
        match self {
            Self::Literal(text) => Ok(text.clone()),
            Self::Ref(name) => lookup(name),
            Self::Sub(text) => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..]
                        .find('}')
                        .ok_or_else(|| err(format!("unclosed ${{ in {text}")))?;
                    let name = &rest[start + 2..start + end];
                    let name = name.split('.').next().unwrap_or(name);
                    out.push_str(&lookup(name)?);
                    rest = &rest[start + end + 1..];
                }
                out.push_str(rest);
                Ok(out)
            }
        }
    }
}

/// An HTTP API JWT authorizer as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizerSpec {
    pub name: String,
    pub identity_source: String,
    pub issuer: TemplateString,
    pub audience: Vec<TemplateString>,
}

#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

fn err(msg: impl Into<String>) -> LocalError {
    LocalError::Template(msg.into())
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn str_at<'a>(value: &'a Value, key: &str, ctx: &str) -> Result<&'a str, LocalError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{ctx}: missing string {key}")))
}

fn list_at<'a>(value: &'a Value, key: &str, ctx: &str) -> Result<&'a [Value], LocalError> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .ok_or_else(|| err(format!("{ctx}: missing list {key}")))
}

fn key_schema(list: &[Value], ctx: &str) -> Result<Vec<KeySchemaElement>, LocalError> {
    list.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_at(k, "AttributeName", ctx)?)
                .key_type(KeyType::from(str_at(k, "KeyType", ctx)?))
                .build()
                .map_err(|e| err(format!("{ctx}: {e}")))
        })
        .collect()
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, LocalError> {
        let root: Value = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        Ok(Self { root })
    }

    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// The repository's own template.yaml.
    pub fn load_default() -> Result<Self, LocalError> {
        Self::load(&crate::workspace_root().join("template.yaml"))
    }

    fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(name, r)| Some((name.as_str()?, r)))
    }

    /// Logical ids of the DynamoDB tables.
    pub fn table_ids(&self) -> Vec<String> {
        self.resources_of_type("AWS::DynamoDB::Table")
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// Environment variables (from Globals) that `!Ref` a table: variable → logical id.
    pub fn table_env_vars(&self) -> BTreeMap<String, String> {
        let tables = self.table_ids();
        let vars = self
            .root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping);
        let mut out = BTreeMap::new();
        for (name, value) in vars.into_iter().flatten() {
            let is_ref = matches!(value, Value::Tagged(t) if t.tag == "Ref");
            if let (Some(name), Some(target), true) = (name.as_str(), untag(value).as_str(), is_ref)
            {
                if tables.iter().any(|t| t == target) {
                    out.insert(name.to_owned(), target.to_owned());
                }
            }
        }
        out
    }

    /// The functions' timeout (`Globals.Function.Timeout`), in seconds.
    pub fn function_timeout_secs(&self) -> Option<u64> {
        self.root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Timeout"))
            .and_then(Value::as_u64)
    }

    /// The JWT authorizers of the template's HTTP APIs.
    pub fn jwt_authorizers(&self) -> Result<Vec<JwtAuthorizerSpec>, LocalError> {
        let mut out = Vec::new();
        for (api, resource) in self.resources_of_type("AWS::Serverless::HttpApi") {
            let authorizers = resource
                .get("Properties")
                .and_then(|p| p.get("Auth"))
                .and_then(|a| a.get("Authorizers"))
                .and_then(Value::as_mapping);
            for (name, spec) in authorizers.into_iter().flatten() {
                let name = name.as_str().unwrap_or_default().to_owned();
                let ctx = format!("{api}.{name}");
                let jwt = spec.get("JwtConfiguration").ok_or_else(|| {
                    err(format!("{ctx}: only JWT authorizers are supported locally"))
                })?;
                let issuer = jwt
                    .get("issuer")
                    .and_then(TemplateString::read)
                    .ok_or_else(|| err(format!("{ctx}: no issuer")))?;
                let audience = list_at(jwt, "audience", &ctx)?
                    .iter()
                    .map(|a| {
                        TemplateString::read(a).ok_or_else(|| err(format!("{ctx}: bad audience")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(JwtAuthorizerSpec {
                    identity_source: spec
                        .get("IdentitySource")
                        .and_then(Value::as_str)
                        .unwrap_or("$request.header.Authorization")
                        .to_owned(),
                    name,
                    issuer,
                    audience,
                });
            }
        }
        Ok(out)
    }

    /// The properties of the one resource of `kind` (e.g. the user pool), with its id.
    pub fn single_resource(&self, kind: &str) -> Result<(String, Value), LocalError> {
        let mut found = self.resources_of_type(kind);
        let (id, resource) = found
            .next()
            .ok_or_else(|| err(format!("template.yaml declares no {kind}")))?;
        if found.next().is_some() {
            return Err(err(format!("template.yaml declares more than one {kind}")));
        }
        Ok((
            id.to_owned(),
            resource.get("Properties").cloned().unwrap_or(Value::Null),
        ))
    }

    /// Every HttpApi event of every function.
    pub fn routes(&self) -> Vec<DeclaredRoute> {
        let mut routes = Vec::new();
        for (function, resource) in self.resources_of_type("AWS::Serverless::Function") {
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for (_, event) in events.into_iter().flatten() {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event.get("Properties");
                let field = |k: &str| {
                    props
                        .and_then(|p| p.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let authorizer = props
                    .and_then(|p| p.get("Auth"))
                    .and_then(|a| a.get("Authorizer"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                routes.push(DeclaredRoute {
                    function: function.to_owned(),
                    binary: binary.clone(),
                    method: field("Method"),
                    path: field("Path"),
                    authorizer,
                });
            }
        }
        routes
    }

    /// Creates every table of the template, named `{prefix}{LogicalId}`, with its keys,
    /// indexes, TTL and stream. Returns logical id → table name.
    pub async fn create_tables(
        &self,
        client: &aws_sdk_dynamodb::Client,
        prefix: &str,
    ) -> Result<BTreeMap<String, String>, LocalError> {
        let mut names = BTreeMap::new();
        for (id, resource) in self.resources_of_type("AWS::DynamoDB::Table") {
            let props = resource
                .get("Properties")
                .ok_or_else(|| err(format!("{id}: no Properties")))?;
            if props.get("LocalSecondaryIndexes").is_some() {
                return Err(err(format!(
                    "{id}: LocalSecondaryIndexes are not supported by the local stack yet"
                )));
            }
            if let Some(mode) = props.get("BillingMode").and_then(Value::as_str) {
                if mode != "PAY_PER_REQUEST" {
                    return Err(err(format!(
                        "{id}: only PAY_PER_REQUEST billing is supported locally"
                    )));
                }
            }
            let name = format!("{prefix}{id}");
            // The IAM ledger names calls by the template's ids, and knows each key's
            // partition attribute (dynamodb:LeadingKeys).
            let ledger = crate::Ledger::global();
            ledger.name(&name, id);
            if let Some(partition) = hash_key_of(list_at(props, "KeySchema", id)?) {
                ledger.partition_key(id, &partition);
            }
            for index in props
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let (Some(index_name), Some(partition)) = (
                    index.get("IndexName").and_then(Value::as_str),
                    hash_key_of(list_at(index, "KeySchema", id)?),
                ) {
                    ledger.partition_key(&format!("{id}/index/{index_name}"), &partition);
                }
            }
            let definitions = list_at(props, "AttributeDefinitions", id)?
                .iter()
                .map(|a| {
                    AttributeDefinition::builder()
                        .attribute_name(str_at(a, "AttributeName", id)?)
                        .attribute_type(ScalarAttributeType::from(str_at(a, "AttributeType", id)?))
                        .build()
                        .map_err(|e| err(format!("{id}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut request = client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(definitions))
                .set_key_schema(Some(key_schema(list_at(props, "KeySchema", id)?, id)?));
            if let Some(indexes) = props
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
            {
                for index in indexes {
                    let projection = index.get("Projection");
                    let kind = projection
                        .and_then(|p| p.get("ProjectionType"))
                        .and_then(Value::as_str)
                        .unwrap_or("ALL");
                    let non_key: Option<Vec<String>> = projection
                        .and_then(|p| p.get("NonKeyAttributes"))
                        .and_then(Value::as_sequence)
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        });
                    let gsi = GlobalSecondaryIndex::builder()
                        .index_name(str_at(index, "IndexName", id)?)
                        .set_key_schema(Some(key_schema(list_at(index, "KeySchema", id)?, id)?))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::from(kind))
                                .set_non_key_attributes(non_key)
                                .build(),
                        )
                        .build()
                        .map_err(|e| err(format!("{id}: {e}")))?;
                    request = request.global_secondary_indexes(gsi);
                }
            }
            if let Some(stream) = props.get("StreamSpecification") {
                let view = str_at(stream, "StreamViewType", id)?;
                let spec = StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .map_err(|e| err(format!("{id}: {e}")))?;
                request = request.stream_specification(spec);
            }
            match request.send().await {
                Ok(_) => {}
                // An attempt that timed out on a loaded machine made the table before the
                // SDK's retry asked again: the name is this call's own (its prefix), so the
                // table is the one it asked for.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => {
                    return Err(LocalError::DynamoDb(format!(
                        "CreateTable {name}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )))
                }
            }
            if let Some(ttl) = props.get("TimeToLiveSpecification") {
                if ttl.get("Enabled").and_then(Value::as_bool) == Some(true) {
                    let spec = TimeToLiveSpecification::builder()
                        .attribute_name(str_at(ttl, "AttributeName", id)?)
                        .enabled(true)
                        .build()
                        .map_err(|e| err(format!("{id}: {e}")))?;
                    client
                        .update_time_to_live()
                        .table_name(&name)
                        .time_to_live_specification(spec)
                        .send()
                        .await
                        .map_err(|e| {
                            LocalError::DynamoDb(format!(
                                "UpdateTimeToLive {name}: {}",
                                aws_sdk_dynamodb::error::DisplayErrorContext(e)
                            ))
                        })?;
                }
            }
            names.insert(id.to_owned(), name);
        }
        Ok(names)
    }
}

/// The HASH attribute of a `KeySchema`.
fn hash_key_of(schema: &[Value]) -> Option<String> {
    schema
        .iter()
        .find(|k| k.get("KeyType").and_then(Value::as_str) == Some("HASH"))
        .and_then(|k| k.get("AttributeName"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_table(template: &Template, var: &str) -> Option<String> {
        template.table_env_vars().get(var).cloned()
    }

    #[test]
    fn reads_the_repository_template() {
        let template = Template::load_default().unwrap();
        let mut ids = template.table_ids();
        ids.sort();
        assert_eq!(
            ids,
            [
                "ApiKeysTable",
                "AuditEventsTable",
                "AuditHeadsTable",
                "CustomersTable",
                "IdempotencyTable",
                "MembersTable",
                "ProviderKeysTable",
                "RequestLogTable",
                "WebhookDeliveriesTable",
                "WebhookEndpointsTable"
            ]
        );
        assert_eq!(
            env_table(&template, "MEMBERS_TABLE").as_deref(),
            Some("MembersTable")
        );
        assert_eq!(
            env_table(&template, "PROVIDER_KEYS_TABLE").as_deref(),
            Some("ProviderKeysTable")
        );
        // The member authorizer: the pool as issuer, its app client as the audience.
        let authorizers = template.jwt_authorizers().unwrap();
        assert_eq!(authorizers.len(), 1);
        let ids = BTreeMap::from([
            ("AWS::Region".to_owned(), "eu-west-1".to_owned()),
            ("MemberPool".to_owned(), "eu-west-1_abc".to_owned()),
            ("MemberPoolClient".to_owned(), "client123".to_owned()),
        ]);
        assert_eq!(
            authorizers[0].issuer.resolve(&ids).unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(
            authorizers[0].audience[0].resolve(&ids).unwrap(),
            "client123"
        );
        assert!(authorizers[0].issuer.resolve(&BTreeMap::new()).is_err());
        let env = template.table_env_vars();
        assert_eq!(
            env.get("API_KEYS_TABLE").map(String::as_str),
            Some("ApiKeysTable")
        );
        assert_eq!(
            env.get("CUSTOMERS_TABLE").map(String::as_str),
            Some("CustomersTable")
        );
        assert_eq!(
            env.get("REQUEST_LOG_TABLE").map(String::as_str),
            Some("RequestLogTable")
        );
        assert_eq!(
            env.get("IDEMPOTENCY_TABLE").map(String::as_str),
            Some("IdempotencyTable")
        );
        let routes = template.routes();
        assert!(
            routes
                .iter()
                .any(|r| r.method.is_none() && r.path.is_none()),
            "a $default route"
        );
        assert!(
            routes.iter().all(|r| r.binary.is_some()),
            "every function names its binary"
        );
    }

    #[test]
    fn env_vars_only_count_refs_to_tables() {
        let template = Template::parse(
            "Globals:\n  Function:\n    Environment:\n      Variables:\n        A: !Ref T\n        B: T\n        C: !Ref Other\n\
             Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n  Other:\n    Type: AWS::SQS::Queue\n",
        )
        .unwrap();
        assert_eq!(
            template.table_env_vars(),
            BTreeMap::from([("A".to_owned(), "T".to_owned())])
        );
    }
}
