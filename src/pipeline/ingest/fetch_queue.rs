//! Fetched messages in batches, through librdkafka's C API.
//!
//! rust-rdkafka hands messages over one `poll` at a time, and each costs a
//! few clock reads, a queue lock, an event wrapper and its release: at a
//! million events a second that was about as much of the consume thread
//! as the engine (docs/performance.md). Here the fetch queue of every
//! assigned partition is forwarded to one queue of our own, read with
//! `rd_kafka_consume_batch_queue`: up to a whole batch per call, one
//! deadline for all of it. Everything else (commit results, errors, logs)
//! stays on the consumer's queue, which the source still polls.
//!
//! A partition must be forwarded before it is assigned, so that none of
//! its messages go to the consumer's queue and the two paths never mix
//! one partition's messages.

use std::ffi::{CString, c_void};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::Record;

/// Our queue and the partitions forwarded to it.
pub struct FetchQueue {
    client: NonNull<rd::rd_kafka_t>,
    queue: NonNull<rd::rd_kafka_queue_t>,
    topic: CString,
    forwarded: Mutex<Vec<i32>>,
}

// SAFETY: librdkafka's client and queue handles may be used from any
// thread (its queues have their own locks); the Rust state is a Mutex.
unsafe impl Send for FetchQueue {}
// SAFETY: as above.
unsafe impl Sync for FetchQueue {}

/// Room for the messages of one batch, reused from batch to batch; empty
/// between calls.
#[derive(Default)]
pub struct MessageBatch(Vec<*mut rd::rd_kafka_message_t>);

// SAFETY: it holds no message between calls of `FetchQueue::consume`.
unsafe impl Send for MessageBatch {}

impl FetchQueue {
    /// # Safety
    /// `client` must be a live consumer handle that outlives the queue.
    pub unsafe fn new(client: *mut rd::rd_kafka_t, topic: CString) -> Option<FetchQueue> {
        let client = NonNull::new(client)?;
        // SAFETY: `client` is a live handle (the caller's promise).
        let queue = NonNull::new(unsafe { rd::rd_kafka_queue_new(client.as_ptr()) })?;
        Some(FetchQueue { client, queue, topic, forwarded: Mutex::default() })
    }

    /// Sends `partition`'s fetched messages to this queue. Call before the
    /// partition is assigned.
    pub fn forward(&self, partition: i32) -> bool {
        let mut forwarded = self.forwarded.lock().unwrap_or_else(|e| e.into_inner());
        if forwarded.contains(&partition) {
            return true;
        }
        if !self.forward_to(partition, self.queue.as_ptr()) {
            return false;
        }
        forwarded.push(partition);
        true
    }

    /// Points `partition`'s fetch queue at `to` (null: its own queue).
    fn forward_to(&self, partition: i32, to: *mut rd::rd_kafka_queue_t) -> bool {
        // SAFETY: live handles; the partition's queue reference is released
        // right after forwarding (a forward holds its own reference).
        unsafe {
            let pq = rd::rd_kafka_queue_get_partition(self.client.as_ptr(), self.topic.as_ptr(), partition);
            let Some(pq) = NonNull::new(pq) else { return false };
            rd::rd_kafka_queue_forward(pq.as_ptr(), to);
            rd::rd_kafka_queue_destroy(pq.as_ptr());
        }
        true
    }

    /// Waits up to `timeout` for messages and hands at most `max` of them
    /// to `f` in one call, and every error to `error`; the messages are
    /// released when `f` returns.
    pub fn consume(
        &self,
        timeout: Duration,
        max: usize,
        messages: &mut MessageBatch,
        records: &mut Vec<Record<'static>>,
        f: &mut dyn FnMut(&[Record<'_>]),
        error: &mut dyn FnMut(KafkaError),
    ) {
        let messages = &mut messages.0;
        messages.clear();
        messages.reserve(max);
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the array has room for `max` pointers; librdkafka writes
        // `n <= max` of them and passes their ownership to us.
        let n =
            unsafe { rd::rd_kafka_consume_batch_queue(self.queue.as_ptr(), timeout_ms, messages.as_mut_ptr(), max) };
        // SAFETY: the first `n` entries were just written.
        unsafe { messages.set_len(n.max(0) as usize) };
        let mut batch: Vec<Record<'_>> = engagement_core::engine::recycle(std::mem::take(records));
        for &m in messages.iter() {
            // SAFETY: a message handed over by librdkafka, live until
            // destroyed below; its payload and key live as long.
            let m = unsafe { &*m };
            if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                error(KafkaError::MessageConsumption(RDKafkaErrorCode::from(m.err)));
                continue;
            }
            batch.push(record(m));
        }
        if !batch.is_empty() {
            f(&batch);
        }
        *records = engagement_core::engine::recycle(batch);
        for m in messages.drain(..) {
            // SAFETY: ours to release, and no record borrows it any more.
            unsafe { rd::rd_kafka_message_destroy(m) };
        }
    }
}

/// The record of a message, borrowing its buffers.
fn record(m: &rd::rd_kafka_message_t) -> Record<'_> {
    let bytes = |ptr: *mut c_void, len: usize| -> Option<&[u8]> {
        // SAFETY: librdkafka's pointer and length of a buffer owned by the
        // message, valid while it lives.
        (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr as *const u8, len) })
    };
    let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: a live message; librdkafka only writes `kind`.
    let timestamp = unsafe { rd::rd_kafka_message_timestamp(m, &mut kind) };
    Record {
        partition: m.partition,
        offset: m.offset,
        timestamp: (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && timestamp >= 0)
            .then_some(timestamp),
        key: bytes(m.key, m.key_len),
        payload: bytes(m.payload, m.len).unwrap_or_default(),
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // Undo the forwards first: each holds a reference to our queue, and
        // the messages still queued in it hold their partitions, which the
        // client waits for when it closes.
        for p in std::mem::take(self.forwarded.get_mut().unwrap_or_else(|e| e.into_inner())) {
            self.forward_to(p, std::ptr::null_mut());
        }
        // SAFETY: the client outlives us (see `new`); the last reference to
        // the queue goes, and with it the messages still in it.
        unsafe { rd::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

/// How many events wait in the consumer's own queue (rebalances, commit
/// results, errors), without serving them.
pub fn consumer_queue_len(client: *mut rd::rd_kafka_t) -> usize {
    // SAFETY: a live client handle (the caller's); the queue reference
    // taken here is released before returning.
    unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(client);
        if queue.is_null() {
            return 0;
        }
        let n = rd::rd_kafka_queue_length(queue);
        rd::rd_kafka_queue_destroy(queue);
        n
    }
}

/// Commits `offsets` asynchronously, the result posted to the consumer's
/// queue, where `BaseConsumer::poll` hands it to the context's
/// `commit_callback`. (`BaseConsumer::commit` in async mode asks
/// librdkafka for no result at all: commits were never counted.)
pub fn commit_async(
    client: *mut rd::rd_kafka_t,
    offsets: *const rd::rd_kafka_topic_partition_list_t,
) -> Result<(), RDKafkaErrorCode> {
    // SAFETY: a live client handle and partition list (the caller's); the
    // consumer queue reference taken here is released before returning.
    let err = unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(client);
        if queue.is_null() {
            return Err(RDKafkaErrorCode::InvalidArgument);
        }
        let err = rd::rd_kafka_commit_queue(client, offsets, queue, None, std::ptr::null_mut());
        rd::rd_kafka_queue_destroy(queue);
        err
    };
    match err {
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
        e => Err(e.into()),
    }
}
