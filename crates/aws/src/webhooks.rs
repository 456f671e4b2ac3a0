//! Webhooks and their deliveries on the activity table (`infra/README.md`
//! has the layout): a webhook per item listed by account, a delivery per
//! item listed by webhook and, while it waits for an attempt, by when it is due.

use super::layout::{self, Index};
use super::links::below;
use super::table::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use publinks_domain::ids::*;
use publinks_domain::store::*;
use publinks_domain::webhooks::{Delivery, Webhook, WebhookStore};

/// How long a delivery's record is kept after it was made (DynamoDB's TTL).
const DELIVERY_RETENTION_DAYS: i64 = 30;

/// Webhooks on the activity table.
#[derive(Clone, Debug)]
pub struct DynamoWebhooks {
    activity: Table,
}

impl DynamoWebhooks {
    /// The webhooks on `activity_table`, created from `infra/template.yaml`.
    pub fn new(client: Client, activity_table: impl Into<String>) -> Self {
        DynamoWebhooks { activity: Table::new(client, activity_table) }
    }
}

fn delivery_item(d: &Delivery) -> Item {
    let mut item = revisioned_item(&layout::delivery_keys(d), encode(d), d.revision);
    item.insert(layout::TTL.to_string(), ttl_at(d.created_at + Duration::days(DELIVERY_RETENTION_DAYS)));
    item
}

#[async_trait]
impl WebhookStore for DynamoWebhooks {
    async fn insert_webhook(&self, hook: &Webhook, max_per_account: usize) -> StoreResult<bool> {
        // A missing counter passes its condition whatever the limit.
        if max_per_account == 0 {
            return Ok(false);
        }
        let item = revisioned_item(&layout::webhook_keys(hook), encode(hook), hook.revision);
        let limit = u32::try_from(max_per_account).unwrap_or(u32::MAX);
        let counter = layout::account_webhooks_counter_key(hook.account_id);
        let writes = vec![
            self.activity.add_write(&counter, layout::COUNT, 1, Some(below(limit))),
            self.activity.put_write(item, Some(Condition::absent())),
        ];
        match self.activity.transact(writes).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed(0) => Ok(false),
            Err(e) if e.failed(1) => Err(StoreError::AlreadyExists("webhook")),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>> {
        self.activity.get_doc(&layout::webhook_key(&id.to_string())).await
    }

    async fn replace_webhook(&self, hook: &Webhook) -> StoreResult<Webhook> {
        let mut h = hook.clone();
        h.revision += 1;
        let item = revisioned_item(&layout::webhook_keys(&h), encode(&h), h.revision);
        self.activity.replace(item, Condition::revision(hook.revision), "webhook").await?;
        Ok(h)
    }

    async fn delete_webhook(&self, id: WebhookId, account: AccountId) -> StoreResult<bool> {
        let writes = vec![
            self.activity.delete_write(&layout::webhook_key(&id.to_string()), Some(Condition::present())),
            self.activity.add_write(&layout::account_webhooks_counter_key(account), layout::COUNT, -1, None),
        ];
        match self.activity.transact(writes).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_only(0) => Ok(false),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn webhooks_of_account(&self, account: AccountId) -> StoreResult<Vec<Webhook>> {
        let q = Query::partition(layout::account_webhooks_partition(account));
        let items = self.activity.query_first(Some(Index::Gsi1), &q, 1000).await?;
        items.iter().map(decode).collect()
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.activity.insert(delivery_item(delivery), "delivery").await
    }

    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        self.activity.get_doc(&layout::delivery_key(&id.to_string())).await
    }

    async fn replace_delivery(&self, delivery: &Delivery) -> StoreResult<Delivery> {
        let mut d = delivery.clone();
        d.revision += 1;
        self.activity.replace(delivery_item(&d), Condition::revision(delivery.revision), "delivery").await?;
        Ok(d)
    }

    async fn deliveries_of_webhook(&self, webhook: WebhookId, limit: u32) -> StoreResult<Vec<Delivery>> {
        let q = Query::partition(layout::webhook_deliveries_partition(webhook)).descending(true);
        let items = self.activity.query_first(Some(Index::Gsi1), &q, limit as usize).await?;
        items.iter().map(decode).collect()
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>> {
        let q = Query::partition(layout::DUE_DELIVERIES).below(layout::below_positions_after(&layout::time_key(&now)));
        let items = self.activity.query_first(Some(Index::Gsi2), &q, limit as usize).await?;
        items.iter().map(decode).collect()
    }
}
