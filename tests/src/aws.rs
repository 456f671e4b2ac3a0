//! The AWS test harness: a fresh set of the storage `infra/template.yaml`
//! declares (DynamoDB tables, S3 buckets, the signing-key secret) on an
//! AWS-compatible server (moto) on loopback, and the adapters over it. The
//! conformance suite tests the adapters on it; the end-to-end suite runs the
//! whole local server on it (`PUBLINKS_E2E_BACKEND=aws`).
//!
//! `scripts/test.sh` starts moto and sets the two variables read here:
//! `PUBLINKS_TEST_AWS_ENDPOINT` (moto's URL, or several: see [`endpoint`]) and `PUBLINKS_TEST_AWS_RESOURCES`
//! (the JSON `infra/local_resources.py` derives from the template). Every call
//! of [`environment`] creates its own tables, buckets and secret under a fresh
//! name prefix: tests never share storage, and no table definition is written
//! twice.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, Select,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use publinks_aws::{AwsClients, AwsConfig, DynamoCatalog, DynamoLinks, DynamoVisitors, S3BlobStore, load_signing_keys};
use publinks_domain::ids::AccountId;
use publinks_domain::signing::SigningKeys;
use publinks_domain::store::Stores;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The variable naming the AWS-compatible servers' URLs (moto on loopback; see [`endpoint`]).
pub const ENDPOINT_VAR: &str = "PUBLINKS_TEST_AWS_ENDPOINT";
/// The variable naming the JSON of the template's storage (`infra/local_resources.py`).
pub const RESOURCES_VAR: &str = "PUBLINKS_TEST_AWS_RESOURCES";

/// The AWS-compatible server every request of this test goes to; panics,
/// saying how to get one, when the variable is unset (a test on the AWS
/// adapters never falls back). The variable may name several servers,
/// separated by spaces: moto answers one request at a time, so
/// `scripts/test.sh` starts one per core and each test takes the one of its
/// nextest slot (`NEXTEST_TEST_GLOBAL_SLOT`, unique among the tests running
/// at once), which spreads the tests running together over the servers.
pub fn endpoint() -> String {
    let servers = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VAR} is not set: tests on the AWS adapters need an AWS-compatible server. \
             Run scripts/test.sh, which starts moto and sets it."
        )
    });
    let servers: Vec<&str> = servers.split_whitespace().collect();
    assert!(!servers.is_empty(), "{ENDPOINT_VAR} names no server");
    let slot = std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok().and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    servers[slot % servers.len()].to_string()
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string())
}

/// The storage `infra/template.yaml` declares, as `infra/local_resources.py` prints it.
fn resources() -> &'static Value {
    static RESOURCES: OnceLock<Value> = OnceLock::new();
    RESOURCES.get_or_init(|| {
        let path = std::env::var(RESOURCES_VAR).unwrap_or_else(|_| {
            panic!(
                "{RESOURCES_VAR} is not set: it names the JSON that infra/local_resources.py derives from \
                 infra/template.yaml. Run scripts/test.sh, which writes it and starts moto."
            )
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {RESOURCES_VAR}={path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    })
}

/// SDK configuration for moto: its endpoint, dummy static credentials.
async fn sdk_config() -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "publinks-tests");
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(publinks_aws::https_client(&publinks_aws::SdkRoots::default()))
        .endpoint_url(endpoint())
        .region(Region::new(region()))
        .credentials_provider(credentials)
        .load()
        .await
}

/// The `maxReceiveCount` of the archive queue's redrive policy in `infra/template.yaml`.
pub fn archive_queue_max_receive_count() -> u32 {
    let queues = list(&resources()["queues"], "queues");
    let queue = queues.iter().find(|q| q["logical_id"] == "ArchiveQueue").expect("the template declares ArchiveQueue");
    queue["max_receive_count"].as_u64().expect("ArchiveQueue has a redrive policy with maxReceiveCount") as u32
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what} should be a string in the resources JSON, found {v}"))
}

fn list<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    match v {
        Value::Null => &[],
        Value::Array(items) => items,
        other => panic!("{what} should be a list in the resources JSON, found {other}"),
    }
}

fn key_schema(v: &Value) -> Vec<KeySchemaElement> {
    list(v, "KeySchema")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"], "AttributeName"))
                .key_type(KeyType::from(text(&k["KeyType"], "KeyType")))
                .build()
                .expect("key schema element")
        })
        .collect()
}

fn projection(v: &Value) -> Projection {
    let non_key: Option<Vec<String>> = v
        .get("NonKeyAttributes")
        .map(|a| list(a, "NonKeyAttributes").iter().map(|n| text(n, "NonKeyAttributes").to_string()).collect());
    Projection::builder()
        .projection_type(ProjectionType::from(text(&v["ProjectionType"], "ProjectionType")))
        .set_non_key_attributes(non_key)
        .build()
}

fn throughput(v: &Value) -> Option<ProvisionedThroughput> {
    v.get("ProvisionedThroughput").map(|t| {
        ProvisionedThroughput::builder()
            .read_capacity_units(t["ReadCapacityUnits"].as_i64().expect("ReadCapacityUnits"))
            .write_capacity_units(t["WriteCapacityUnits"].as_i64().expect("WriteCapacityUnits"))
            .build()
            .expect("provisioned throughput")
    })
}

/// Creates one table from its CreateTable input (minus the name) and turns on its TTL.
async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, spec: &Value) {
    let input = &spec["create_table"];
    let known = [
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "StreamSpecification",
        "BillingMode",
        "ProvisionedThroughput",
    ];
    let fields = input.as_object().expect("create_table is an object");
    let unknown: Vec<_> = fields.keys().filter(|k| !known.contains(&k.as_str())).collect();
    assert!(unknown.is_empty(), "the harness does not apply {unknown:?} yet: teach create_table in tests/src/aws.rs");

    let mut request = client
        .create_table()
        .table_name(name)
        .set_key_schema(Some(key_schema(&input["KeySchema"])))
        .set_provisioned_throughput(throughput(input));
    for a in list(&input["AttributeDefinitions"], "AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"], "AttributeName"))
                .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"], "AttributeType")))
                .build()
                .expect("attribute definition"),
        );
    }
    for g in list(&input["GlobalSecondaryIndexes"], "GlobalSecondaryIndexes") {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&g["IndexName"], "IndexName"))
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(projection(&g["Projection"]))
                .set_provisioned_throughput(throughput(g))
                .build()
                .expect("global secondary index"),
        );
    }
    for l in list(&input["LocalSecondaryIndexes"], "LocalSecondaryIndexes") {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(text(&l["IndexName"], "IndexName"))
                .set_key_schema(Some(key_schema(&l["KeySchema"])))
                .projection(projection(&l["Projection"]))
                .build()
                .expect("local secondary index"),
        );
    }
    if let Some(billing) = input.get("BillingMode") {
        request = request.billing_mode(BillingMode::from(text(billing, "BillingMode")));
    }
    if let Some(stream) = input.get("StreamSpecification") {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(stream["StreamEnabled"].as_bool().unwrap_or(true))
                .stream_view_type(StreamViewType::from(text(&stream["StreamViewType"], "StreamViewType")))
                .build()
                .expect("stream specification"),
        );
    }
    request.send().await.unwrap_or_else(|e| panic!("create table {name}: {}", display(e)));

    for _ in 0..100 {
        let described = client.describe_table().table_name(name).send().await.expect("describe table");
        if described.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if let Some(ttl) = spec["ttl_attribute"].as_str() {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build().expect("ttl"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("TTL on {name}: {}", display(e)));
    }
}

fn lifecycle_rule(v: &Value) -> LifecycleRule {
    let mut rule = LifecycleRule::builder()
        .id(text(&v["ID"], "ID"))
        .status(ExpirationStatus::from(text(&v["Status"], "Status")))
        .filter(LifecycleRuleFilter::builder().prefix(v["Filter"]["Prefix"].as_str().unwrap_or("")).build());
    if let Some(days) = v["Expiration"]["Days"].as_i64() {
        rule = rule.expiration(LifecycleExpiration::builder().days(days as i32).build());
    }
    if let Some(days) = v["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].as_i64() {
        rule = rule.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(days as i32).build(),
        );
    }
    rule.build().expect("lifecycle rule")
}

async fn create_bucket(client: &aws_sdk_s3::Client, name: &str, spec: &Value) {
    let mut request = client.create_bucket().bucket(name);
    if region() != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region().as_str()))
                .build(),
        );
    }
    request.send().await.unwrap_or_else(|e| panic!("create bucket {name}: {}", display(e)));
    let rules: Vec<LifecycleRule> =
        list(&spec["lifecycle_rules"], "lifecycle_rules").iter().map(lifecycle_rule).collect();
    if !rules.is_empty() {
        client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().expect("lifecycle"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("lifecycle of {name}: {}", display(e)));
    }
}

/// Creates the secret as CloudFormation would: a random password (Secrets
/// Manager's own generator, with the template's options) under the template's key.
async fn create_secret(client: &aws_sdk_secretsmanager::Client, name: &str, spec: &Value) {
    let generate = &spec["generate"];
    assert!(generate.is_object(), "the harness only creates generated secrets; {spec} has no GenerateSecretString");
    let password = client
        .get_random_password()
        .password_length(generate["PasswordLength"].as_i64().unwrap_or(32))
        .exclude_characters(generate["ExcludeCharacters"].as_str().unwrap_or(""))
        .exclude_numbers(generate["ExcludeNumbers"].as_bool().unwrap_or(false))
        .exclude_punctuation(generate["ExcludePunctuation"].as_bool().unwrap_or(false))
        .exclude_uppercase(generate["ExcludeUppercase"].as_bool().unwrap_or(false))
        .exclude_lowercase(generate["ExcludeLowercase"].as_bool().unwrap_or(false))
        .include_space(generate["IncludeSpace"].as_bool().unwrap_or(false))
        .require_each_included_type(generate["RequireEachIncludedType"].as_bool().unwrap_or(true))
        .send()
        .await
        .unwrap_or_else(|e| panic!("random password: {}", display(e)))
        .random_password
        .expect("a password");
    let value = match generate["GenerateStringKey"].as_str() {
        Some(key) => {
            let template = generate["SecretStringTemplate"].as_str().unwrap_or("{}");
            let mut doc: serde_json::Map<String, Value> =
                serde_json::from_str(template).expect("SecretStringTemplate is a JSON object");
            doc.insert(key.to_string(), Value::String(password));
            Value::Object(doc).to_string()
        }
        None => password,
    };
    client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {name}: {}", display(e)));
}

/// Creates a queue with the template's attributes; returns its URL.
async fn create_queue(client: &aws_sdk_sqs::Client, name: &str, spec: &Value) -> String {
    let mut create = client.create_queue().queue_name(name);
    for (attribute, value) in spec["attributes"].as_object().into_iter().flatten() {
        let attribute = aws_sdk_sqs::types::QueueAttributeName::from(attribute.as_str());
        create = create.attributes(attribute, value.as_str().expect("attribute values are strings"));
    }
    let out = create.send().await.unwrap_or_else(|e| panic!("create queue {name}: {}", display(e)));
    out.queue_url.unwrap_or_else(|| panic!("SQS made {name} without a URL"))
}

fn display(e: impl std::error::Error) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}

/// Counts the requests the adapters send and get an answer to, by operation
/// (`DynamoDB.Query`, `S3.PutObject`...; presigning a URL sends nothing and
/// counts nothing): on AWS each is a round trip and is billed, so what a
/// visit or a cascade costs is told by these counts.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    /// The calls so far, by operation.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }

    /// The calls since `before` (a snapshot), by operation; zero counts left out.
    pub fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .map(|(op, n)| {
                let delta = n - before.get(&op).copied().unwrap_or(0);
                (op, delta)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Once per response received: a request that reached the server (a
    // retried one each time), not a URL presigned without sending anything.
    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_default();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// One fresh set of the template's storage, and the adapters over it.
pub struct AwsEnv {
    /// The names, as the functions would read them from their environment.
    pub config: AwsConfig,
    /// Every request the clients below send, counted.
    pub calls: CallCounter,
    /// Raw SDK clients, for tests that look at items and objects as stored.
    pub clients: AwsClients,
    /// The catalog on the catalog table.
    pub catalog: DynamoCatalog,
    /// Links on the links table, their audit log on the activity table.
    pub links: DynamoLinks,
    /// Downloads and throttle buckets on the activity table.
    pub visitors: DynamoVisitors,
    /// File bytes.
    pub assets: S3BlobStore,
    /// Generated ZIPs.
    pub downloads: S3BlobStore,
}

impl AwsEnv {
    /// The storage ports on this environment, wired as the Lambda functions
    /// wire them (`publinks_aws::runtime::AwsRuntime`): blobs in the assets bucket.
    pub fn stores(&self) -> Stores {
        self.config.stores(&self.clients)
    }

    /// An account's link bookkeeping as stored: its limit counter, its link
    /// items and its links' place items (each, read strongly where it can be).
    pub async fn link_bookkeeping(&self, account: AccountId) -> (u64, u64, u64) {
        let db = &self.clients.dynamodb;
        let table = &self.config.links_table;
        let counter = db
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("ACCOUNT#{account}")))
            .key("sk", AttributeValue::S("LINKS".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .and_then(|i| i.get("count").and_then(|c| c.as_n().ok()).map(|n| n.parse().unwrap()))
            .unwrap_or(0);
        let count = |index: Option<&str>, key: &str, partition: String, prefix: Option<&str>| {
            let mut q = db.query().table_name(table).set_index_name(index.map(str::to_string)).select(Select::Count);
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("#pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(p.into())),
                None => q.key_condition_expression("#pk = :pk"),
            };
            q.expression_attribute_names("#pk", key).expression_attribute_values(":pk", AttributeValue::S(partition))
        };
        let links = count(Some("gsi2"), "gsi2pk", format!("ACCOUNT#{account}#LINKS"), None).send().await.unwrap();
        let places = count(None, "pk", format!("ACCOUNT#{account}"), Some("PLACE#")).send().await.unwrap();
        (counter, links.count as u64, places.count as u64)
    }

    /// The dashboard functions' secret (`PUBLINKS_SECRET_ID`).
    pub fn secret_id(&self) -> &str {
        self.config.secret_id.as_deref().expect("infra/template.yaml names the dashboard functions' secret")
    }

    /// The signing keys derived from this environment's generated dashboard
    /// secret, read as a function reads them at its cold start (the local
    /// server assembled on the AWS adapters uses all of them).
    pub async fn signing_keys(&self) -> SigningKeys {
        load_signing_keys(&self.clients.secrets, self.secret_id())
            .await
            .unwrap_or_else(|e| panic!("the generated secret holds signing keys: {e}"))
    }
}

/// Creates every table, bucket and secret of the template under a new prefix.
pub async fn environment() -> AwsEnv {
    let sdk = sdk_config().await;
    let calls = CallCounter::default();
    let clients = counted_clients(&sdk, &calls);
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let all = resources();
    let mut env: HashMap<String, String> = HashMap::new();
    let mut name_of = |spec: &Value, name: String| {
        if let Some(var) = spec["env"].as_str() {
            env.insert(var.to_string(), name.clone());
        }
        name
    };
    for spec in list(&all["tables"], "tables") {
        let name = name_of(spec, format!("{prefix}-{}", text(&spec["logical_id"], "logical_id")));
        create_table(&clients.dynamodb, &name, spec).await;
    }
    for spec in list(&all["buckets"], "buckets") {
        let name = name_of(spec, format!("{prefix}-{}", text(&spec["logical_id"], "logical_id").to_lowercase()));
        create_bucket(&clients.s3, &name, spec).await;
    }
    for spec in list(&all["secrets"], "secrets") {
        let name = name_of(spec, format!("{prefix}/{}", text(&spec["logical_id"], "logical_id")));
        create_secret(&clients.secrets, &name, spec).await;
    }
    for spec in list(&all["queues"], "queues") {
        let name = format!("{prefix}-{}", text(&spec["logical_id"], "logical_id"));
        let url = create_queue(&clients.sqs, &name, spec).await;
        // Functions know a queue by its URL, which only SQS can tell.
        name_of(spec, url);
    }
    let config = AwsConfig::from_lookup(|var| env.get(var).cloned())
        .unwrap_or_else(|e| panic!("infra/template.yaml does not map every variable to a resource: {e}"))
        .with_endpoint(endpoint())
        .with_region(region());
    AwsEnv {
        catalog: config.catalog(&clients.dynamodb),
        links: config.links(&clients.dynamodb),
        visitors: config.visitors(&clients.dynamodb),
        assets: config.assets(&clients),
        downloads: config.downloads(&clients),
        clients,
        config,
        calls,
    }
}

/// The clients the functions build ([`AwsClients::from_sdk_config`]), with
/// every DynamoDB and S3 request counted by `calls`.
fn counted_clients(sdk: &SdkConfig, calls: &CallCounter) -> AwsClients {
    let plain = AwsClients::from_sdk_config(sdk);
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(calls.clone()).build();
    let s3 = plain.s3.config().to_builder().interceptor(calls.clone()).build();
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        s3: aws_sdk_s3::Client::from_conf(s3),
        ..plain
    }
}
