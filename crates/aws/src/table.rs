//! DynamoDB access shared by the adapters: items that carry their record's
//! JSON in `doc`, conditional writes, transactions over any of the tables with
//! retries, and keyset-paginated queries whose pages and cursors are the
//! embedded store's. Every adapter goes through [`Table`], so conditions,
//! retries and error mapping are written once.

use super::backend;
use super::layout::{self, Index, Keys};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use publinks_domain::store::*;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::time::Duration;

/// One DynamoDB item, as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// DynamoDB allows at most this many actions in one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// DynamoDB reads at most this many items in one `BatchGetItem`.
const MAX_BATCH_GET_ITEMS: usize = 100;
/// How often a write is tried when it only met another transaction on its
/// items (`TransactionConflict`) or was throttled.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// How often a read-then-write on a record (a folder, file or link delete) is
/// retried when the record changed in between.
pub(super) const CHANGED_ATTEMPTS: u32 = 10;
/// Key attribute values past these sizes are refused by DynamoDB: a cursor that
/// would make one is not one this store handed out.
const MAX_CURSOR_SORT_KEY_BYTES: usize = 1024;
const MAX_CURSOR_ID_BYTES: usize = 256;
/// A query with a filter asks for at least this many items per request:
/// DynamoDB's `Limit` counts items read, not items kept, so asking for just
/// the few still missing would take a round trip per handful of items.
const FILTERED_BATCH: usize = 100;

/// A string attribute value.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute value.
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A TTL attribute value: epoch seconds, rounded up so that DynamoDB never
/// removes an item before `t`.
pub(super) fn ttl_at(t: DateTime<Utc>) -> AttributeValue {
    n((t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)).max(0))
}

/// A record's JSON, as stored in `doc`.
pub(super) fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

/// `pk/sk` of an item, to name it in errors.
pub(super) fn describe(item: &Item) -> String {
    let text = |name| match item.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", text(layout::PK), text(layout::SK))
}

/// The record in an item's `doc`; `Corrupt` if it is missing or does not decode.
pub(super) fn decode<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    match item.get(layout::DOC) {
        Some(AttributeValue::S(doc)) => {
            serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("item {}: {e}", describe(item))))
        }
        _ => Err(StoreError::Corrupt(format!("item {} has no document", describe(item)))),
    }
}

/// A string attribute of an item; `Corrupt` if it is missing.
pub(super) fn text_of<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Corrupt(format!("item {} has no {name}", describe(item)))),
    }
}

/// The numeric `revision` of an item; `Corrupt` if it is missing or malformed.
pub(super) fn revision_of(item: &Item) -> StoreResult<u64> {
    match item.get(layout::REVISION) {
        Some(AttributeValue::N(v)) => {
            v.parse().map_err(|_| StoreError::Corrupt(format!("item {} has revision {v:?}", describe(item))))
        }
        _ => Err(StoreError::Corrupt(format!("item {} has no revision", describe(item)))),
    }
}

/// The table keys of an item (what `GetItem` and `DeleteItem` take).
pub(super) fn key_of(keys: &Keys) -> Item {
    HashMap::from([(layout::PK.to_string(), s(&keys.pk)), (layout::SK.to_string(), s(&keys.sk))])
}

/// A whole item: its keys (table and indexes) and the record's JSON.
pub(super) fn item_of(keys: &Keys, doc: String) -> Item {
    let mut item = key_of(keys);
    for (index, pair) in [(Index::Gsi1, &keys.gsi1), (Index::Gsi2, &keys.gsi2), (Index::Gsi3, &keys.gsi3)] {
        if let Some((pk, sk)) = pair {
            item.insert(index.pk().to_string(), s(pk));
            item.insert(index.sk().to_string(), s(sk));
        }
    }
    item.insert(layout::DOC.to_string(), s(doc));
    item
}

/// A record with a revision: its item carries the revision as a number for conditions.
pub(super) fn revisioned_item(keys: &Keys, doc: String, revision: u64) -> Item {
    let mut item = item_of(keys, doc);
    item.insert(layout::REVISION.to_string(), n(revision));
    item
}

/// A condition expression (of a write, or a query's filter) with its names
/// and values; [`Table::update`] takes its update expression in one too.
#[derive(Clone, Debug, Default)]
pub(super) struct Condition {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    /// An expression whose `#name` placeholders stand for `names` and `:value` ones for `values`.
    pub(super) fn new(expression: &str, names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) -> Self {
        Condition {
            expression: expression.to_string(),
            names: names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            values: values.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// The item does not exist yet.
    pub(super) fn absent() -> Self {
        Condition::new("attribute_not_exists(#pk)", &[("#pk", layout::PK)], Vec::new())
    }

    /// The item exists.
    pub(super) fn present() -> Self {
        Condition::new("attribute_exists(#pk)", &[("#pk", layout::PK)], Vec::new())
    }

    /// The item exists with this revision.
    pub(super) fn revision(expected: u64) -> Self {
        Condition::new("#rev = :rev", &[("#rev", layout::REVISION)], vec![(":rev", n(expected))])
    }

    /// Both conditions (their placeholders must not clash).
    pub(super) fn and(mut self, other: Condition) -> Self {
        self.expression = format!("({}) AND ({})", self.expression, other.expression);
        self.names.extend(other.names);
        self.values.extend(other.values);
        self
    }

    fn expression(&self) -> Option<String> {
        (!self.expression.is_empty()).then(|| self.expression.clone())
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// One action of a transaction, on any table (see [`Table::put_write`] and its siblings).
#[derive(Clone, Debug)]
pub(super) struct Write {
    table: String,
    action: Action,
    condition: Condition,
}

#[derive(Clone, Debug)]
enum Action {
    Put(Item),
    Delete(Item),
    /// Writes nothing: the transaction commits only if the condition holds on this item.
    Check(Item),
    /// Adds `delta` to a numeric attribute (creating the item and the attribute if needed).
    Add {
        key: Item,
        attribute: String,
        delta: i64,
    },
}

impl Write {
    fn into_transact_item(self) -> StoreResult<TransactWriteItem> {
        let c = self.condition;
        let on_failure = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(match self.action {
            Action::Put(item) => {
                let put = Put::builder()
                    .table_name(self.table)
                    .set_item(Some(item))
                    .set_condition_expression(c.expression())
                    .set_expression_attribute_names(c.names())
                    .set_expression_attribute_values(c.values())
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().put(put).build()
            }
            Action::Delete(key) => {
                let delete = Delete::builder()
                    .table_name(self.table)
                    .set_key(Some(key))
                    .set_condition_expression(c.expression())
                    .set_expression_attribute_names(c.names())
                    .set_expression_attribute_values(c.values())
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Action::Check(key) => {
                let check = ConditionCheck::builder()
                    .table_name(self.table)
                    .set_key(Some(key))
                    .set_condition_expression(c.expression())
                    .set_expression_attribute_names(c.names())
                    .set_expression_attribute_values(c.values())
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
            Action::Add { key, attribute, delta } => {
                let mut names = c.names.clone();
                names.insert("#add".into(), attribute);
                let mut values = c.values.clone();
                values.insert(":add".into(), n(delta));
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(key))
                    .update_expression("ADD #add :add")
                    .set_condition_expression(c.expression())
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().update(update).build()
            }
        })
    }
}

/// Why a transaction did not happen.
pub(super) enum TxError {
    /// At least one condition failed: per action, whether its condition failed
    /// and, if so, the item as it was (`None` if absent).
    Condition(Vec<Option<Option<Item>>>),
    /// Anything else.
    Store(StoreError),
}

impl TxError {
    /// Whether action `i`'s condition failed.
    pub(super) fn failed(&self, i: usize) -> bool {
        matches!(self, TxError::Condition(reasons) if matches!(reasons.get(i), Some(Some(_))))
    }

    /// Action `i`'s condition failed on an existing item (`Some(true)`), on a
    /// missing one (`Some(false)`), or did not fail (`None`).
    pub(super) fn failed_on_existing(&self, i: usize) -> Option<bool> {
        match self {
            TxError::Condition(reasons) => match reasons.get(i) {
                Some(Some(old)) => Some(old.is_some()),
                _ => None,
            },
            TxError::Store(_) => None,
        }
    }

    /// The item as it was when action `i`'s condition failed on it (`None`
    /// if it did not fail, or the item was absent, or the store said nothing).
    pub(super) fn failed_item(&self, i: usize) -> Option<&Item> {
        match self {
            TxError::Condition(reasons) => reasons.get(i).and_then(|r| r.as_ref()).and_then(|old| old.as_ref()),
            TxError::Store(_) => None,
        }
    }

    /// Whether no condition failed but action `i`'s.
    pub(super) fn failed_only(&self, i: usize) -> bool {
        match self {
            TxError::Condition(reasons) => reasons.iter().enumerate().all(|(j, reason)| reason.is_some() == (j == i)),
            TxError::Store(_) => false,
        }
    }
}

/// The error of a transaction whose failed conditions the caller did not
/// expect: a backend error (a condition that cannot fail did).
pub(super) fn tx_store_error(e: TxError) -> StoreError {
    match e {
        TxError::Store(e) => e,
        TxError::Condition(_) => StoreError::Backend("a transaction failed a condition it should not have".into()),
    }
}

/// What a conditional single-item write met when its condition failed.
pub(super) enum PutError {
    /// The condition failed; the item as it was, if it exists.
    Condition(Option<Item>),
    Store(StoreError),
}

/// The cancellation codes that mean "try again", not "your condition failed".
fn retryable_cancellation(code: &str) -> bool {
    matches!(code, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded")
}

/// A short random pause before retrying a write that lost a race.
async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap = 10u64 << attempt.min(5);
    let millis = rand::rng().random_range(cap / 2..=cap);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Sends a single-item write (`send` builds and sends it), again after a
/// pause while it only met a transaction in progress on its item
/// (`conflict` tells a `TransactionConflict`): such a write has not happened.
async fn retry_conflicts<T, E, R, Fut>(
    mut send: impl FnMut() -> Fut,
    conflict: impl Fn(&E) -> bool,
) -> Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>
where
    Fut: Future<Output = Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match send().await {
            Err(e) if attempt < TRANSACTION_ATTEMPTS && e.as_service_error().is_some_and(&conflict) => {
                backoff(attempt).await
            }
            other => return other,
        }
    }
}

/// Which items of a partition a query reads.
#[derive(Clone, Debug)]
enum Range {
    All,
    BeginsWith(String),
    /// Sort keys strictly below this one.
    Below(String),
    /// Sort keys from the first to the second, both included.
    Between(String, String),
}

/// What to query: one partition (of the table or an index), which of its sort
/// keys, in which direction, and a filter applied after reading.
#[derive(Clone, Debug)]
pub(super) struct Query {
    partition: String,
    range: Range,
    filter: Option<Condition>,
    descending: bool,
}

impl Query {
    /// Every item of `partition`, in ascending sort-key order.
    pub(super) fn partition(partition: impl Into<String>) -> Self {
        Query { partition: partition.into(), range: Range::All, filter: None, descending: false }
    }

    /// Only the items whose sort key starts with `prefix`.
    pub(super) fn begins_with(mut self, prefix: &str) -> Self {
        self.range = Range::BeginsWith(prefix.to_string());
        self
    }

    /// Only the items whose sort key is below `bound`.
    pub(super) fn below(mut self, bound: String) -> Self {
        self.range = Range::Below(bound);
        self
    }

    /// Only the items whose sort key lies from `low` to `high`, both included.
    pub(super) fn between(mut self, low: String, high: String) -> Self {
        self.range = Range::Between(low, high);
        self
    }

    /// Keeps only the items that meet `condition` too (placeholders `#pk`,
    /// `#sk`, `:pk` and `:sk` are the query's own).
    pub(super) fn filter(mut self, condition: Condition) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(c) => c.and(condition),
            None => condition,
        });
        self
    }

    /// Descending sort-key order instead.
    pub(super) fn descending(mut self, descending: bool) -> Self {
        self.descending = descending;
        self
    }
}

/// One DynamoDB table, with the operations every adapter needs.
#[derive(Clone, Debug)]
pub(super) struct Table {
    client: Client,
    name: String,
}

impl Table {
    /// The table `name`, reached through `client`.
    pub(super) fn new(client: Client, name: impl Into<String>) -> Self {
        Table { client, name: name.into() }
    }

    /// The table's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// One item, read strongly consistent.
    pub(super) async fn get_item(&self, keys: &Keys) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_of(keys)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// The items at `keys` that exist, read strongly consistent with
    /// `BatchGetItem`, 100 a request; the keys DynamoDB leaves unprocessed
    /// (throttling, the 16 MB cap) are asked again after a pause. In no
    /// particular order.
    pub(super) async fn get_items(&self, keys: &[Keys]) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for batch in keys.chunks(MAX_BATCH_GET_ITEMS) {
            let mut pending: Vec<Item> = batch.iter().map(key_of).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.name.clone(), request)
                    .send()
                    .await
                    .map_err(backend)?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.name).unwrap_or_default());
                }
                pending =
                    out.unprocessed_keys.and_then(|mut u| u.remove(&self.name)).map(|k| k.keys).unwrap_or_default();
                if !pending.is_empty() {
                    if attempt >= TRANSACTION_ATTEMPTS {
                        return Err(StoreError::Backend("BatchGetItem left keys unprocessed".into()));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// The record of one item, read strongly consistent.
    pub(super) async fn get_doc<T: DeserializeOwned>(&self, keys: &Keys) -> StoreResult<Option<T>> {
        self.get_item(keys).await?.as_ref().map(decode).transpose()
    }

    /// One `PutItem`. A write that meets a transaction in progress on the item
    /// (`TransactionConflict`) is retried: it has not happened.
    pub(super) async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), PutError> {
        let c = condition.unwrap_or_default();
        let send = || {
            self.client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(item.clone()))
                .set_condition_expression(c.expression())
                .set_expression_attribute_names(c.names())
                .set_expression_attribute_values(c.values())
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
        };
        match retry_conflicts(send, |e| matches!(e, PutItemError::TransactionConflictException(_))).await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Err(PutError::Condition(failed.item.clone().filter(|i| !i.is_empty())))
                }
                _ => Err(PutError::Store(backend(e))),
            },
        }
    }

    /// Puts a new item: `AlreadyExists(what)` if its key is taken.
    pub(super) async fn insert(&self, item: Item, what: &'static str) -> StoreResult<()> {
        match self.put(item, Some(Condition::absent())).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::AlreadyExists(what)),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    /// Puts an item over one that meets `condition` (its revision): `Conflict(what)`
    /// if it does not, `NotFound(what)` if it is gone.
    pub(super) async fn replace(&self, item: Item, condition: Condition, what: &'static str) -> StoreResult<()> {
        match self.put(item, Some(condition)).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(Some(_))) => Err(StoreError::Conflict(what)),
            Err(PutError::Condition(None)) => Err(StoreError::NotFound(what)),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    /// Deletes an item; `true` if it existed (exactly one concurrent caller gets `true`).
    pub(super) async fn delete_returning(&self, keys: &Keys) -> StoreResult<bool> {
        let send = || {
            self.client
                .delete_item()
                .table_name(&self.name)
                .set_key(Some(key_of(keys)))
                .return_values(ReturnValue::AllOld)
                .send()
        };
        let out = retry_conflicts(send, |e| matches!(e, DeleteItemError::TransactionConflictException(_)))
            .await
            .map_err(backend)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One `UpdateItem` of the item at `keys`: `update` is the update
    /// expression with its placeholders' names and values (they must not
    /// clash with the condition's); returns the item's attributes after the
    /// update. A write that meets a transaction in progress is retried.
    pub(super) async fn update(
        &self,
        keys: &Keys,
        update: Condition,
        condition: Option<Condition>,
    ) -> Result<Item, PutError> {
        let c = condition.unwrap_or_default();
        let mut names = update.names.clone();
        names.extend(c.names.clone());
        let mut values = update.values.clone();
        values.extend(c.values.clone());
        let send = || {
            self.client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key_of(keys)))
                .update_expression(&update.expression)
                .set_condition_expression(c.expression())
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
        };
        match retry_conflicts(send, |e| matches!(e, UpdateItemError::TransactionConflictException(_))).await {
            Ok(out) => Ok(out.attributes.unwrap_or_default()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Err(PutError::Condition(failed.item.clone().filter(|i| !i.is_empty())))
                }
                _ => Err(PutError::Store(backend(e))),
            },
        }
    }

    /// Deletes the item at `keys` if it meets `condition`: `false` if it does
    /// not (or is absent), and nothing is deleted.
    pub(super) async fn delete_if(&self, keys: &Keys, condition: Condition) -> StoreResult<bool> {
        let send = || {
            self.client
                .delete_item()
                .table_name(&self.name)
                .set_key(Some(key_of(keys)))
                .set_condition_expression(condition.expression())
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .send()
        };
        match retry_conflicts(send, |e| matches!(e, DeleteItemError::TransactionConflictException(_))).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// A put of `item` in this table, as an action of a transaction.
    pub(super) fn put_write(&self, item: Item, condition: Option<Condition>) -> Write {
        Write { table: self.name.clone(), action: Action::Put(item), condition: condition.unwrap_or_default() }
    }

    /// A delete of the item at `keys` in this table, as an action of a transaction.
    pub(super) fn delete_write(&self, keys: &Keys, condition: Option<Condition>) -> Write {
        Write {
            table: self.name.clone(),
            action: Action::Delete(key_of(keys)),
            condition: condition.unwrap_or_default(),
        }
    }

    /// A check that `condition` holds on the item at `keys` in this table, as
    /// an action of a transaction that writes elsewhere.
    pub(super) fn check_write(&self, keys: &Keys, condition: Condition) -> Write {
        Write { table: self.name.clone(), action: Action::Check(key_of(keys)), condition }
    }

    /// Adds `delta` to the number `attribute` of the item at `keys` (a missing
    /// item or attribute counts as 0), as an action of a transaction.
    pub(super) fn add_write(&self, keys: &Keys, attribute: &str, delta: i64, condition: Option<Condition>) -> Write {
        let action = Action::Add { key: key_of(keys), attribute: attribute.to_string(), delta };
        Write { table: self.name.clone(), action, condition: condition.unwrap_or_default() }
    }

    /// Runs the writes (on this table or any other one of this client) as one
    /// transaction, retrying those that only lost a race with another
    /// transaction or were throttled. Failed conditions are reported by
    /// position and code, never by message.
    pub(super) async fn transact(&self, writes: Vec<Write>) -> Result<(), TxError> {
        let items = writes
            .into_iter()
            .map(Write::into_transact_item)
            .collect::<StoreResult<Vec<_>>>()
            .map_err(TxError::Store)?;
        let code = |r: &CancellationReason| r.code().unwrap_or("None").to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let e = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = e.as_service_error() else {
                return Err(TxError::Store(backend(e)));
            };
            let reasons = cancelled.cancellation_reasons();
            if reasons.iter().any(|r| code(r) == "ConditionalCheckFailed") {
                return Err(TxError::Condition(
                    reasons
                        .iter()
                        .map(|r| {
                            (code(r) == "ConditionalCheckFailed").then(|| r.item().filter(|i| !i.is_empty()).cloned())
                        })
                        .collect(),
                ));
            }
            let retryable = reasons.iter().all(|r| code(r) == "None" || retryable_cancellation(&code(r)));
            if !retryable || attempt >= TRANSACTION_ATTEMPTS {
                return Err(TxError::Store(backend(e)));
            }
            backoff(attempt).await;
        }
    }

    /// Deletes items of this table by key, in as few transactions as possible
    /// (`first` goes in the first one, so its condition guards the rest of that batch).
    pub(super) async fn delete_all(&self, first: Option<Write>, keys: Vec<Keys>) -> Result<(), TxError> {
        let mut writes: Vec<Write> = first.into_iter().collect();
        writes.extend(keys.iter().map(|k| self.delete_write(k, None)));
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let batch: Vec<Write> = writes.by_ref().take(MAX_TRANSACTION_ITEMS).collect();
            self.transact(batch).await?;
        }
        Ok(())
    }

    /// One page of a query: a partition of the table (strongly consistent) or of
    /// an index, reading at most `limit` items (before the filter).
    async fn query_page(
        &self,
        index: Option<Index>,
        query: &Query,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let (pk, sk) = match index {
            Some(i) => (i.pk(), i.sk()),
            None => (layout::PK, layout::SK),
        };
        let mut names = HashMap::from([("#pk".to_string(), pk.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), s(&query.partition))]);
        let key_condition = match &query.range {
            Range::All => "#pk = :pk",
            Range::BeginsWith(prefix) => {
                names.insert("#sk".into(), sk.into());
                values.insert(":sk".into(), s(prefix));
                "#pk = :pk AND begins_with(#sk, :sk)"
            }
            Range::Below(bound) => {
                names.insert("#sk".into(), sk.into());
                values.insert(":sk".into(), s(bound));
                "#pk = :pk AND #sk < :sk"
            }
            Range::Between(low, high) => {
                names.insert("#sk".into(), sk.into());
                values.insert(":sk".into(), s(low));
                values.insert(":sk2".into(), s(high));
                "#pk = :pk AND #sk BETWEEN :sk AND :sk2"
            }
        };
        let filter = query.filter.as_ref();
        if let Some(f) = filter {
            names.extend(f.names.clone());
            values.extend(f.values.clone());
        }
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(index.map(|i| i.name().to_string()))
            .consistent_read(index.is_none())
            .key_condition_expression(key_condition)
            .set_filter_expression(filter.and_then(Condition::expression))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!query.descending)
            .set_exclusive_start_key(start)
            .set_limit(limit.map(|l| l.clamp(1, i32::MAX as usize) as i32))
            .send()
            .await
            .map_err(backend)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// The items a query keeps, from `start` on, until at least `wanted` are
    /// found (`None`: all of them). May return more than `wanted`.
    async fn collect(
        &self,
        index: Option<Index>,
        query: &Query,
        mut start: Option<Item>,
        wanted: Option<usize>,
    ) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        loop {
            let need = wanted.map(|w| w.saturating_sub(found.len()));
            let limit = match need {
                Some(need) if query.filter.is_some() => Some(need.max(FILTERED_BATCH)),
                other => other,
            };
            let (items, next) = self.query_page(index, query, start, limit).await?;
            found.extend(items);
            match next {
                Some(k) if wanted.is_none_or(|w| found.len() < w) => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// Every item a query keeps, in its order.
    pub(super) async fn query_all(&self, index: Option<Index>, query: &Query) -> StoreResult<Vec<Item>> {
        self.collect(index, query, None, None).await
    }

    /// The first `max` items a query keeps, in its order.
    pub(super) async fn query_first(&self, index: Option<Index>, query: &Query, max: usize) -> StoreResult<Vec<Item>> {
        let mut items = self.collect(index, query, None, Some(max)).await?;
        items.truncate(max);
        Ok(items)
    }

    /// One page of a list kept in `index`, positioned like the embedded store:
    /// the cursor is the `(sort, id)` of the last item returned, and `next` is
    /// set only when more items follow (however much a filter thins DynamoDB's
    /// pages). `table_keys` gives the table keys of the item with an id,
    /// `position` an item's `(sort, id)`.
    pub(super) async fn list_page<T: DeserializeOwned>(
        &self,
        index: Index,
        query: &Query,
        page: &PageRequest,
        table_keys: impl Fn(&str) -> Keys,
        position: impl Fn(&T) -> (String, String),
    ) -> StoreResult<Page<T>> {
        let start = match &page.cursor {
            Some(cursor) => {
                let (sort, id): (String, String) = cursor.decode()?;
                let index_sk = layout::sort_key(&sort, &id);
                if index_sk.len() > MAX_CURSOR_SORT_KEY_BYTES || id.len() > MAX_CURSOR_ID_BYTES {
                    return Err(StoreError::InvalidCursor);
                }
                let mut key = key_of(&table_keys(&id));
                key.insert(index.pk().to_string(), s(&query.partition));
                key.insert(index.sk().to_string(), s(index_sk));
                Some(key)
            }
            None => None,
        };
        let limit = page.limit as usize;
        let items = self.collect(Some(index), query, start, Some(limit + 1)).await?;
        let has_more = items.len() > limit;
        let found = items.iter().take(limit).map(decode).collect::<StoreResult<Vec<T>>>()?;
        let next = if has_more { found.last().map(|last| Cursor::encode(&position(last))) } else { None };
        Ok(Page { items: found, next })
    }
}
