//! The DynamoDB streams the `audit-stream` function reads: the links
//! table's and the catalog table's.
//!
//! - Links: deletions through the API, by cascade or by the sweep release
//!   their limit slots and write their audit entry in the same transaction as
//!   the delete. Only DynamoDB's TTL deletes behind our back: for each such
//!   removal of a link item, the handler records it (system, expired) and
//!   releases its slots and token, exactly once — the audit entry's id,
//!   `{link}:deleted`, makes a record delivered twice harmless — and records
//!   a `link.deleted_by_system` delivery per webhook that wants it, each
//!   once (its id is made from the link's and the webhook's). This function
//!   links no queue or HTTP client: `library-worker`'s webhook sweep sends
//!   them.
//! - Catalog: a file, folder or collection removed, or a file or folder moved
//!   (its list partition changed), runs the links' cascade again
//!   ([`links::cascade`](publinks_domain::links::cascade)). The request that
//!   deleted or moved it ran it already; this makes it durable, should that
//!   request have died half-way, and it is harmless when it had not: the
//!   cascade judges by where things are now.
//!
//! A record that cannot be handled is reported as a batch item failure; the
//! good ones are not lost.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use publinks_domain::links::LinkService;
use publinks_domain::model::{Collection, File, Folder, Link, SystemReason, Target};

/// The principal DynamoDB names on records of its TTL deletions.
pub const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// What one record came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Neither a TTL removal of a link nor a removal or move in the catalog: nothing to do.
    Ignored,
    /// The cascade of a removal or move ran; it deleted this many links.
    Cascaded(usize),
    /// Recorded and released now.
    Released,
    /// Done before (a repeated delivery, or a delete that beat TTL).
    AlreadyReleased,
}

/// Handles a batch, reporting the records that failed by sequence number.
pub async fn handle(links: &LinkService, event: &Event) -> DynamoDbEventResponse {
    let mut failures = Vec::new();
    for record in &event.records {
        match handle_record(links, record).await {
            Ok(outcome) => tracing::debug!(event = %record.event_id, ?outcome, "stream record handled"),
            Err(reason) => {
                tracing::warn!(event = %record.event_id, %reason, "stream record failed");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                failures.push(failure);
            }
        }
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Handles one record.
pub async fn handle_record(links: &LinkService, record: &EventRecord) -> Result<Outcome, String> {
    match string_attribute(&record.change.keys, "sk").as_deref() {
        Some("LINK") => handle_link_record(links, record).await,
        Some(kind @ ("FILE" | "FOLDER" | "COLLECTION")) => handle_catalog_record(links, record, kind).await,
        _ => Ok(Outcome::Ignored),
    }
}

/// A removal of a file, folder or collection, or a move of a file or
/// folder: its links' cascade, again.
async fn handle_catalog_record(links: &LinkService, record: &EventRecord, kind: &str) -> Result<Outcome, String> {
    let reason = match record.event_name.as_str() {
        "REMOVE" => SystemReason::TargetDeleted,
        "MODIFY" if kind != "COLLECTION" => {
            let was = string_attribute(&record.change.old_image, "gsi1pk");
            if was.is_none() || was == string_attribute(&record.change.new_image, "gsi1pk") {
                return Ok(Outcome::Ignored);
            }
            SystemReason::TargetMoved
        }
        _ => return Ok(Outcome::Ignored),
    };
    let doc = string_attribute(&record.change.old_image, "doc").ok_or("the old image holds no record")?;
    let undecodable = |e: serde_json::Error| format!("the old image's {kind} record does not decode: {e}");
    let (account, scope) = match kind {
        "FILE" => {
            let f: File = serde_json::from_str(&doc).map_err(undecodable)?;
            (f.account_id, Target::File(f.id))
        }
        "FOLDER" => {
            let f: Folder = serde_json::from_str(&doc).map_err(undecodable)?;
            (f.account_id, Target::Folder(f.id))
        }
        _ => {
            let c: Collection = serde_json::from_str(&doc).map_err(undecodable)?;
            (c.account_id, Target::Collection(c.id))
        }
    };
    links.cascade(account, scope, reason).await.map(Outcome::Cascaded).map_err(|e| e.to_string())
}

/// A TTL removal of a link item: recorded and released, once.
async fn handle_link_record(links: &LinkService, record: &EventRecord) -> Result<Outcome, String> {
    let by_ttl = record.user_identity.as_ref().is_some_and(|u| u.principal_id == TTL_PRINCIPAL);
    if record.event_name != "REMOVE" || !by_ttl {
        return Ok(Outcome::Ignored);
    }
    let doc = string_attribute(&record.change.old_image, "doc").ok_or("the old image holds no link record")?;
    let link: Link =
        serde_json::from_str(&doc).map_err(|e| format!("the old image's link record does not decode: {e}"))?;
    match links.removed_by_storage(&link).await {
        Ok(true) => Ok(Outcome::Released),
        Ok(false) => Ok(Outcome::AlreadyReleased),
        Err(e) => Err(e.to_string()),
    }
}

/// A string attribute (`{"S": "..."}`) of a stream image, read through its
/// JSON form so no DynamoDB type leaks past this module.
fn string_attribute(item: &impl serde::Serialize, name: &str) -> Option<String> {
    let image = serde_json::to_value(item).ok()?;
    image.get(name)?.get("S")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use publinks_domain::ids::*;
    use publinks_domain::links::{entry, token_hash};
    use publinks_domain::model::*;
    use publinks_domain::signing::SecretKey;
    use publinks_domain::store::*;
    use publinks_embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog};
    use serde_json::json;
    use std::sync::Arc;

    struct Setup {
        service: LinkService,
        store: Arc<EmbeddedCatalog>,
        _dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedCatalog::open(&dir.path().join("c.sqlite3")).unwrap());
        let blobs =
            DirectoryBlobStore::open(&dir.path().join("b"), BlobUrlSigner::new(SecretKey::generate(), "http://x"))
                .unwrap();
        let stores = Stores {
            catalog: store.clone(),
            links: store.clone(),
            visitors: store.clone(),
            blobs: Arc::new(blobs.clone()),
            asset_uploads: Arc::new(blobs.clone()),
            archives: Arc::new(blobs),
            webhooks: store.clone(),
            clock: publinks_domain::clock::system(),
        };
        Setup { service: LinkService::new(&stores, SecretKey::generate(), "http://x"), store, _dir: dir }
    }

    fn expired_link(account: AccountId, target: Target) -> Link {
        let now = chrono::Utc::now();
        let id = LinkId::new();
        Link {
            id,
            account_id: account,
            target,
            token_hash: token_hash(&id.to_string()),
            token_seed: "seed".into(),
            valid_from: None,
            valid_until: Some(now - chrono::Duration::hours(2)),
            password_hash: None,
            password_version: 0,
            expose_unpublished: false,
            hide_identifying_metadata: false,
            preview_only: false,
            created_by: UserId::new(),
            created_at: now - chrono::Duration::hours(3),
            updated_at: now - chrono::Duration::hours(3),
            revision: 0,
            placement: Some(Placement::default()),
            max_downloads: None,
            max_sessions: None,
            exhausted_at: None,
        }
    }

    /// A record as DynamoDB Streams delivers it to Lambda.
    fn record(seq: &str, name: &str, sk: &str, old_doc: Option<String>, by_ttl: bool) -> serde_json::Value {
        let mut r = json!({
            "eventID": format!("e{seq}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/links/stream/2026-01-01T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_795_000_000,
                "Keys": {"pk": {"S": "LINK#x"}, "sk": {"S": sk}},
                "SequenceNumber": seq,
                "SizeBytes": 120,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        });
        if let Some(doc) = old_doc {
            r["dynamodb"]["OldImage"] =
                json!({"pk": {"S": "LINK#x"}, "sk": {"S": sk}, "doc": {"S": doc}, "ttl": {"N": "1795000000"}});
        }
        if name != "REMOVE" {
            r["dynamodb"]["NewImage"] = json!({"pk": {"S": "LINK#x"}, "sk": {"S": sk}, "doc": {"S": "{}"}});
        }
        if by_ttl {
            r["userIdentity"] = json!({"type": "Service", "principalId": TTL_PRINCIPAL});
        }
        r
    }

    #[tokio::test]
    async fn a_ttl_removal_is_recorded_and_released_once_and_bad_records_are_reported() {
        let s = setup();
        let account = AccountId::new();
        let now = chrono::Utc::now();
        let collection = Collection {
            id: CollectionId::new(),
            account_id: account,
            name: "Shared".into(),
            created_by: UserId::new(),
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        s.store.insert_collection(&collection).await.unwrap();
        let link = expired_link(account, Target::Collection(collection.id));
        let limits = LinkLimits { per_target: 5, per_account: 100 };
        let created = entry(
            &link,
            AuditActor::User { user_id: link.created_by },
            AuditAction::Created,
            LinkChanges::default(),
            link.created_at,
        );
        s.store.create_link(&link, limits, &created).await.unwrap();
        let doc = serde_json::to_string(&link).unwrap();
        let other = serde_json::to_string(&expired_link(account, Target::File(FileId::new()))).unwrap();
        let batch: Event = serde_json::from_value(json!({"Records": [
            record("100", "INSERT", "LINK", None, false),
            record("101", "MODIFY", "LINK", Some(other.clone()), false),
            record("102", "REMOVE", "LINK", Some(other), false),
            record("103", "REMOVE", "TOKEN", Some("{}".into()), true),
            record("104", "REMOVE", "LINK", Some("{not json".into()), true),
            record("105", "REMOVE", "LINK", Some(doc), true),
        ]}))
        .unwrap();

        for delivery in 0..2 {
            let response = handle(&s.service, &batch).await;
            let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
            assert_eq!(failed, [Some("104".to_string())], "only the malformed record fails (delivery {delivery})");
        }
        assert_eq!(s.store.link(link.id).await.unwrap(), None);
        let query = AuditQuery { link: Some(link.id), ..Default::default() };
        let log = s.store.audit_entries(account, &query, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(log.len(), 2, "created, then deleted once: {log:?}");
        assert_eq!(log[0].action, AuditAction::Deleted);
        assert_eq!(log[0].actor, AuditActor::System { reason: SystemReason::Expired });
        let outcome = handle_record(&s.service, &batch.records[5]).await;
        assert_eq!(outcome, Ok(Outcome::AlreadyReleased));
        assert_eq!(
            handle_record(&s.service, &batch.records[2]).await,
            Ok(Outcome::Ignored),
            "a user's delete is done already"
        );
    }
}
