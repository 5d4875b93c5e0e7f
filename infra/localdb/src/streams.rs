//! The local stack's event source mapping: it reads a table's stream from DynamoDB Local
//! (the same stream the deployed mapping reads), turns each batch of records into the JSON
//! Lambda hands a DynamoDB Streams function, and calls the same handler. As the mapping
//! does with `ReportBatchItemFailures`, a batch whose answer names a failed record is read
//! again from that record, after a pause; records of one shard go in order, a child shard
//! after its parent.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{json, Map, Value};

use crate::LocalError;

/// What a stream batch is handed to: the function's handler, its answer the
/// `{"batchItemFailures": […]}` object.
pub type Handler =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Value> + Send>> + Send + Sync + 'static>;

/// Records per batch, as the template's `BatchSize` would say.
pub const BATCH_SIZE: i32 = 100;
/// How often an idle shard is read again.
const POLL: Duration = Duration::from_millis(100);
/// The first pause before a failed batch is read again; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A DynamoDB Streams client for DynamoDB Local (the same dummy credentials).
pub fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    streams_client_as(endpoint, "local")
}

/// The same, signing as `access_key_id`: the event source mapping reads a stream with its
/// function's role, so the local one signs as the function (the IAM ledger's attribution).
pub fn streams_client_as(endpoint: &str, access_key_id: &str) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            access_key_id,
            "local",
            None,
            None,
            "dynamodb-local",
        ))
        .interceptor(crate::Ledger::global().clone())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// An attribute value as Lambda's event JSON writes it (`{"S": "…"}`, `{"N": "1"}`, …).
pub fn attribute_json(value: &AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::primitives::Blob;
    let b64 = |blob: &Blob| base64_encode(blob.as_ref());
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(list) => json!({"SS": list}),
        AttributeValue::Ns(list) => json!({"NS": list}),
        AttributeValue::Bs(list) => json!({"BS": list.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::L(list) => {
            json!({"L": list.iter().map(attribute_json).collect::<Vec<_>>()})
        }
        AttributeValue::M(map) => json!({"M": image_json(map)}),
        // A type newer than this code: kept visible rather than dropped.
        _ => json!({"NULL": true}),
    }
}

fn image_json(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        image
            .iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect::<Map<_, _>>(),
    )
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One record as Lambda's DynamoDB Streams event carries it.
pub fn record_json(record: &Record, stream_arn: &str) -> Value {
    let mut data = Map::new();
    if let Some(change) = record.dynamodb() {
        if let Some(at) = change.approximate_creation_date_time() {
            data.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        if let Some(keys) = change.keys() {
            data.insert("Keys".into(), image_json(keys));
        }
        if let Some(image) = change.new_image() {
            data.insert("NewImage".into(), image_json(image));
        }
        if let Some(image) = change.old_image() {
            data.insert("OldImage".into(), image_json(image));
        }
        if let Some(sequence) = change.sequence_number() {
            data.insert("SequenceNumber".into(), json!(sequence));
        }
        if let Some(size) = change.size_bytes() {
            data.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = change.stream_view_type() {
            data.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region(),
        "dynamodb": Value::Object(data),
        "eventSourceARN": stream_arn,
    })
}

fn sequence_of(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

/// The sequence number a handler's answer names as failed, if any.
fn failed_sequence(answer: &Value) -> Option<String> {
    answer
        .get("batchItemFailures")?
        .as_array()?
        .iter()
        .filter_map(|f| f.get("itemIdentifier")?.as_str())
        .next()
        .map(str::to_owned)
}

fn streams_error<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
    e: aws_sdk_dynamodbstreams::error::SdkError<E>,
) -> LocalError {
    LocalError::DynamoDb(format!(
        "{what}: {}",
        aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
    ))
}

/// DynamoDB Local writes an empty map attribute in a stream record as `{}` rather than
/// `{"M": {}}`, which no SDK parses (nor would Lambda's event carry it): made whole again.
fn mend_attribute(value: &mut Value) {
    match value {
        Value::Object(map) if map.is_empty() => *value = json!({"M": {}}),
        Value::Object(map) => {
            if let Some(Value::Object(inner)) = map.get_mut("M") {
                inner.values_mut().for_each(mend_attribute);
            }
            if let Some(Value::Array(list)) = map.get_mut("L") {
                list.iter_mut().for_each(mend_attribute);
            }
        }
        _ => {}
    }
}

fn mend_record(record: &mut Value, stream_arn: &str) {
    for image in ["Keys", "NewImage", "OldImage"] {
        if let Some(Value::Object(map)) = record.get_mut("dynamodb").and_then(|d| d.get_mut(image))
        {
            map.values_mut().for_each(mend_attribute);
        }
    }
    if let Value::Object(map) = record {
        map.insert("eventSourceARN".into(), json!(stream_arn));
    }
}

/// What one `GetRecords` gives: the records as Lambda's event carries them, and the next
/// iterator (none once a closed shard is read to its end).
type Page = (Vec<Value>, Option<String>);

/// `GetRecords`, its records as Lambda's JSON. When the SDK cannot parse DynamoDB Local's
/// answer (an empty map, see [`mend_attribute`]), the answer's own JSON is mended and used.
async fn get_records(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    iterator: &str,
) -> Result<
    Page,
    aws_sdk_dynamodbstreams::error::SdkError<
        aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError,
        aws_sdk_dynamodbstreams::config::http::HttpResponse,
    >,
> {
    use aws_sdk_dynamodbstreams::error::SdkError;
    match client
        .get_records()
        .shard_iterator(iterator)
        .limit(BATCH_SIZE)
        .send()
        .await
    {
        Ok(page) => Ok((
            page.records()
                .iter()
                .map(|r| record_json(r, stream_arn))
                .collect(),
            page.next_shard_iterator().map(str::to_owned),
        )),
        Err(SdkError::ServiceError(failure)) if failure.err().meta().code().is_none() => {
            let raw: Option<Value> = failure
                .raw()
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok());
            match raw {
                Some(mut answer) if answer.get("Records").is_some() => {
                    let mut records = match answer.get_mut("Records").map(Value::take) {
                        Some(Value::Array(records)) => records,
                        _ => Vec::new(),
                    };
                    records.iter_mut().for_each(|r| mend_record(r, stream_arn));
                    let next = answer
                        .get("NextShardIterator")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Ok((records, next))
                }
                _ => Err(SdkError::ServiceError(failure)),
            }
        }
        Err(e) => Err(e),
    }
}

/// The stream of `table` (the template gave it a `StreamSpecification`).
pub async fn stream_arn(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, LocalError> {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            LocalError::DynamoDb(format!(
                "DescribeTable {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))
        })?;
    described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .ok_or_else(|| LocalError::Setup(format!("{table} has no stream")))
}

/// Where a shard is read from next.
#[derive(Debug, Clone)]
enum Position {
    /// Its oldest record (nothing handled yet).
    Start,
    /// The record after this one (handled).
    After(String),
    /// This record (a failed batch is read again from it).
    At(String),
    /// Read to its end: the shard is closed.
    Done,
}

#[derive(Debug)]
struct Shard {
    position: Position,
    iterator: Option<String>,
}

/// When a worker last found nothing to do: the instant its idle pass began. Everything
/// that was there before that instant had been handled, so a test waits on this ("the
/// dispatcher is idle") instead of sleeping before a "nothing more arrived" check.
pub type Idle = tokio::sync::watch::Receiver<Option<tokio::time::Instant>>;

/// Waits until `idle` reports a pass begun at or after `since`; false if the worker ended.
pub async fn idle_since(idle: &mut Idle, since: tokio::time::Instant) -> bool {
    idle.wait_for(|at| at.is_some_and(|at| at >= since))
        .await
        .is_ok()
}

/// A stream followed by a task of its own.
pub struct Follower {
    pub task: tokio::task::JoinHandle<()>,
    pub idle: Idle,
}

/// Follows one stream from its oldest record, batch by batch, for ever (abort the task to
/// stop). Errors reading the stream are reported on stderr and retried. Each pass that
/// found no records is reported on `idle`.
pub async fn follow(
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    handler: Handler,
    idle: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
) {
    let mut shards: HashMap<String, Shard> = HashMap::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let began = tokio::time::Instant::now();
        match read_once(&client, &stream_arn, &handler, &mut shards).await {
            Ok(busy) => {
                backoff = FIRST_BACKOFF;
                if !busy {
                    idle.send_replace(Some(began));
                    tokio::time::sleep(POLL).await;
                }
            }
            Err(err) => {
                eprintln!("local-stack: stream {stream_arn}: {err}; reading again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Starts following `table`'s stream on DynamoDB Local at `endpoint`, read as `function`
/// (its logical id) reads it through its event source mapping; the task runs until aborted.
pub async fn follow_table(
    client: &aws_sdk_dynamodb::Client,
    endpoint: &str,
    table: &str,
    function: &str,
    handler: Handler,
) -> Result<Follower, LocalError> {
    let arn = stream_arn(client, table).await?;
    let (report, idle) = tokio::sync::watch::channel(None);
    let reader = streams_client_as(endpoint, function);
    Ok(Follower {
        task: tokio::spawn(follow(reader, arn, handler, report)),
        idle,
    })
}

/// The stream's shards, as DescribeStream lists them.
async fn list_shards(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
) -> Result<Vec<aws_sdk_dynamodbstreams::types::Shard>, LocalError> {
    let described = client
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .map_err(|e| streams_error("DescribeStream", e))?;
    Ok(described
        .stream_description()
        .map(|d| d.shards().to_vec())
        .unwrap_or_default())
}

/// An iterator over shard `id` from `position` (none for a shard with nothing to read).
async fn shard_iterator(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    id: &str,
    position: &Position,
) -> Result<Option<String>, LocalError> {
    let request = client
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(id);
    let request = match position {
        Position::Start | Position::Done => {
            request.shard_iterator_type(ShardIteratorType::TrimHorizon)
        }
        Position::After(sequence) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence),
        Position::At(sequence) => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(sequence),
    };
    let got = request
        .send()
        .await
        .map_err(|e| streams_error("GetShardIterator", e))?;
    Ok(got.shard_iterator().map(str::to_owned))
}

/// Every record of the stream so far, from every shard, in one batch as Lambda would
/// hand it over (for tests that call a handler themselves).
pub async fn read_all(endpoint: &str, stream_arn: &str) -> Result<Value, LocalError> {
    let client = streams_client(endpoint);
    let mut records = Vec::new();
    for shard in list_shards(&client, stream_arn).await? {
        let Some(id) = shard.shard_id() else { continue };
        let mut iterator = shard_iterator(&client, stream_arn, id, &Position::Start).await?;
        while let Some(current) = iterator.take() {
            let (page, next) = get_records(&client, stream_arn, &current)
                .await
                .map_err(|e| streams_error("GetRecords", e))?;
            if page.is_empty() {
                break;
            }
            records.extend(page);
            iterator = next;
        }
    }
    Ok(json!({ "Records": records }))
}

/// One pass: every readable shard read once. Whether any records were handed over.
async fn read_once(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    handler: &Handler,
    shards: &mut HashMap<String, Shard>,
) -> Result<bool, LocalError> {
    let listed = list_shards(client, stream_arn).await?;
    let known: BTreeSet<String> = listed
        .iter()
        .filter_map(|s| s.shard_id().map(str::to_owned))
        .collect();
    let mut busy = false;
    for listed_shard in &listed {
        let Some(id) = listed_shard.shard_id() else {
            continue;
        };
        // A child waits for its parent to be read to the end.
        if let Some(parent) = listed_shard.parent_shard_id() {
            let parent_done = shards
                .get(parent)
                .is_some_and(|p| matches!(p.position, Position::Done));
            if known.contains(parent) && !parent_done {
                continue;
            }
        }
        let shard = shards.entry(id.to_owned()).or_insert(Shard {
            position: Position::Start,
            iterator: None,
        });
        if matches!(shard.position, Position::Done) {
            continue;
        }
        busy |= read_shard(client, stream_arn, handler, id, shard).await?;
    }
    Ok(busy)
}

/// One batch of one shard, handed over. Whether there were records.
async fn read_shard(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    handler: &Handler,
    id: &str,
    shard: &mut Shard,
) -> Result<bool, LocalError> {
    let iterator = match shard.iterator.take() {
        Some(iterator) => iterator,
        None => match shard_iterator(client, stream_arn, id, &shard.position).await? {
            Some(iterator) => iterator,
            None => return Ok(false),
        },
    };
    let (records, next) = match get_records(client, stream_arn, &iterator).await {
        Ok(page) => page,
        // DynamoDB Local answers this for an iterator taken while the shard was empty,
        // and an iterator may expire: a fresh one from the same position next time.
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_trimmed_data_access_exception() || e.is_expired_iterator_exception()
            }) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(streams_error("GetRecords", e)),
    };
    if records.is_empty() {
        match next {
            Some(next) => shard.iterator = Some(next),
            None if !matches!(shard.position, Position::Start) => shard.position = Position::Done,
            // An empty shard without a next iterator: ask again from its start.
            None => {}
        }
        return Ok(false);
    }
    let batch = json!({ "Records": records });
    let answer = handler(batch).await;
    match failed_sequence(&answer) {
        None => {
            if let Some(last) = records.last().and_then(sequence_of) {
                shard.position = Position::After(last.to_owned());
            }
            match next {
                Some(next) => shard.iterator = Some(next),
                None => shard.position = Position::Done,
            }
        }
        Some(sequence) => {
            // As the mapping retries: from the failed record, after a pause. Records
            // before it in the batch were handled.
            if let Some(handled) = records
                .iter()
                .take_while(|r| sequence_of(r) != Some(&sequence))
                .last()
                .and_then(sequence_of)
            {
                shard.position = Position::After(handled.to_owned());
            }
            if records.iter().any(|r| sequence_of(r) == Some(&sequence)) {
                shard.position = Position::At(sequence);
            }
            shard.iterator = None;
            tokio::time::sleep(FIRST_BACKOFF).await;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_written_as_lambda_writes_them() {
        let mut inner = HashMap::new();
        inner.insert("n".to_owned(), AttributeValue::N("1.5".into()));
        let value = AttributeValue::L(vec![
            AttributeValue::S("a".into()),
            AttributeValue::Bool(false),
            AttributeValue::Null(true),
            AttributeValue::Ss(vec!["x".into(), "y".into()]),
            AttributeValue::M(inner),
        ]);
        assert_eq!(
            attribute_json(&value),
            json!({"L": [
                {"S": "a"}, {"BOOL": false}, {"NULL": true}, {"SS": ["x", "y"]},
                {"M": {"n": {"N": "1.5"}}}
            ]})
        );
    }

    #[test]
    fn empty_maps_from_dynamodb_local_are_mended_at_any_depth() {
        let mut record = json!({"dynamodb": {"NewImage": {
            "metadata": {},
            "aml": {"M": {"extra": {}, "categories": {"L": [{}]}}},
            "name": {"S": "x"}
        }}});
        mend_record(&mut record, "arn:stream");
        assert_eq!(
            record,
            json!({"dynamodb": {"NewImage": {
                "metadata": {"M": {}},
                "aml": {"M": {"extra": {"M": {}}, "categories": {"L": [{"M": {}}]}}},
                "name": {"S": "x"}
            }}, "eventSourceARN": "arn:stream"})
        );
    }

    #[test]
    fn a_failed_record_is_read_from_the_answer() {
        assert_eq!(
            failed_sequence(&json!({"batchItemFailures": [{"itemIdentifier": "42"}]})),
            Some("42".to_owned())
        );
        assert_eq!(failed_sequence(&json!({"batchItemFailures": []})), None);
        assert_eq!(failed_sequence(&json!({})), None);
    }
}
