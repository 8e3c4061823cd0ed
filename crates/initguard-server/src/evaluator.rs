//! The evaluation threads: where reviews are parsed and evaluated, off the async reactor.
//!
//! A fixed set of threads takes jobs from one shared queue. Under load the queue is never
//! empty, so a thread finishing one review starts the next without sleeping or being woken:
//! tokio's blocking pool, used before, woke a thread through its mutex and condition variable
//! for every review, and those context switches cost more CPU than the built-in policies.
//! The threads bound how many evaluations run at once; the queue holds the rest, each until
//! its request's deadline.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why an evaluation gave no result.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("the evaluation panicked; see the server log")]
    Panicked,
    #[error("the evaluation threads have stopped")]
    Stopped,
}

/// A fixed pool of named evaluation threads fed by one queue.
#[derive(Debug)]
pub struct Evaluator {
    jobs: crossbeam_channel::Sender<Job>,
    threads: usize,
}

impl Evaluator {
    /// Starts `threads` evaluation threads (at least one). They end when the evaluator is
    /// dropped and the queue is empty, so reviews in flight finish.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let threads = threads.max(1);
        for index in 0..threads {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("initguard-eval-{index}"))
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })?;
        }
        Ok(Self { jobs, threads })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs queued and not yet taken by a thread.
    pub fn waiting(&self) -> usize {
        self.jobs.len()
    }

    /// Runs `work` on an evaluation thread and waits for its result without blocking the
    /// reactor. A caller that stops waiting (its deadline passed) cancels the job if it has
    /// not started yet.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EvaluationError> {
        let (result, receive) = oneshot::channel();
        let job: Job = Box::new(move || {
            if result.is_closed() {
                return;
            }
            // A panic drops `result` unsent, which the caller sees as `Panicked`; the thread
            // lives on for the next job.
            if let Ok(value) = catch_unwind(AssertUnwindSafe(work)) {
                let _ = result.send(value);
            }
        });
        self.jobs.send(job).map_err(|_| EvaluationError::Stopped)?;
        receive.await.map_err(|_| EvaluationError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_work_off_the_calling_thread_and_returns_its_result() {
        let evaluator = Evaluator::start(2).unwrap();
        let caller = thread::current().id();
        let (value, name) = evaluator
            .run(move || {
                assert_ne!(thread::current().id(), caller);
                (21 * 2, thread::current().name().map(str::to_owned))
            })
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert!(name.unwrap().starts_with("initguard-eval-"));
    }

    #[tokio::test]
    async fn a_panic_is_an_error_and_the_thread_serves_the_next_job() {
        let evaluator = Evaluator::start(1).unwrap();
        let panicked = evaluator.run(|| panic!("policy bug")).await;
        assert!(matches!(panicked, Err(EvaluationError::Panicked)));
        assert_eq!(evaluator.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_job_whose_caller_gave_up_is_skipped() {
        let evaluator = Arc::new(Evaluator::start(1).unwrap());
        let (started, is_started) = oneshot::channel::<()>();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let evaluator = Arc::clone(&evaluator);
            async move {
                evaluator
                    .run(move || {
                        started.send(()).unwrap();
                        wait.recv().unwrap();
                    })
                    .await
            }
        });
        is_started.await.unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let abandoned = evaluator.run(move || counted.fetch_add(1, Ordering::SeqCst));
        // The second job waits behind the first, which holds the only thread; its caller
        // gives up.
        let timed_out = tokio::time::timeout(Duration::from_millis(50), abandoned).await;
        assert!(timed_out.is_err());
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // Jobs run in order, so once this one is done the abandoned one was dequeued.
        evaluator.run(|| ()).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
