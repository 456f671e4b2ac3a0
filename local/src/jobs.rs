//! The local server's library job queue: jobs run in this process, a couple
//! at a time, through the same [`LibraryJobs`] the `library-worker` function
//! runs. A job that could not finish (storage failed) runs again after a
//! pause, a few times, as SQS would deliver it again. Jobs queued when the
//! process stops are lost with it, but not their work: the upload sweep
//! hands out again an upload whose ingest seems lost, and the worker resumes
//! unfinished folder deletions when it starts.

use async_trait::async_trait;
use publinks_domain::jobs::{LibraryJob, LibraryJobs};
use publinks_domain::store::{LibraryJobQueue, StoreError, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// How often a job that failed is run, in all.
const ATTEMPTS: u32 = 3;

/// The sending side: what the library enqueues to.
#[derive(Clone, Debug)]
pub struct LocalJobQueue {
    sender: mpsc::UnboundedSender<LibraryJob>,
}

/// The receiving side, until [`spawn`](Self::spawn) runs it.
#[derive(Debug)]
pub struct LocalJobWorker {
    receiver: mpsc::UnboundedReceiver<LibraryJob>,
    parallel: usize,
}

/// A queue and the worker that will run what it is handed. The two are
/// made apart because the library the jobs run on holds the queue.
pub fn local_job_queue(parallel: usize) -> (LocalJobQueue, LocalJobWorker) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (LocalJobQueue { sender }, LocalJobWorker { receiver, parallel: parallel.max(1) })
}

#[async_trait]
impl LibraryJobQueue for LocalJobQueue {
    async fn enqueue(&self, job: &LibraryJob) -> StoreResult<()> {
        self.sender.send(job.clone()).map_err(|_| StoreError::Backend("the library job worker has stopped".into()))
    }
}

impl LocalJobWorker {
    /// Runs every job handed to the queue on `jobs`, at most `parallel` at
    /// once, after handing itself those an earlier run left unfinished.
    pub fn spawn(mut self, jobs: LibraryJobs, queue: LocalJobQueue) -> tokio::task::JoinHandle<()> {
        let permits = Arc::new(Semaphore::new(self.parallel));
        tokio::spawn(async move {
            match jobs.unfinished().await {
                Ok(left) => {
                    for job in &left {
                        let _ = queue.enqueue(job).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list the library jobs left unfinished"),
            }
            while let Some(job) = self.receiver.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let jobs = jobs.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    for attempt in 1..=ATTEMPTS {
                        match jobs.run(&job, None).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(?job, attempt, error = %e, "a library job failed");
                                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                            }
                        }
                    }
                });
            }
        })
    }
}
