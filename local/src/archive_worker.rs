//! The local server's archive queue: jobs are built in this process, a
//! couple at a time, by the same builder the `zip-builder` function runs.

use async_trait::async_trait;
use publinks_archive::builder::ArchiveBuilder;
use publinks_domain::ids::ArchiveId;
use publinks_domain::store::{ArchiveQueue, StoreResult};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Builds queued archive jobs on background tasks.
#[derive(Clone)]
pub struct LocalArchiveWorker {
    builder: ArchiveBuilder,
    permits: Arc<Semaphore>,
}

impl LocalArchiveWorker {
    /// A worker running at most `parallel` builds at once.
    pub fn new(builder: ArchiveBuilder, parallel: usize) -> Self {
        LocalArchiveWorker { builder, permits: Arc::new(Semaphore::new(parallel.max(1))) }
    }
}

#[async_trait]
impl ArchiveQueue for LocalArchiveWorker {
    async fn enqueue(&self, id: ArchiveId) -> StoreResult<()> {
        let (builder, permits) = (self.builder.clone(), self.permits.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            if let Err(e) = builder.build(id, None).await {
                tracing::warn!(job = %id, error = %e, "archive build failed");
            }
        });
        Ok(())
    }
}
