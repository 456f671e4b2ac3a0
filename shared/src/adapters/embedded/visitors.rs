//! Downloads and throttle buckets on the embedded store.

use super::catalog::*;
use crate::domain::model::*;
use crate::ids::*;
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

/// The key a visitor's downloads are listed by: one link, one session.
fn visitor_key(link: LinkId, session: &str) -> String {
    format!("{link}/{session}")
}

#[async_trait]
impl DownloadStore for EmbeddedCatalog {
    async fn record_download(&self, record: &DownloadRecord) -> StoreResult<()> {
        let r = record.clone();
        self.tx(move |tx| {
            let visitor = match &r.by {
                Downloader::PublicLink { link_id, session } => Some(visitor_key(*link_id, session)),
                Downloader::User { .. } => None,
            };
            tx.execute(
                "INSERT INTO downloads (id, account_id, at, visitor, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id.to_string(), r.account_id.to_string(), time_key(&r.at), visitor, encode(&r)],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("download") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn account_downloads(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<DownloadRecord>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(tx, "downloads", "account_id = ?1", &[account.to_string()], ("at", "id", true), &page)
        })
        .await
    }

    async fn visitor_downloads(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<DownloadRecord>> {
        let (page, key) = (page.clone(), visitor_key(link, session));
        self.read(move |tx| keyset_page(tx, "downloads", "visitor = ?1", &[key], ("at", "id", true), &page)).await
    }
}

#[async_trait]
impl ThrottleStore for EmbeddedCatalog {
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
        let key = key.to_string();
        self.read(move |tx| {
            use rusqlite::OptionalExtension;
            let doc: Option<String> = tx
                .query_row("SELECT doc FROM throttles WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| decode(&d)).transpose()
        })
        .await
    }

    async fn put_throttle_state(&self, key: &str, state: &ThrottleState, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let (key, mut s) = (key.to_string(), state.clone());
        self.tx(move |tx| {
            let expected = s.revision;
            s.revision += 1;
            let n = if expected == 0 {
                tx.execute(
                    "INSERT INTO throttles (key, revision, expires_at, doc) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![key, s.revision as i64, time_key(&expires_at), encode(&s)],
                )
            } else {
                tx.execute(
                    "UPDATE throttles SET revision = ?1, expires_at = ?2, doc = ?3 WHERE key = ?4 AND revision = ?5",
                    params![s.revision as i64, time_key(&expires_at), encode(&s), key, expected as i64],
                )
            }
            .map_err(backend)?;
            tx.execute("DELETE FROM throttles WHERE expires_at < ?1", [time_key(&Utc::now())]).map_err(backend)?;
            if n == 0 { Err(StoreError::Conflict("throttle")) } else { Ok(()) }
        })
        .await
    }
}
