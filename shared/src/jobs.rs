//! The library's background work as the local server does it: jobs run on a
//! task of this process, by the very code the `library-worker` function runs
//! in AWS ([`Library::run_job`]).

use crate::domain::library::Library;
use crate::store::{LibraryJob, LibraryJobQueue, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a failing job is tried before it is left for the next start.
const ATTEMPTS: u32 = 5;

/// The queue end: what the library hands jobs to.
#[derive(Clone)]
pub struct LocalJobQueue {
    sender: mpsc::UnboundedSender<LibraryJob>,
}

/// The worker end: runs the jobs once started with a library.
pub struct LocalJobWorker {
    receiver: mpsc::UnboundedReceiver<LibraryJob>,
}

/// A queue and the worker that empties it. Jobs handed in before the worker
/// starts wait for it.
pub fn local_jobs() -> (Arc<LocalJobQueue>, LocalJobWorker) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Arc::new(LocalJobQueue { sender }), LocalJobWorker { receiver })
}

#[async_trait]
impl LibraryJobQueue for LocalJobQueue {
    async fn enqueue(&self, job: LibraryJob) -> StoreResult<()> {
        // The worker is gone only when the server is stopping; the job then
        // waits in the store for the next start.
        if self.sender.send(job).is_err() {
            tracing::warn!("the library worker has stopped; the job resumes at the next start");
        }
        Ok(())
    }
}

impl LocalJobWorker {
    /// Runs the jobs, one at a time, on a background task: first those left
    /// unfinished by an earlier run of the server, then each one handed in.
    /// A job that fails is tried again after a pause, a few times.
    pub fn start(mut self, library: Library) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match library.unfinished_jobs().await {
                Ok(left) => {
                    for job in left {
                        run(&library, &job).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list the jobs left unfinished"),
            }
            while let Some(job) = self.receiver.recv().await {
                run(&library, &job).await;
            }
        })
    }
}

async fn run(library: &Library, job: &LibraryJob) {
    for attempt in 1..=ATTEMPTS {
        match library.run_job(job, None).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(?job, attempt, error = %e, "a library job failed");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    tracing::error!(?job, "a library job failed every time; it resumes at the next start");
}
