//! Webhooks and their deliveries on the embedded store.

use super::catalog::*;
use super::links::count;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use publinks_domain::ids::*;
use publinks_domain::store::*;
use publinks_domain::webhooks::{Delivery, Webhook, WebhookStore};
use rusqlite::params;

#[async_trait]
impl WebhookStore for EmbeddedCatalog {
    async fn insert_webhook(&self, hook: &Webhook, max_per_account: usize) -> StoreResult<bool> {
        let h = hook.clone();
        self.tx(move |tx| {
            let held = count(tx, "SELECT COUNT(*) FROM webhooks WHERE account_id = ?1", [h.account_id.to_string()])?;
            if held as usize >= max_per_account {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO webhooks (id, account_id, created_at, revision, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    h.id.to_string(),
                    h.account_id.to_string(),
                    time_key(&h.created_at),
                    h.revision as i64,
                    encode(&h)
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("webhook") } else { backend(e) })?;
            Ok(true)
        })
        .await
    }

    async fn webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>> {
        self.read(move |tx| get_doc(tx, "webhooks", &id.to_string())).await
    }

    async fn replace_webhook(&self, hook: &Webhook) -> StoreResult<Webhook> {
        let mut h = hook.clone();
        self.tx(move |tx| {
            let expected = h.revision;
            h.revision += 1;
            let n = tx
                .execute(
                    "UPDATE webhooks SET revision = ?1, doc = ?2 WHERE id = ?3 AND revision = ?4",
                    params![h.revision as i64, encode(&h), h.id.to_string(), expected as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "webhooks", &h.id.to_string(), "webhook"));
            }
            Ok(h)
        })
        .await
    }

    async fn delete_webhook(&self, id: WebhookId, account: AccountId) -> StoreResult<bool> {
        self.tx(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2",
                    [id.to_string(), account.to_string()],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn webhooks_of_account(&self, account: AccountId) -> StoreResult<Vec<Webhook>> {
        self.read(move |tx| {
            docs(tx, "SELECT doc FROM webhooks WHERE account_id = ?1 ORDER BY created_at, id", [account.to_string()])
        })
        .await
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        let d = delivery.clone();
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, created_at, due_at, revision, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    d.id.to_string(),
                    d.webhook_id.to_string(),
                    time_key(&d.created_at),
                    d.next_attempt_at.as_ref().map(time_key),
                    d.revision as i64,
                    encode(&d)
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("delivery") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        self.read(move |tx| get_doc(tx, "webhook_deliveries", &id.to_string())).await
    }

    async fn replace_delivery(&self, delivery: &Delivery) -> StoreResult<Delivery> {
        let mut d = delivery.clone();
        self.tx(move |tx| {
            let expected = d.revision;
            d.revision += 1;
            let n = tx
                .execute(
                    "UPDATE webhook_deliveries SET revision = ?1, due_at = ?2, doc = ?3 WHERE id = ?4 AND revision = ?5",
                    params![
                        d.revision as i64,
                        d.next_attempt_at.as_ref().map(time_key),
                        encode(&d),
                        d.id.to_string(),
                        expected as i64
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "webhook_deliveries", &d.id.to_string(), "delivery"));
            }
            Ok(d)
        })
        .await
    }

    async fn deliveries_of_webhook(&self, webhook: WebhookId, limit: u32) -> StoreResult<Vec<Delivery>> {
        self.read(move |tx| {
            docs(
                tx,
                "SELECT doc FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
                params![webhook.to_string(), limit],
            )
        })
        .await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>> {
        self.read(move |tx| {
            docs(
                tx,
                "SELECT doc FROM webhook_deliveries WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
                params![time_key(&now), limit],
            )
        })
        .await
    }
}
