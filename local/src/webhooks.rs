//! The local server's delivery worker: what the library job queue and
//! `library-worker` do for webhooks in AWS. A delivery scheduled wakes it;
//! while deliveries wait for a retry it looks for due ones every second, on
//! the services' clock (so a test that moves the clock past a backoff sees
//! the next attempt without waiting a day).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use publinks_domain::ids::DeliveryId;
use publinks_domain::store::StoreResult;
use publinks_domain::webhooks::{DeliveryQueue, WebhookService};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the worker looks for due deliveries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// The in-process delivery queue: scheduling wakes the worker, which reads
/// what is due from the store (the store is the queue).
#[derive(Clone, Debug, Default)]
pub struct LocalDeliveries {
    wake: Arc<Notify>,
}

#[async_trait]
impl DeliveryQueue for LocalDeliveries {
    async fn schedule(&self, _delivery: DeliveryId, _at: DateTime<Utc>) -> StoreResult<()> {
        self.wake.notify_one();
        Ok(())
    }
}

impl LocalDeliveries {
    /// Starts the worker that attempts due deliveries through `service`.
    /// It looks for due deliveries once woken, then every second for as
    /// long as some delivery still waits: an idle server reads nothing.
    pub fn spawn_worker(&self, service: WebhookService) -> tokio::task::JoinHandle<()> {
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut waiting = false;
            loop {
                if waiting {
                    let _ = tokio::time::timeout(POLL, wake.notified()).await;
                } else {
                    wake.notified().await;
                }
                waiting = match drain(&service).await {
                    Ok(()) => service.any_pending().await.unwrap_or(true),
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook deliveries failed; the worker tries again");
                        true
                    }
                };
            }
        })
    }

    /// Wakes the worker: at start, for deliveries left pending by the last run.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Attempts every due delivery.
async fn drain(service: &WebhookService) -> publinks_domain::DomainResult<()> {
    while service.deliver_due(50).await? > 0 {}
    Ok(())
}
