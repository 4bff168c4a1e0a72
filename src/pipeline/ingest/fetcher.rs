//! The fetch thread: polls the source's [`Feed`], copies each batch out of
//! the client's buffers and decodes it, while the ingest thread applies the
//! previous batch. The ingest thread then only applies: polling (the
//! client's per-message work) and decoding (a third of an event's cost)
//! run on the other core.
//!
//! The decoded events borrow from the batch's buffer; buffers go back to
//! the fetch thread once applied, so steady state allocates nothing. At
//! most [`IN_FLIGHT`] batches wait between the threads (backpressure: the
//! fetch thread stops polling while the ingest thread is behind).
//!
//! Bounds: a batch holds at most [`Polling::batch`] records and stops
//! growing once its copies pass [`BATCH_BYTES`]; a key or payload is copied
//! up to `events.max_payload_bytes` + 1 bytes (a longer payload is invalid
//! anyway, "payload too large", and is dead-lettered so truncated). So the
//! batches between the threads hold at most (`IN_FLIGHT` + 2) ×
//! (`BATCH_BYTES` + 2 × (`max_payload_bytes` + 1)) bytes.
//!
//! Offsets stay safe: a batch carries the partitions' positions as of the
//! poll that produced it (only when that poll ran dry, which is when they
//! can differ from the last record's offset), so positions are only ever
//! recorded together with everything polled before them.
//!
//! A loop whose assignment changes under it (shard mode: the group's
//! callbacks run when it polls the consumer's own queue) [pauses](Fetcher::pause)
//! the thread around that poll: every batch polled before is handed over
//! first, and nothing is polled until it [resumes](Fetcher::resume), so a
//! batch never mixes records from before and after a change.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use engagement_core::engine::{Message, decode_batch, recycle};
use engagement_core::event::{DecodeContext, Event, Invalid};
use self_cell::self_cell;

use super::{Feed, Record};

/// Batches waiting for the ingest thread at most.
const IN_FLIGHT: usize = 4;
/// A batch stops growing past this many bytes of copies.
pub const BATCH_BYTES: usize = 16 << 20;

/// Where one record's parts lie in [`Payloads::bytes`].
#[derive(Debug, Clone)]
struct Meta {
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Range<usize>>,
    payload: Range<usize>,
}

/// A batch of records copied out of the client's buffers.
#[derive(Default)]
pub struct Payloads {
    bytes: Vec<u8>,
    meta: Vec<Meta>,
    /// Each record's partition, apart: the engine takes them as a slice.
    partitions: Vec<u32>,
}

impl Payloads {
    fn clear(&mut self) {
        self.bytes.clear();
        self.meta.clear();
        self.partitions.clear();
    }

    /// Copies `batch`, each key and payload up to `limit` bytes.
    fn append(&mut self, batch: &[Record<'_>], limit: usize) {
        for r in batch {
            let mut copy = |b: &[u8]| {
                let at = self.bytes.len();
                self.bytes.extend_from_slice(&b[..b.len().min(limit)]);
                at..self.bytes.len()
            };
            let key = r.key.map(&mut copy);
            let payload = copy(r.payload);
            self.meta.push(Meta { offset: r.offset, timestamp: r.timestamp, key, payload });
            self.partitions.push(r.partition.max(0) as u32);
        }
    }

    fn len(&self) -> usize {
        self.meta.len()
    }

    fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The records, as the client handed them over.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.meta.iter().zip(&self.partitions).map(|(m, &partition)| Record {
            partition: partition as i32,
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key.clone().map(|k| &self.bytes[k]),
            payload: &self.bytes[m.payload.clone()],
        })
    }
}

type Events<'a> = Vec<Result<Event<'a>, Invalid>>;

self_cell!(
    /// A batch and its decoded events, one per record, in order.
    pub struct Decoded {
        owner: Payloads,
        #[covariant]
        dependent: Events,
    }
);

impl Decoded {
    fn decode(payloads: Payloads, spare: Events<'static>, cx: &DecodeContext) -> Decoded {
        Decoded::new(payloads, |p| {
            let mut events = recycle(spare);
            let messages = p.records().map(|r| Message { payload: r.payload, timestamp: r.timestamp });
            decode_batch(messages, cx, &mut events);
            events
        })
    }

    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.borrow_owner().records()
    }

    pub fn events(&self) -> &[Result<Event<'_>, Invalid>] {
        self.borrow_dependent()
    }

    /// Each event's partition, in order (filled on the fetch thread).
    pub fn partitions(&self) -> &[u32] {
        &self.borrow_owner().partitions
    }

    fn into_buffers(mut self) -> Buffers {
        let events = self.with_dependent_mut(|_, events| recycle(std::mem::take(events)));
        (self.into_owner(), events)
    }
}

type Buffers = (Payloads, Events<'static>);

/// One poll's worth, decoded.
pub struct Fetched {
    pub decoded: Decoded,
    /// The partitions' positions after the poll; empty unless it ran dry.
    pub positions: Vec<(i32, i64)>,
    /// Whether the poll ran dry (the source had nothing more at once).
    pub dry: bool,
}

/// The fetch thread has stopped.
#[derive(Debug)]
pub struct Stopped;

/// What the fetch thread sends.
enum Out {
    Batch(Fetched),
    /// Paused: every batch polled before was sent.
    Paused,
}

/// The fetch thread, seen from the ingest thread.
pub struct Fetcher {
    batches: Receiver<Out>,
    free: SyncSender<Buffers>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    /// Lets a paused thread go on.
    resume: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
}

/// How the fetch thread polls.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// How long a poll waits for the first message.
    pub wait: Duration,
    /// Most records per batch.
    pub batch: usize,
    /// `now` is set from the wall clock for every batch; its
    /// `max_payload_bytes` bounds the copies.
    pub cx: DecodeContext,
}

impl Fetcher {
    pub fn spawn(feed: impl Feed, polling: Polling) -> std::io::Result<Fetcher> {
        let (batches_tx, batches) = sync_channel(IN_FLIGHT);
        let (free, free_rx) = sync_channel(IN_FLIGHT + 1);
        let (resume, resume_rx) = sync_channel(1);
        let (stop, pause) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let worker = Worker {
            feed,
            polling,
            batches: batches_tx,
            free: free_rx,
            stop: stop.clone(),
            pause: pause.clone(),
            resume: resume_rx,
            sent: Vec::new(),
        };
        let thread = std::thread::Builder::new().name("fetch".into()).spawn(move || worker.run())?;
        Ok(Fetcher { batches, free, stop, pause, resume, thread: Some(thread) })
    }

    /// The next batch, waiting up to `timeout` (`Ok(None)` when none
    /// came); `Err` once the thread has stopped (it never does on its own
    /// unless it panicked).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Fetched>, Stopped> {
        match self.batches.recv_timeout(timeout) {
            Ok(Out::Batch(f)) => Ok(Some(f)),
            // Only `pause` asks for it, and takes it.
            Ok(Out::Paused) | Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Stopped),
        }
    }

    /// Stops polling between two polls and hands every batch polled before
    /// to `apply`, in order (their buffers are reused). Returns once the
    /// thread waits for [`resume`](Fetcher::resume): up to one poll's wait
    /// when the source is idle.
    pub fn pause(&mut self, apply: &mut dyn FnMut(&Fetched)) -> Result<(), Stopped> {
        self.pause.store(true, Relaxed);
        loop {
            match self.batches.recv().map_err(|_| Stopped)? {
                Out::Batch(f) => {
                    apply(&f);
                    self.recycle(f);
                }
                Out::Paused => return Ok(()),
            }
        }
    }

    /// Lets a paused thread poll again.
    pub fn resume(&mut self) {
        self.pause.store(false, Relaxed);
        // Room for one: the thread takes it before it can pause again.
        let _ = self.resume.try_send(());
    }

    /// Gives a batch's buffers back for reuse.
    pub fn recycle(&mut self, f: Fetched) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.free.try_send(f.decoded.into_buffers())
        {
            // More buffers than needed, or the thread is gone: drop them.
        }
    }

    /// Stops polling; hands every batch already polled to `apply`, in
    /// order, then waits for the thread to end.
    pub fn stop(&mut self, apply: &mut dyn FnMut(Fetched)) {
        self.stop.store(true, Relaxed);
        self.resume();
        loop {
            match self.batches.recv_timeout(Duration::from_millis(10)) {
                Ok(Out::Batch(f)) => apply(f),
                Ok(Out::Paused) => self.resume(),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
                        break;
                    }
                }
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop(&mut |_| {});
    }
}

struct Worker<F> {
    feed: F,
    polling: Polling,
    batches: SyncSender<Out>,
    free: Receiver<Buffers>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    resume: Receiver<()>,
    /// The positions last sent, so that an idle poll sends them only when
    /// they move.
    sent: Vec<(i32, i64)>,
}

impl<F: Feed> Worker<F> {
    fn run(mut self) {
        let mut spare: Option<Buffers> = None;
        let mut positions = Vec::new();
        while !self.stop.load(Relaxed) {
            if self.pause.load(Relaxed) {
                // Everything polled so far is sent: the loop may now change
                // the assignment.
                if self.batches.send(Out::Paused).is_err() || self.resume.recv().is_err() {
                    return;
                }
                continue;
            }
            let (mut payloads, events) = spare.take().or_else(|| self.free.try_recv().ok()).unwrap_or_default();
            payloads.clear();
            let Polling { wait, batch, mut cx } = self.polling;
            let dry = !self.fill(&mut payloads, wait, batch, cx.max_payload_bytes + 1);
            if dry {
                self.feed.positions(&mut positions);
            }
            if payloads.len() == 0 && positions == self.sent {
                spare = Some((payloads, events));
                continue;
            }
            if dry {
                self.sent.clone_from(&positions);
            }
            cx.now = wall_ms();
            let decoded = Decoded::decode(payloads, events, &cx);
            let positions = if dry { positions.clone() } else { Vec::new() };
            if self.batches.send(Out::Batch(Fetched { decoded, positions, dry })).is_err() {
                return;
            }
        }
    }
}

impl<F: Feed> Worker<F> {
    /// Polls until the batch holds `batch` records or [`BATCH_BYTES`], each
    /// poll asking for no more than the byte budget left can hold at
    /// `limit` bytes a record. Whether the batch filled up (false: the
    /// source ran dry).
    fn fill(&mut self, payloads: &mut Payloads, wait: Duration, batch: usize, limit: usize) -> bool {
        let mut wait = wait;
        loop {
            let budget = BATCH_BYTES.saturating_sub(payloads.bytes()) / (2 * limit);
            let max = budget.clamp(1, batch - payloads.len());
            let before = payloads.len();
            self.feed.poll(wait, max, &mut |records| payloads.append(records, limit));
            if payloads.len() >= batch || payloads.bytes() >= BATCH_BYTES {
                return true;
            }
            if payloads.len() < before + max {
                return false;
            }
            wait = Duration::ZERO;
        }
    }
}

/// The wall clock in milliseconds since the epoch (0 before it).
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn cx() -> DecodeContext {
        DecodeContext { message_time: None, now: 0, max_skew: i64::MAX / 4, max_payload_bytes: 1 << 16 }
    }

    /// Hands over scripted payloads of partition 1, `per_poll` at a time.
    struct Script {
        payloads: Arc<Mutex<VecDeque<Vec<u8>>>>,
        next: i64,
        per_poll: usize,
    }

    impl Feed for Script {
        fn poll(&mut self, timeout: Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>])) {
            let taken: Vec<Vec<u8>> = {
                let mut q = self.payloads.lock().unwrap();
                let n = q.len().min(max).min(self.per_poll);
                q.drain(..n).collect()
            };
            if taken.is_empty() {
                // A blocking client would wait up to `timeout` here.
                std::thread::sleep(timeout.min(Duration::from_millis(1)));
                return;
            }
            let first = self.next;
            self.next += taken.len() as i64;
            let records: Vec<Record<'_>> = taken
                .iter()
                .enumerate()
                .map(|(i, p)| Record {
                    partition: 1,
                    offset: first + i as i64,
                    timestamp: Some(7),
                    key: Some(b"k"),
                    payload: p,
                })
                .collect();
            f(&records);
        }

        fn positions(&mut self, out: &mut Vec<(i32, i64)>) {
            out.clear();
            // One past the last record: a transaction marker.
            out.push((1, self.next + 1));
        }
    }

    fn fetcher(events: &[String], per_poll: usize) -> Fetcher {
        fetcher_with(events.iter().map(|e| e.clone().into_bytes()).collect(), per_poll, 4)
    }

    fn fetcher_with(payloads: VecDeque<Vec<u8>>, per_poll: usize, batch: usize) -> Fetcher {
        let payloads = Arc::new(Mutex::new(payloads));
        let polling = Polling { wait: Duration::from_millis(5), batch, cx: cx() };
        Fetcher::spawn(Script { payloads, next: 0, per_poll }, polling).unwrap()
    }

    #[test]
    fn batches_are_bounded_in_bytes_and_oversized_payloads_copied_only_in_part() {
        let limit = cx().max_payload_bytes + 1;
        let huge = vec![b'x'; 4 * limit];
        let count = 2 * BATCH_BYTES / limit;
        let mut f = fetcher_with((0..count).map(|_| huge.clone()).collect(), usize::MAX, 1 << 20);
        let mut seen = 0;
        while seen < count {
            let batch = f.next(Duration::from_secs(5)).unwrap().expect("a batch");
            let sizes: Vec<usize> =
                batch.decoded.records().map(|r| r.payload.len() + r.key.map_or(0, <[u8]>::len)).collect();
            assert!(sizes.iter().all(|n| *n <= 2 * limit), "each copy is cut at the limit");
            assert!(sizes.iter().sum::<usize>() <= BATCH_BYTES + 2 * limit, "a batch stops growing past its budget");
            assert!(batch.decoded.events().iter().all(|e| e.as_ref().err() == Some(&Invalid("payload too large"))));
            seen += sizes.len();
            f.recycle(batch);
        }
        assert_eq!(seen, count);
    }

    #[test]
    fn batches_come_decoded_in_order_with_their_records_and_positions_when_dry() {
        let events = engagement_core::synth::seed_events();
        let mut f = fetcher(&events, 4);
        let mut seen = 0;
        while seen < events.len() {
            let batch = f.next(Duration::from_secs(5)).unwrap().expect("a batch");
            for (r, ev) in batch.decoded.records().zip(batch.decoded.events()) {
                assert_eq!(r.offset, seen as i64);
                assert_eq!((r.partition, r.timestamp, r.key), (1, Some(7), Some(&b"k"[..])));
                assert_eq!(r.payload, events[seen].as_bytes());
                let mut expected_cx = cx();
                expected_cx.message_time = Some(7);
                let expected = engagement_core::event::decode(events[seen].as_bytes(), &expected_cx);
                assert_eq!(
                    ev.as_ref().map(|e| (&e.page_id, &e.post_id)),
                    expected.as_ref().map(|e| (&e.page_id, &e.post_id))
                );
                seen += 1;
            }
            let n = batch.decoded.events().len();
            assert_eq!(batch.dry, n < 4);
            assert_eq!(batch.positions.is_empty(), !batch.dry);
            f.recycle(batch);
        }
        // Then, once, the positions past the end (no records).
        let last = f.next(Duration::from_secs(5)).unwrap().expect("the final positions");
        assert!(last.decoded.events().is_empty() || last.dry);
        assert_eq!(last.positions, [(1, events.len() as i64 + 1)]);
        assert!(f.next(Duration::from_millis(50)).unwrap().is_none(), "positions are sent only when they move");
    }

    #[test]
    fn stopping_hands_over_everything_already_polled() {
        let events = engagement_core::synth::seed_events();
        let mut f = fetcher(&events, 1);
        let first = f.next(Duration::from_secs(5)).unwrap().expect("a batch");
        let mut offsets: Vec<i64> = first.decoded.records().map(|r| r.offset).collect();
        f.stop(&mut |b| offsets.extend(b.decoded.records().map(|r| r.offset)));
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "in order, nothing skipped");
    }

    #[test]
    fn a_pause_hands_over_everything_polled_and_polls_nothing_until_resumed() {
        let events = engagement_core::synth::seed_events();
        let payloads: VecDeque<Vec<u8>> = events.iter().map(|e| e.clone().into_bytes()).collect();
        let queue = Arc::new(Mutex::new(payloads));
        let polling = Polling { wait: Duration::from_millis(5), batch: 4, cx: cx() };
        let mut f = Fetcher::spawn(Script { payloads: queue.clone(), next: 0, per_poll: 2 }, polling).unwrap();
        let first = f.next(Duration::from_secs(5)).unwrap().expect("a batch");
        let mut offsets: Vec<i64> = first.decoded.records().map(|r| r.offset).collect();
        f.recycle(first);
        f.pause(&mut |b| offsets.extend(b.decoded.records().map(|r| r.offset))).unwrap();
        let left = queue.lock().unwrap().len();
        assert_eq!(offsets.len() + left, events.len(), "all that was polled was handed over");
        assert!(f.next(Duration::from_millis(50)).unwrap().is_none(), "nothing comes while paused");
        assert_eq!(queue.lock().unwrap().len(), left, "nothing is polled while paused");
        f.resume();
        while offsets.len() < events.len() {
            let b = f.next(Duration::from_secs(5)).unwrap().expect("a batch after resuming");
            offsets.extend(b.decoded.records().map(|r| r.offset));
            f.recycle(b);
        }
        let expected: Vec<i64> = (0..events.len() as i64).collect();
        assert_eq!(offsets, expected, "in order, nothing skipped or repeated");
    }

    #[test]
    fn invalid_payloads_keep_their_place() {
        let good = engagement_core::synth::seed_events().remove(0);
        let events = ["{".to_string(), good, String::new()];
        let mut f = fetcher(&events, 3);
        let batch = f.next(Duration::from_secs(5)).unwrap().unwrap();
        let ok: Vec<bool> = batch.decoded.events().iter().map(|e| e.is_ok()).collect();
        assert_eq!(ok, [false, true, false]);
    }
}
