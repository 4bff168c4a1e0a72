//! Between the writer and the view's channel ([`crate::serve::published`]) sits
//! the [`Preparer`]: the writer (the ingest thread, or shard mode's table
//! thread) hands it a freshly built view (a snapshot: no work) and goes on;
//! the preparer materializes, on its own thread, the tables and orders
//! readers asked for on the previous view plus those `/metrics` and
//! rank-change detection always read, and only then publishes. A query
//! therefore finds its order ready, and the writer never pays for sorting.
//! Turning ready goes through the preparer too, so the view is out before
//! `/readyz` says ready; that one view is prepared just after it is out.

use std::sync::{Arc, Condvar, Mutex};

use engagement_core::view::View;

use crate::directory::Directories;
use crate::pipeline::status::{Readiness, StatusTx};
use crate::serve::metrics::Metrics;
use crate::serve::published::{Published, ViewTx};
use crate::telemetry::events::{CaughtUp, InternalEvent, ViewPublished};

/// One view to prepare and publish.
struct Job {
    published: Published,
    /// Turn ready once this view is out (with the lag left behind).
    then_ready: Option<u64>,
}

struct Shared {
    /// The latest view not yet taken: a newer one replaces an older one the
    /// preparer has not started on.
    next: Mutex<(Option<Job>, bool)>,
    wake: Condvar,
    views: ViewTx,
    status: Arc<StatusTx>,
    metrics: Arc<Metrics>,
    /// Attached to every view before it is prepared.
    directory: Arc<Directories>,
}

/// Prepares and publishes views; on its own thread in the daemon, inline in
/// tests.
pub struct Preparer {
    shared: Arc<Shared>,
    inline: bool,
}

impl Preparer {
    /// A preparer running on a thread of its own until dropped.
    pub fn spawn(
        views: ViewTx,
        status: Arc<StatusTx>,
        metrics: Arc<Metrics>,
        directory: Arc<Directories>,
    ) -> std::io::Result<Preparer> {
        let mut p = Preparer::inline(views, status, metrics, directory);
        let shared = p.shared.clone();
        std::thread::Builder::new().name("views".into()).spawn(move || run(&shared))?;
        p.inline = false;
        Ok(p)
    }

    /// A preparer that does the work in `publish` itself.
    pub fn inline(
        views: ViewTx,
        status: Arc<StatusTx>,
        metrics: Arc<Metrics>,
        directory: Arc<Directories>,
    ) -> Preparer {
        let shared =
            Shared { next: Mutex::new((None, false)), wake: Condvar::new(), views, status, metrics, directory };
        Preparer { shared: Arc::new(shared), inline: true }
    }

    /// The page directory views are given.
    pub fn directory(&self) -> &Directories {
        &self.shared.directory
    }

    /// Hands over a view; with `then_ready`, the daemon turns ready once it
    /// is published (unless it is stopping by then).
    pub fn publish(&self, view: Arc<View>, ready: bool, then_ready: Option<u64>) {
        let job = Job { published: Published { view, ready }, then_ready };
        if self.inline {
            let previous = self.shared.views.borrow().view.clone();
            return prepare_and_publish(&self.shared, job, &previous);
        }
        let mut next = self.shared.next.lock().expect("preparer lock");
        // A pending ready turn must not be lost when a newer view replaces it.
        let then_ready = job.then_ready.or(next.0.as_ref().and_then(|j| j.then_ready));
        next.0 = Some(Job { then_ready, ..job });
        self.shared.wake.notify_one();
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.shared.next.lock().expect("preparer lock").1 = true;
        self.shared.wake.notify_one();
    }
}

fn run(shared: &Shared) {
    loop {
        let job = {
            let mut next = shared.next.lock().expect("preparer lock");
            while next.0.is_none() && !next.1 {
                next = shared.wake.wait(next).expect("preparer lock");
            }
            match next.0.take() {
                Some(job) => job,
                None => return,
            }
        };
        let previous = shared.views.borrow().view.clone();
        prepare_and_publish(shared, job, &previous);
    }
}

/// Prepares and publishes a view. The view that turns the daemon ready is
/// published first and prepared right after: its answers are caught up
/// either way, and a restarting instance should not stay out of service
/// while orders are sorted (the first queries compute any order they find
/// missing).
fn prepare_and_publish(shared: &Shared, job: Job, previous: &View) {
    let started = std::time::Instant::now();
    let view = job.published.view.clone();
    view.attach(shared.directory.current());
    let keys = previous.prepared();
    if job.then_ready.is_none() {
        view.prepare(&keys);
    }
    shared.views.send_replace(job.published);
    if let Some(behind) = job.then_ready {
        let turned = shared.status.send_if_modified(|r| {
            let turn = !matches!(r, Readiness::Stopping | Readiness::Ready);
            if turn {
                *r = Readiness::Ready;
            }
            turn
        });
        if turned {
            CaughtUp { behind }.emit(&shared.metrics);
        }
        view.prepare(&keys);
    }
    ViewPublished { view: &view, build: started.elapsed() }.emit(&shared.metrics);
    // Last: returning memory can take a while on a large heap.
    release_freed_memory();
}

/// Hands memory freed by the views just replaced back to the system: glibc
/// keeps freed heap pages otherwise, and a view's tables and orders are
/// the largest short-lived allocations of the daemon.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages to the kernel; it
    // takes the allocator's own locks and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
