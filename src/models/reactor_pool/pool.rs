//! The workers' side of `reactor-pool`: the job queue, the hand-off of a wake-up's jobs under
//! one lock, the workers' loop, and the results list back to the reactor.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

use crate::protocol::{Flow, Session};

/// One connection's work, on its way to a worker and back.
pub(super) struct Job {
    /// The connection's slab key and id: a slot reused by a later connection has another id.
    pub(super) key: usize,
    pub(super) id: u64,
    pub(super) session: Session,
    /// The bytes to handle; a worker hands it back cleared.
    pub(super) input: Vec<u8>,
    /// Empty on the way out; the reply on the way back.
    pub(super) out: Vec<u8>,
    pub(super) flow: Flow,
}

/// What the reactor and the workers share.
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// Wakes the reactor: for results, and for `stop`.
    pub(super) waker: Waker,
    pub(super) queue: Mutex<Queue>,
    pub(super) job_ready: Condvar,
    /// Finished jobs; a worker wakes the reactor only when it finds the list empty.
    pub(super) results: Mutex<Vec<Job>>,
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) jobs: VecDeque<Job>,
    /// Workers waiting on `job_ready`: with none, a new job needs no futex wake.
    pub(super) idle: usize,
}

/// Tells the workers to return and joins them; `false` if one panicked.
pub(super) fn stop_workers(shared: &Shared, workers: Vec<JoinHandle<()>>) -> bool {
    shared.stop.store(true, Ordering::Release);
    {
        // Taking the lock orders this wake-up after any worker's check of `stop`.
        let _queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        shared.job_ready.notify_all();
    }
    let mut all_fine = true;
    for w in workers {
        all_fine &= w.join().is_ok();
    }
    all_fine
}

/// A worker: takes jobs until the server stops, runs the session, hands the result back.
pub(super) fn work(shared: &Shared) {
    while let Some(mut job) = shared.take() {
        job.flow = job.session.on_data(&job.input, &mut job.out);
        job.input.clear();
        let was_empty = {
            let mut results = shared.results.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = results.is_empty();
            results.push(job);
            was_empty
        };
        // A non-empty list has a wake-up pending already: the reactor takes the whole list.
        // A failed wake means the reactor is gone (stopping): the result is dropped.
        if was_empty {
            let _ = shared.waker.wake();
        }
    }
}

impl Shared {
    /// Hands every job of `outbox` to the workers under one lock, and wakes as many sleeping
    /// workers as there are jobs (at most): one futex wake per worker per wake-up of the
    /// reactor, not one per job (a condvar's notify is a system call whenever a thread waits).
    pub(super) fn submit_all(&self, outbox: &mut Vec<Job>) {
        if outbox.is_empty() {
            return;
        }
        let wake = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let wake = queue.idle.min(outbox.len());
            queue.jobs.extend(outbox.drain(..));
            wake
        };
        for _ in 0..wake {
            self.job_ready.notify_one();
        }
    }

    /// The next job; `None` once the server is stopping.
    pub(super) fn take(&self) -> Option<Job> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            queue.idle += 1;
            queue = self
                .job_ready
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
            queue.idle -= 1;
        }
    }
}
