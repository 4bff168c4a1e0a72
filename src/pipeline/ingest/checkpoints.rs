//! Checkpoints from ingest's side: restoring the newest one at start, the
//! schedule, and the thread that makes each one durable. A checkpoint
//! pauses consumption only while the state is serialized into the page
//! cache ([`checkpoint::write`]); fsync and rename run on another thread,
//! and only then are its offsets handed back to be committed.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use engagement_core::engine::Engine;

use super::{Offsets, Parts};
use crate::pipeline::checkpoint::{self, Pending};
use crate::pipeline::status::Readiness;
use crate::serve::metrics::Metrics;
use crate::telemetry::events::{
    CheckpointDiscarded, CheckpointDone, CheckpointFailed, CheckpointOfOtherWindows, CheckpointRestored,
    CheckpointSkipped, InternalEvent, NoCheckpoint,
};

/// The state to start from: a restored engine and where each partition
/// resumes, or an empty engine that replays from the earliest offsets.
pub struct Restored {
    pub engine: Engine,
    pub start: Offsets,
    pub checkpointer: Option<Checkpointer>,
}

/// Restores the newest valid checkpoint of `state.dir`, if one is set.
pub fn restore(parts: &Parts) -> anyhow::Result<Restored> {
    let cfg = &parts.config;
    let Some(dir) = cfg.state.dir.clone() else {
        return Ok(Restored { engine: Engine::new(cfg.engine), start: Vec::new(), checkpointer: None });
    };
    parts.status.send_replace(Readiness::Restoring);
    let started = Instant::now();
    let (restored, report) = checkpoint::restore(&dir, cfg.engine)
        .map_err(|e| anyhow::anyhow!("reading state.dir {}: {e}", dir.display()))?;
    let m = &parts.metrics;
    for (path, reason) in &report.discarded {
        CheckpointDiscarded { path, reason }.emit(m);
    }
    for (path, reason) in &report.skipped {
        CheckpointSkipped { path, reason }.emit(m);
    }
    for (path, reason) in &report.other_windows {
        CheckpointOfOtherWindows { path, reason }.emit(m);
    }
    let topic = cfg.kafka.topic.clone();
    let checkpointer = |seq| Checkpointer::new(dir.clone(), topic.clone(), seq, cfg.state.checkpoint_interval);
    let Some(r) = restored else {
        NoCheckpoint { dir: &dir, took: started.elapsed() }.emit(m);
        return Ok(Restored {
            engine: Engine::new(cfg.engine),
            start: Vec::new(),
            checkpointer: Some(checkpointer(1)),
        });
    };
    // Another topic's totals merged into this one's would stay for good:
    // most likely state.dir points at the wrong directory, which only an
    // operator can tell.
    if r.topic != cfg.kafka.topic {
        anyhow::bail!(
            "the checkpoint {} in state.dir {} was taken on topic {}, but kafka.topic is {}: its state is not \
             used. Point state.dir at {}'s own directory, or move the checkpoints out of {} to rebuild from the topic",
            r.path.display(),
            dir.display(),
            r.topic,
            cfg.kafka.topic,
            cfg.kafka.topic,
            dir.display()
        );
    }
    let took = started.elapsed();
    CheckpointRestored { seq: r.seq, bytes: r.bytes, posts: r.engine.usage().posts, took }.emit(m);
    Ok(Restored { engine: r.engine, start: r.offsets, checkpointer: Some(checkpointer(r.seq + 1)) })
}

/// A checkpoint that became durable: its offsets may be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    pub seq: u64,
    pub offsets: Offsets,
}

/// One checkpoint on its way to the disk.
struct InFlight {
    started: Instant,
    done: mpsc::Receiver<std::io::Result<Pending>>,
}

/// The checkpoint schedule of one state directory.
pub struct Checkpointer {
    dir: PathBuf,
    topic: String,
    seq: u64,
    interval: Duration,
    next_at: Instant,
    in_flight: Option<InFlight>,
}

impl Checkpointer {
    pub fn new(dir: PathBuf, topic: String, seq: u64, interval: Duration) -> Checkpointer {
        Checkpointer { dir, topic, seq, interval, next_at: Instant::now() + interval, in_flight: None }
    }

    /// Collects the checkpoint in flight when it is done, or starts one
    /// when due. Returns a checkpoint that just became durable.
    pub fn tick(&mut self, now: Instant, engine: &Engine, offsets: &Offsets, m: &Metrics) -> Option<Durable> {
        if let Some(flight) = &self.in_flight {
            let result = match flight.done.try_recv() {
                Ok(result) => result,
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => Err(std::io::Error::other("checkpoint thread died")),
            };
            let flight = self.in_flight.take().expect("checked above");
            return finished(flight.started, result, false, m).ok();
        }
        if now < self.next_at {
            return None;
        }
        self.next_at = now + self.interval;
        let started = Instant::now();
        // The only pause of the consume loop: taking the snapshot (a pointer
        // per chunk). Serializing, fsync and rename happen on the thread.
        let state = engine.durable_snapshot();
        let pause = started.elapsed();
        let (seq, dir, topic, offsets) = (self.next_seq(), self.dir.clone(), self.topic.clone(), offsets.clone());
        let (tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            let written = checkpoint::write(&dir, seq, &topic, &offsets, &state).and_then(Pending::finish);
            let _ = tx.send(written.map(|mut p| {
                p.pause = pause;
                p
            }));
        });
        match spawned {
            Ok(_) => self.in_flight = Some(InFlight { started, done }),
            Err(error) => CheckpointFailed { error: &error, last: false }.emit(m),
        }
        None
    }

    /// The checkpoint taken at shutdown, written and made durable on this
    /// thread (after the one in flight, if any, has finished). Its failure
    /// is returned: the process must not exit as if its state were saved.
    pub fn last(&mut self, engine: &Engine, offsets: &Offsets, m: &Metrics) -> std::io::Result<Durable> {
        if let Some(flight) = self.in_flight.take() {
            let _ = flight.done.recv();
        }
        let started = Instant::now();
        finished(started, self.write(engine, offsets).and_then(Pending::finish), true, m)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    fn write(&mut self, engine: &Engine, offsets: &Offsets) -> std::io::Result<Pending> {
        let seq = self.next_seq();
        checkpoint::write(&self.dir, seq, &self.topic, offsets, &engine.durable_snapshot())
    }
}

/// Logs and counts how a checkpoint ended.
fn finished(started: Instant, result: std::io::Result<Pending>, last: bool, m: &Metrics) -> std::io::Result<Durable> {
    match result {
        Ok(p) => {
            let took = started.elapsed();
            CheckpointDone { seq: p.seq, bytes: p.bytes, pause: p.pause, took, last }.emit(m);
            Ok(Durable { seq: p.seq, offsets: p.offsets })
        }
        Err(error) => {
            CheckpointFailed { error: &error, last }.emit(m);
            Err(error)
        }
    }
}
