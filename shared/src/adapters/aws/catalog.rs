//! The catalog ports on one DynamoDB table, with the embedded store's
//! semantics: conditional puts for inserts and revisions, transactions where
//! the embedded store relies on SQL constraints (unique folder names, a file
//! with its current version), keyset pagination with the same cursors.
//!
//! Reads of single records and of a partition are strongly consistent; lists
//! that go through a global secondary index are eventually consistent on real
//! AWS (moto answers them at once). `infra/README.md` lists which are which.

use super::layout::{self, Index, Keys};
use crate::domain::model::*;
use crate::ids::*;
use crate::store::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB allows at most this many actions in one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// How often a write is tried when it only met another transaction on its
/// items (`TransactionConflict`) or was throttled.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// How often a read-then-write on a record (folder or file delete) is retried
/// when the record changed in between.
const CHANGED_ATTEMPTS: u32 = 10;
/// Key attribute values past these sizes are refused by DynamoDB: a cursor that
/// would make one is not one this store handed out.
const MAX_CURSOR_SORT_KEY_BYTES: usize = 1024;
const MAX_CURSOR_ID_BYTES: usize = 256;

/// Every catalog port on one DynamoDB table (layout in `infra/README.md`).
#[derive(Clone, Debug)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

fn backend(e: impl std::error::Error) -> StoreError {
    StoreError::Backend(DisplayErrorContext(e).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

fn describe(item: &Item) -> String {
    let text = |name| match item.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", text(layout::PK), text(layout::SK))
}

fn decode<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    match item.get(layout::DOC) {
        Some(AttributeValue::S(doc)) => {
            serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("item {}: {e}", describe(item))))
        }
        _ => Err(StoreError::Corrupt(format!("item {} has no document", describe(item)))),
    }
}

fn revision_of(item: &Item) -> StoreResult<u64> {
    match item.get(layout::REVISION) {
        Some(AttributeValue::N(v)) => {
            v.parse().map_err(|_| StoreError::Corrupt(format!("item {} has revision {v:?}", describe(item))))
        }
        _ => Err(StoreError::Corrupt(format!("item {} has no revision", describe(item)))),
    }
}

/// The table keys of an item (what `GetItem` and `DeleteItem` take).
fn key_of(keys: &Keys) -> Item {
    HashMap::from([(layout::PK.to_string(), s(&keys.pk)), (layout::SK.to_string(), s(&keys.sk))])
}

/// A whole item: its keys (table and indexes) and the record's JSON.
fn item_of(keys: &Keys, doc: String) -> Item {
    let mut item = key_of(keys);
    for (index, pair) in [(Index::Gsi1, &keys.gsi1), (Index::Gsi2, &keys.gsi2)] {
        if let Some((pk, sk)) = pair {
            item.insert(index.pk().to_string(), s(pk));
            item.insert(index.sk().to_string(), s(sk));
        }
    }
    item.insert(layout::DOC.to_string(), s(doc));
    item
}

/// A record with a revision: its item carries the revision as a number for conditions.
fn revisioned_item(keys: &Keys, doc: String, revision: u64) -> Item {
    let mut item = item_of(keys, doc);
    item.insert(layout::REVISION.to_string(), n(revision));
    item
}

fn file_item(f: &File) -> Item {
    let mut item = revisioned_item(&layout::file_keys(f), encode(f), f.revision);
    item.insert(layout::CURRENT_VERSION.to_string(), n(f.current.number));
    item
}

fn version_item(v: &FileVersion) -> Item {
    item_of(&layout::version_keys(v), encode(v))
}

fn folder_guard_item(f: &Folder) -> Item {
    let mut item = key_of(&layout::folder_name_guard(f));
    item.insert(layout::OWNER.to_string(), s(f.id.to_string()));
    item
}

/// A conditional write's condition: an expression with its names and values.
#[derive(Clone, Debug, Default)]
struct Condition {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    /// The item does not exist yet.
    fn absent() -> Self {
        Condition {
            expression: "attribute_not_exists(#pk)".into(),
            names: HashMap::from([("#pk".into(), layout::PK.into())]),
            values: HashMap::new(),
        }
    }

    /// The item exists.
    fn present() -> Self {
        Condition {
            expression: "attribute_exists(#pk)".into(),
            names: HashMap::from([("#pk".into(), layout::PK.into())]),
            values: HashMap::new(),
        }
    }

    /// The item exists with this revision.
    fn revision(expected: u64) -> Self {
        Condition {
            expression: "#rev = :rev".into(),
            names: HashMap::from([("#rev".into(), layout::REVISION.into())]),
            values: HashMap::from([(":rev".into(), n(expected))]),
        }
    }

    /// The file exists with this revision and this current version.
    fn file_revision(expected: u64, current_version: u32) -> Self {
        let mut c = Condition::revision(expected);
        c.expression.push_str(" AND #cv = :cv");
        c.names.insert("#cv".into(), layout::CURRENT_VERSION.into());
        c.values.insert(":cv".into(), n(current_version));
        c
    }

    /// The guard is missing or held by this folder.
    fn guard_of(folder: FolderId) -> Self {
        Condition {
            expression: "attribute_not_exists(#pk) OR #owner = :owner".into(),
            names: HashMap::from([("#pk".into(), layout::PK.into()), ("#owner".into(), layout::OWNER.into())]),
            values: HashMap::from([(":owner".into(), s(folder.to_string()))]),
        }
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// One action of a transaction.
enum Write {
    Put(Item, Option<Condition>),
    Delete(Keys, Option<Condition>),
}

impl Write {
    fn into_transact_item(self, table: &str) -> StoreResult<TransactWriteItem> {
        let on_failure = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(match self {
            Write::Put(item, condition) => {
                let c = condition.unwrap_or_default();
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .set_condition_expression((!c.expression.is_empty()).then(|| c.expression.clone()))
                    .set_expression_attribute_names((!c.names.is_empty()).then(|| c.names.clone()))
                    .set_expression_attribute_values(c.values())
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete(keys, condition) => {
                let c = condition.unwrap_or_default();
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_of(&keys)))
                    .set_condition_expression((!c.expression.is_empty()).then(|| c.expression.clone()))
                    .set_expression_attribute_names((!c.names.is_empty()).then(|| c.names.clone()))
                    .set_expression_attribute_values(c.values())
                    .set_return_values_on_condition_check_failure(on_failure)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().delete(delete).build()
            }
        })
    }
}

/// Why a transaction did not happen.
enum TxError {
    /// At least one condition failed: per action, whether its condition failed
    /// and, if so, the item as it was (`None` if absent).
    Condition(Vec<Option<Option<Item>>>),
    /// Anything else.
    Store(StoreError),
}

impl TxError {
    /// Whether action `i`'s condition failed.
    fn failed(&self, i: usize) -> bool {
        matches!(self, TxError::Condition(reasons) if matches!(reasons.get(i), Some(Some(_))))
    }

    /// Action `i`'s condition failed on an existing item (`Some(true)`), on a
    /// missing one (`Some(false)`), or did not fail (`None`).
    fn failed_on_existing(&self, i: usize) -> Option<bool> {
        match self {
            TxError::Condition(reasons) => match reasons.get(i) {
                Some(Some(old)) => Some(old.is_some()),
                _ => None,
            },
            TxError::Store(_) => None,
        }
    }
}

/// What a conditional single-item write met when its condition failed.
enum PutError {
    /// The condition failed; the item as it was, if it exists.
    Condition(Option<Item>),
    Store(StoreError),
}

/// The cancellation codes that mean "try again", not "your condition failed".
fn retryable_cancellation(code: &str) -> bool {
    matches!(code, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded")
}

/// A short random pause before retrying a transaction that lost a race.
async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap = 10u64 << attempt.min(5);
    let millis = rand::rng().random_range(cap / 2..=cap);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

impl DynamoCatalog {
    /// The catalog on `table`, created from `infra/template.yaml`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCatalog { client, table: table.into() }
    }

    /// The table this catalog uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(&self, keys: &Keys) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    async fn get_doc<T: DeserializeOwned>(&self, keys: &Keys) -> StoreResult<Option<T>> {
        self.get_item(keys).await?.as_ref().map(decode).transpose()
    }

    /// One `PutItem`. A write that meets a transaction in progress on the item
    /// (`TransactionConflict`) is retried: it has not happened.
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), PutError> {
        let c = condition.unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .set_condition_expression((!c.expression.is_empty()).then(|| c.expression.clone()))
                .set_expression_attribute_names((!c.names.is_empty()).then(|| c.names.clone()))
                .set_expression_attribute_values(c.values())
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        return Err(PutError::Condition(failed.item.clone().filter(|i| !i.is_empty())));
                    }
                    Some(PutItemError::TransactionConflictException(_)) if attempt < TRANSACTION_ATTEMPTS => {
                        backoff(attempt).await
                    }
                    _ => return Err(PutError::Store(backend(e))),
                },
            }
        }
    }

    /// Puts a new item: `AlreadyExists(what)` if its key is taken.
    async fn insert(&self, item: Item, what: &'static str) -> StoreResult<()> {
        match self.put(item, Some(Condition::absent())).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::AlreadyExists(what)),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    /// Puts an item over the one with revision `expected`: `Conflict(what)`
    /// if it has another, `NotFound(what)` if it is gone.
    async fn replace(&self, item: Item, condition: Condition, what: &'static str) -> StoreResult<()> {
        match self.put(item, Some(condition)).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(Some(_))) => Err(StoreError::Conflict(what)),
            Err(PutError::Condition(None)) => Err(StoreError::NotFound(what)),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    /// Deletes an item; `true` if it existed (exactly one concurrent caller gets `true`).
    async fn delete_returning(&self, keys: &Keys) -> StoreResult<bool> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_of(keys)))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => return Ok(out.attributes.is_some_and(|a| !a.is_empty())),
                Err(e) => match e.as_service_error() {
                    Some(DeleteItemError::TransactionConflictException(_)) if attempt < TRANSACTION_ATTEMPTS => {
                        backoff(attempt).await
                    }
                    _ => return Err(backend(e)),
                },
            }
        }
    }

    /// Runs the writes as one transaction, retrying those that only lost a
    /// race with another transaction or were throttled.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), TxError> {
        let items = writes
            .into_iter()
            .map(|w| w.into_transact_item(&self.table))
            .collect::<StoreResult<Vec<_>>>()
            .map_err(TxError::Store)?;
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
            let code = |r: &aws_sdk_dynamodb::types::CancellationReason| r.code().unwrap_or("None").to_string();
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

    /// Deletes items by key, as few transactions as possible (`first` goes in
    /// the first one, so its condition guards the rest of that batch).
    async fn delete_all(&self, first: Option<Write>, keys: Vec<Keys>) -> Result<(), TxError> {
        let mut writes: Vec<Write> = first.into_iter().collect();
        writes.extend(keys.into_iter().map(|k| Write::Delete(k, None)));
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let batch: Vec<Write> = writes.by_ref().take(MAX_TRANSACTION_ITEMS).collect();
            self.transact(batch).await?;
        }
        Ok(())
    }

    /// One page of a query: a partition of the table (strongly consistent) or of an index.
    async fn query(
        &self,
        index: Option<Index>,
        partition: &str,
        sk_prefix: Option<&str>,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let (pk, sk) = match index {
            Some(i) => (i.pk(), i.sk()),
            None => (layout::PK, layout::SK),
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(|i| i.name().to_string()))
            .consistent_read(index.is_none())
            .expression_attribute_names("#pk", pk)
            .expression_attribute_values(":pk", s(partition))
            .set_exclusive_start_key(start)
            .set_limit(limit.map(|l| l.clamp(1, i32::MAX as usize) as i32));
        request = match sk_prefix {
            Some(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", sk)
                .expression_attribute_values(":prefix", s(prefix)),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let out = request.send().await.map_err(backend)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Every item of a partition, in key order.
    async fn query_all(
        &self,
        index: Option<Index>,
        partition: &str,
        sk_prefix: Option<&str>,
    ) -> StoreResult<Vec<Item>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query(index, partition, sk_prefix, start, None).await?;
            all.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(all),
            }
        }
    }

    /// One page of a list kept in `index` under `partition`, positioned like the
    /// embedded store: the cursor is the `(sort, id)` of the last item returned,
    /// and `next` is set only when more items follow. `table_keys` gives the
    /// table keys of the item with an id, `position` an item's `(sort, id)`.
    async fn list_page<T: DeserializeOwned>(
        &self,
        index: Index,
        partition: String,
        page: &PageRequest,
        table_keys: impl Fn(&str) -> Keys,
        position: impl Fn(&T) -> (String, String),
    ) -> StoreResult<Page<T>> {
        let mut start = match &page.cursor {
            Some(cursor) => {
                let (sort, id): (String, String) = cursor.decode()?;
                let index_sk = layout::sort_key(&sort, &id);
                if index_sk.len() > MAX_CURSOR_SORT_KEY_BYTES || id.len() > MAX_CURSOR_ID_BYTES {
                    return Err(StoreError::InvalidCursor);
                }
                let mut key = key_of(&table_keys(&id));
                key.insert(index.pk().to_string(), s(&partition));
                key.insert(index.sk().to_string(), s(index_sk));
                Some(key)
            }
            None => None,
        };
        let limit = page.limit as usize;
        let wanted = limit + 1;
        let mut found = Vec::with_capacity(wanted.min(1024));
        loop {
            let (items, next) = self.query(Some(index), &partition, None, start, Some(wanted - found.len())).await?;
            for item in &items {
                found.push(decode::<T>(item)?);
            }
            match next {
                Some(k) if found.len() < wanted => start = Some(k),
                _ => break,
            }
        }
        let has_more = found.len() > limit;
        found.truncate(limit);
        let next = if has_more { found.last().map(|last| Cursor::encode(&position(last))) } else { None };
        Ok(Page { items: found, next })
    }
}

#[async_trait]
impl AccountStore for DynamoCatalog {
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        let item = revisioned_item(&layout::account_keys(account), encode(account), account.revision);
        self.insert(item, "account").await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.get_doc(&layout::account_key(&id.to_string())).await
    }

    async fn replace_account(&self, account: &Account) -> StoreResult<Account> {
        let mut a = account.clone();
        a.revision += 1;
        let item = revisioned_item(&layout::account_keys(&a), encode(&a), a.revision);
        self.replace(item, Condition::revision(account.revision), "account").await?;
        Ok(a)
    }

    async fn list_accounts(&self, page: &PageRequest) -> StoreResult<Page<Account>> {
        self.list_page(
            Index::Gsi1,
            layout::ACCOUNTS_PARTITION.to_string(),
            page,
            layout::account_key,
            layout::account_position,
        )
        .await
    }
}

#[async_trait]
impl UserStore for DynamoCatalog {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.insert(item_of(&layout::user_keys(user), encode(user)), "user").await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.get_doc(&layout::user_key(&id.to_string())).await
    }

    async fn replace_user(&self, user: &User) -> StoreResult<()> {
        match self.put(item_of(&layout::user_keys(user), encode(user)), Some(Condition::present())).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::NotFound("user")),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        // The user and their grants share one partition.
        let items = self.query_all(None, &layout::user_partition(id), None).await?;
        let keys = items
            .iter()
            .map(|item| match (item.get(layout::PK), item.get(layout::SK)) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                    Ok(Keys { pk: pk.clone(), sk: sk.clone(), gsi1: None, gsi2: None })
                }
                _ => Err(StoreError::Corrupt(format!("item {} has no keys", describe(item)))),
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.delete_all(None, keys).await.map_err(tx_store_error)
    }

    async fn list_users(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<User>> {
        self.list_page(Index::Gsi1, layout::users_partition(account), page, layout::user_key, layout::user_position)
            .await
    }
}

/// A transaction without conditions can fail only as a backend error.
fn tx_store_error(e: TxError) -> StoreError {
    match e {
        TxError::Store(e) => e,
        TxError::Condition(_) => StoreError::Backend("an unconditional transaction failed a condition".into()),
    }
}

#[async_trait]
impl GrantStore for DynamoCatalog {
    async fn put_grant(&self, grant: &Grant) -> StoreResult<()> {
        match self.put(item_of(&layout::grant_keys(grant), encode(grant)), None).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::Backend("an unconditional put failed a condition".into())),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn delete_grant(&self, user: UserId, target: Target) -> StoreResult<bool> {
        self.delete_returning(&layout::grant_key(user, &target)).await
    }

    async fn grants_of_user(&self, user: UserId) -> StoreResult<Vec<Grant>> {
        let items = self.query_all(None, &layout::user_partition(user), Some(layout::GRANT_PREFIX)).await?;
        items.iter().map(decode).collect()
    }

    async fn delete_grants_on(&self, target: Target) -> StoreResult<()> {
        let items = self.query_all(Some(Index::Gsi1), &layout::grants_on_partition(&target), None).await?;
        let keys = items
            .iter()
            .map(|item| decode::<Grant>(item).map(|g| layout::grant_key(g.user_id, &g.target)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.delete_all(None, keys).await.map_err(tx_store_error)
    }
}

#[async_trait]
impl FolderStore for DynamoCatalog {
    async fn insert_folder(&self, folder: &Folder) -> StoreResult<()> {
        let item = revisioned_item(&layout::folder_keys(folder), encode(folder), folder.revision);
        let writes = vec![
            Write::Put(item, Some(Condition::absent())),
            Write::Put(folder_guard_item(folder), Some(Condition::absent())),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed(0) => Err(StoreError::AlreadyExists("folder")),
            Err(e) if e.failed(1) => Err(StoreError::AlreadyExists("folder name")),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn folder(&self, id: FolderId) -> StoreResult<Option<Folder>> {
        self.get_doc(&layout::folder_key(&id.to_string())).await
    }

    async fn replace_folder(&self, folder: &Folder) -> StoreResult<Folder> {
        // The stored record says which name guard to release.
        let Some(stored_item) = self.get_item(&layout::folder_key(&folder.id.to_string())).await? else {
            return Err(StoreError::NotFound("folder"));
        };
        if revision_of(&stored_item)? != folder.revision {
            return Err(StoreError::Conflict("folder"));
        }
        let stored: Folder = decode(&stored_item)?;
        let mut f = folder.clone();
        f.revision += 1;
        let item = revisioned_item(&layout::folder_keys(&f), encode(&f), f.revision);
        let condition = Condition::revision(folder.revision);
        let old_guard = layout::folder_name_guard(&stored);
        if old_guard == layout::folder_name_guard(&f) {
            self.replace(item, condition, "folder").await?;
            return Ok(f);
        }
        let writes = vec![
            Write::Put(item, Some(condition)),
            Write::Delete(old_guard, Some(Condition::guard_of(f.id))),
            Write::Put(folder_guard_item(&f), Some(Condition::absent())),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(f),
            Err(e) => match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("folder")),
                Some(false) => Err(StoreError::NotFound("folder")),
                None if e.failed(2) => Err(StoreError::AlreadyExists("folder name")),
                None if e.failed(1) => {
                    Err(StoreError::Corrupt(format!("the name guard of folder {} is held by another folder", f.id)))
                }
                None => Err(tx_store_error(e)),
            },
        }
    }

    async fn delete_folder(&self, id: FolderId) -> StoreResult<()> {
        for _ in 0..CHANGED_ATTEMPTS {
            let Some(stored_item) = self.get_item(&layout::folder_key(&id.to_string())).await? else {
                return Ok(());
            };
            let revision = revision_of(&stored_item)?;
            let stored: Folder = decode(&stored_item)?;
            let writes = vec![
                Write::Delete(layout::folder_key(&id.to_string()), Some(Condition::revision(revision))),
                Write::Delete(layout::folder_name_guard(&stored), Some(Condition::guard_of(id))),
            ];
            match self.transact(writes).await {
                Ok(()) => return Ok(()),
                // Renamed or deleted meanwhile: look again.
                Err(e) if e.failed(0) => continue,
                Err(e) if e.failed(1) => {
                    return Err(StoreError::Corrupt(format!(
                        "the name guard of folder {id} is held by another folder"
                    )));
                }
                Err(e) => return Err(tx_store_error(e)),
            }
        }
        Err(StoreError::Conflict("folder"))
    }

    async fn subfolders(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Folder>> {
        let partition = layout::subfolders_partition(account, parent);
        self.list_page(Index::Gsi1, partition, page, layout::folder_key, layout::folder_position).await
    }
}

#[async_trait]
impl FileStore for DynamoCatalog {
    async fn insert_file(&self, file: &File) -> StoreResult<()> {
        let writes = vec![
            Write::Put(file_item(file), Some(Condition::absent())),
            Write::Put(version_item(&file.current), Some(Condition::absent())),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed(0) => Err(StoreError::AlreadyExists("file")),
            // The version is stored already: keep it (as the embedded store does).
            Err(e) if e.failed(1) => self.insert(file_item(file), "file").await,
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn file(&self, id: FileId) -> StoreResult<Option<File>> {
        self.get_doc(&layout::file_key(&id.to_string())).await
    }

    async fn replace_file(&self, file: &File) -> StoreResult<File> {
        let expected = file.revision;
        let mut f = file.clone();
        f.revision += 1;
        // Most replaces keep the current version: one conditional put.
        match self.put(file_item(&f), Some(Condition::file_revision(expected, f.current.number))).await {
            Ok(()) => return Ok(f),
            Err(PutError::Condition(None)) => return Err(StoreError::NotFound("file")),
            Err(PutError::Condition(Some(old))) if revision_of(&old)? != expected => {
                return Err(StoreError::Conflict("file"));
            }
            Err(PutError::Condition(Some(_))) => {}
            Err(PutError::Store(e)) => return Err(e),
        }
        // Another current version: store it with the file unless it is stored already.
        let writes = vec![
            Write::Put(file_item(&f), Some(Condition::revision(expected))),
            Write::Put(version_item(&f.current), Some(Condition::absent())),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(f),
            Err(e) => match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("file")),
                Some(false) => Err(StoreError::NotFound("file")),
                None if e.failed(1) => {
                    self.replace(file_item(&f), Condition::revision(expected), "file").await?;
                    Ok(f)
                }
                None => Err(tx_store_error(e)),
            },
        }
    }

    async fn delete_file(&self, id: FileId) -> StoreResult<()> {
        for _ in 0..CHANGED_ATTEMPTS {
            // The file and its versions share one partition.
            let items = self.query_all(None, &layout::file_partition(id), None).await?;
            let mut first = None;
            let mut versions = Vec::new();
            for item in &items {
                match item.get(layout::SK) {
                    Some(AttributeValue::S(sk)) if sk.starts_with(layout::VERSION_PREFIX) => {
                        versions.push(layout::version_keys(&decode::<FileVersion>(item)?));
                    }
                    Some(AttributeValue::S(sk)) if sk == "FILE" => {
                        // Conditional on the revision read, so that no version
                        // can land between this read and the delete.
                        let condition = Condition::revision(revision_of(item)?);
                        first = Some(Write::Delete(layout::file_key(&id.to_string()), Some(condition)));
                    }
                    _ => return Err(StoreError::Corrupt(format!("unexpected item {} in a file", describe(item)))),
                }
            }
            match self.delete_all(first, versions).await {
                Ok(()) => return Ok(()),
                Err(e) if e.failed(0) => continue,
                Err(e) => return Err(tx_store_error(e)),
            }
        }
        Err(StoreError::Conflict("file"))
    }

    async fn files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<File>> {
        let partition = layout::files_partition(account, folder);
        self.list_page(Index::Gsi1, partition, page, layout::file_key, layout::file_position).await
    }

    async fn versions(&self, file: FileId) -> StoreResult<Vec<FileVersion>> {
        let items = self.query_all(None, &layout::file_partition(file), Some(layout::VERSION_PREFIX)).await?;
        items.iter().map(decode).collect()
    }
}

#[async_trait]
impl CollectionStore for DynamoCatalog {
    async fn insert_collection(&self, collection: &Collection) -> StoreResult<()> {
        let item = revisioned_item(&layout::collection_keys(collection), encode(collection), collection.revision);
        self.insert(item, "collection").await
    }

    async fn collection(&self, id: CollectionId) -> StoreResult<Option<Collection>> {
        self.get_doc(&layout::collection_key(&id.to_string())).await
    }

    async fn replace_collection(&self, collection: &Collection) -> StoreResult<Collection> {
        let mut c = collection.clone();
        c.revision += 1;
        let item = revisioned_item(&layout::collection_keys(&c), encode(&c), c.revision);
        self.replace(item, Condition::revision(collection.revision), "collection").await?;
        Ok(c)
    }

    async fn delete_collection(&self, id: CollectionId) -> StoreResult<()> {
        // The collection and its memberships share one partition.
        let items = self.query_all(None, &layout::collection_partition(id), None).await?;
        let mut keys = Vec::with_capacity(items.len());
        for item in &items {
            match item.get(layout::SK) {
                Some(AttributeValue::S(sk)) if sk.starts_with(layout::ITEM_PREFIX) => {
                    keys.push(layout::item_keys(&decode::<CollectionItem>(item)?));
                }
                Some(AttributeValue::S(sk)) if sk == "COLLECTION" => keys.push(layout::collection_key(&id.to_string())),
                _ => return Err(StoreError::Corrupt(format!("unexpected item {} in a collection", describe(item)))),
            }
        }
        self.delete_all(None, keys).await.map_err(tx_store_error)
    }

    async fn collections(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<Collection>> {
        let partition = layout::collections_partition(account);
        self.list_page(Index::Gsi1, partition, page, layout::collection_key, layout::collection_position).await
    }

    async fn add_to_collection(&self, item: &CollectionItem) -> StoreResult<()> {
        self.insert(item_of(&layout::item_keys(item), encode(item)), "collection item").await
    }

    async fn remove_from_collection(&self, collection: CollectionId, file: FileId) -> StoreResult<bool> {
        self.delete_returning(&layout::item_key(collection, &file.to_string())).await
    }

    async fn collection_items(
        &self,
        collection: CollectionId,
        page: &PageRequest,
    ) -> StoreResult<Page<CollectionItem>> {
        self.list_page(
            Index::Gsi2,
            layout::items_partition(collection),
            page,
            |file| layout::item_key(collection, file),
            layout::item_position,
        )
        .await
    }

    async fn collections_of_file(&self, file: FileId) -> StoreResult<Vec<CollectionId>> {
        let items = self.query_all(Some(Index::Gsi1), &layout::collections_of_file_partition(file), None).await?;
        items.iter().map(|item| decode::<CollectionItem>(item).map(|i| i.collection_id)).collect()
    }
}

#[async_trait]
impl UploadStore for DynamoCatalog {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()> {
        let mut item = item_of(&layout::upload_key(upload.id), encode(upload));
        // DynamoDB deletes the record some time after this (TTL is only cleanup:
        // the domain checks `expires_at` itself).
        item.insert(layout::TTL.to_string(), n(upload.expires_at.timestamp().max(0)));
        self.insert(item, "upload").await
    }

    async fn upload(&self, id: UploadId) -> StoreResult<Option<Upload>> {
        self.get_doc(&layout::upload_key(id)).await
    }

    async fn take_upload(&self, id: UploadId) -> StoreResult<bool> {
        self.delete_returning(&layout::upload_key(id)).await
    }
}
