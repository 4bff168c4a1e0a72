//! Decoding ahead: while the consume thread applies one batch, a worker
//! thread decodes the next, so decoding (a third of an event's cost) runs
//! on the other core.
//!
//! A batch's payloads are copied out of the client's buffers (the client
//! frees its messages when the poll returns) into one reused buffer; the
//! decoded events borrow from that buffer. Buffers go back and forth
//! between the two threads, so steady state allocates nothing.
//!
//! Order is kept: the worker decodes batches in the order they are
//! submitted, and the loop applies them in that order. Nothing submitted
//! is ever lost: when the worker is gone, batches are decoded on the
//! calling thread.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use engagement_core::engine::{Message, decode_batch, recycle};
use engagement_core::event::{DecodeContext, Event, Invalid};
use self_cell::self_cell;

use super::Record;

/// Batches in flight at most: one being applied, one being decoded.
const IN_FLIGHT: usize = 2;

/// Where one record's parts lie in [`Payloads::bytes`].
#[derive(Debug, Clone)]
struct Meta {
    partition: i32,
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
}

impl Payloads {
    fn fill(&mut self, batch: &[Record<'_>]) {
        self.bytes.clear();
        self.meta.clear();
        for r in batch {
            let mut copy = |b: &[u8]| {
                let at = self.bytes.len();
                self.bytes.extend_from_slice(b);
                at..self.bytes.len()
            };
            let key = r.key.map(&mut copy);
            let payload = copy(r.payload);
            self.meta.push(Meta { partition: r.partition, offset: r.offset, timestamp: r.timestamp, key, payload });
        }
    }

    /// The records, as the client handed them over.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.meta.iter().map(|m| Record {
            partition: m.partition,
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

    fn into_buffers(mut self) -> Buffers {
        let events = self.with_dependent_mut(|_, events| recycle(std::mem::take(events)));
        (self.into_owner(), events)
    }
}

type Buffers = (Payloads, Events<'static>);

struct Job {
    payloads: Payloads,
    spare: Events<'static>,
    cx: DecodeContext,
}

/// The worker thread and the batches submitted to it, oldest first.
pub struct Decoder {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Decoded>,
    /// Decoded inline because the worker is gone, oldest first.
    inline: std::collections::VecDeque<Decoded>,
    pending: usize,
    free: Vec<Buffers>,
}

impl Decoder {
    pub fn spawn() -> Decoder {
        let (jobs, inbox) = sync_channel::<Job>(IN_FLIGHT);
        let (outbox, done) = sync_channel(IN_FLIGHT);
        let worker = std::thread::Builder::new().name("decode".into()).spawn(move || {
            for job in inbox {
                if outbox.send(Decoded::decode(job.payloads, job.spare, &job.cx)).is_err() {
                    return;
                }
            }
        });
        Decoder { jobs: worker.ok().map(|_| jobs), done, inline: Default::default(), pending: 0, free: Vec::new() }
    }

    /// Batches submitted and not yet taken back.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Copies `batch` and starts decoding it.
    pub fn submit(&mut self, batch: &[Record<'_>], cx: &DecodeContext) {
        let (mut payloads, spare) = self.free.pop().unwrap_or_default();
        payloads.fill(batch);
        self.pending += 1;
        let job = Job { payloads, spare, cx: *cx };
        let Some(jobs) = &self.jobs else {
            return self.inline.push_back(Decoded::decode(job.payloads, job.spare, &job.cx));
        };
        if let Err(returned) = jobs.send(job) {
            // The worker is gone (it cannot panic on input, but if it ever
            // stopped): decode here from now on.
            self.jobs = None;
            let job = returned.0;
            self.inline.push_back(Decoded::decode(job.payloads, job.spare, &job.cx));
        }
    }

    /// The oldest submitted batch, decoded (waits for it); `None` when
    /// nothing is pending.
    pub fn next(&mut self) -> Option<Decoded> {
        if self.pending == 0 {
            return None;
        }
        self.pending -= 1;
        // The worker's batches are older than any decoded inline.
        let in_worker = self.pending + 1 - self.inline.len();
        if in_worker > 0 {
            if let Ok(decoded) = self.done.recv() {
                return Some(decoded);
            }
            // Lost with the worker: cannot happen without a panic in
            // decoding, which is fuzzed; say so rather than go on silently.
            unreachable!("the decode worker stopped with batches in flight");
        }
        self.inline.pop_front()
    }

    /// Gives a batch's buffers back for reuse.
    pub fn recycle(&mut self, decoded: Decoded) {
        if self.free.len() < IN_FLIGHT + 1 {
            self.free.push(decoded.into_buffers());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> DecodeContext {
        DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 }
    }

    fn record(offset: i64, payload: &[u8]) -> Record<'_> {
        Record { partition: 1, offset, timestamp: Some(7), key: Some(b"k"), payload }
    }

    #[test]
    fn batches_come_back_decoded_in_order_with_their_records() {
        let events: Vec<String> = engagement_core::synth::seed_events();
        let mut decoder = Decoder::spawn();
        let batches: Vec<Vec<Record<'_>>> = events
            .chunks(3)
            .enumerate()
            .map(|(b, chunk)| chunk.iter().enumerate().map(|(i, e)| record((b * 3 + i) as i64, e.as_bytes())).collect())
            .collect();
        let mut seen = 0;
        for batch in &batches {
            decoder.submit(batch, &cx());
            if decoder.pending() == IN_FLIGHT {
                seen += check(&mut decoder, &events, seen);
            }
        }
        while decoder.pending() > 0 {
            seen += check(&mut decoder, &events, seen);
        }
        assert_eq!(seen, events.len());
        assert!(decoder.next().is_none());
    }

    /// Checks the next batch against the events from `from`; its length.
    fn check(decoder: &mut Decoder, events: &[String], from: usize) -> usize {
        let decoded = decoder.next().expect("a batch is pending");
        let n = decoded.events().len();
        for (i, (r, ev)) in decoded.records().zip(decoded.events()).enumerate() {
            assert_eq!(r.offset, (from + i) as i64);
            assert_eq!((r.partition, r.timestamp, r.key), (1, Some(7), Some(&b"k"[..])));
            assert_eq!(r.payload, events[from + i].as_bytes());
            let expected = engagement_core::event::decode(events[from + i].as_bytes(), &cx());
            assert_eq!(ev, &expected);
        }
        decoder.recycle(decoded);
        n
    }

    #[test]
    fn invalid_payloads_keep_their_place() {
        let mut decoder = Decoder::spawn();
        let good = engagement_core::synth::seed_events().remove(0);
        let batch = [record(0, b"{"), record(1, good.as_bytes()), record(2, b"")];
        decoder.submit(&batch, &cx());
        let decoded = decoder.next().unwrap();
        let ok: Vec<bool> = decoded.events().iter().map(|e| e.is_ok()).collect();
        assert_eq!(ok, [false, true, false]);
    }
}
