//! Applying a batch of messages: decode them all, then apply them in order
//! while the memory the next ones will touch is already on its way.
//!
//! Each event touches a page and a post somewhere in a working set much
//! larger than the caches; one at a time, every access is a stall. Here the
//! index buckets of event `i + 4D`, the page and post records of event
//! `i + 3D`, the page's entries in the period indexes of event `i + 2D`,
//! its period slots and its days of the quarter (see
//! [`series`](super::series)) of event `i + D`, and the cell of the post's
//! day of event `i + D/2` are prefetched while event `i` is applied, so
//! the misses overlap. Prefetching is only a hint: lookups are redone for real, in
//! order, so the outcome is exactly that of applying one event at a time.

use super::posts::{post_hash, post_key};
use super::{Engine, Outcome, PeriodsAt};
use crate::event::{DecodeContext, Event, Invalid, decode};
use crate::window::Millis;

/// Events between prefetching a record and using it.
const DISTANCE: usize = 8;
/// Events `apply_batch` decodes before applying them.
const DECODE_AHEAD: usize = 1024;

/// One message of a batch: its payload and its Kafka timestamp (the
/// default `observed_at`).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub payload: &'a [u8],
    pub timestamp: Option<Millis>,
}

/// The hashes of an event whose platform is already known.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keys {
    pub platform: u16,
    pub page: u64,
    pub post_hash: u64,
    pub post: u64,
    /// The event's interactions and publication time (hints for
    /// prefetching the post's quarter slot and top list).
    pub interactions: u64,
    pub published: Millis,
    /// Per kind the engine keeps, the period holding `published`.
    pub periods: PeriodsAt,
}

/// Scratch space reused from batch to batch, so applying allocates
/// nothing once it has grown to the batch size.
#[derive(Default)]
pub struct Batch {
    decoded: Vec<Result<Event<'static>, Invalid>>,
    keys: Vec<Option<Keys>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("capacity", &self.keys.capacity()).finish()
    }
}

/// An empty vector of another lifetime reusing `v`'s allocation.
pub fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("the vector is empty")).collect()
}

/// Decodes `messages` in order, appending one result per message to `out`.
/// Pure: it may run on another thread than the one applying the events.
pub fn decode_batch<'a>(
    messages: impl IntoIterator<Item = Message<'a>>,
    cx: &DecodeContext,
    out: &mut Vec<Result<Event<'a>, Invalid>>,
) {
    out.extend(messages.into_iter().map(|m| decode(m.payload, &DecodeContext { message_time: m.timestamp, ..*cx })));
}

impl Engine {
    /// Decodes and applies `messages` in order, appending one result per
    /// message to `outcomes`: what became of it, or why it is invalid.
    pub fn apply_batch<'a>(
        &mut self,
        messages: impl IntoIterator<Item = Message<'a>>,
        cx: &DecodeContext,
        outcomes: &mut Vec<Result<Outcome, Invalid>>,
    ) {
        // Decoded events are applied while they are still in cache.
        let mut messages = messages.into_iter().peekable();
        let mut decoded: Vec<Result<Event<'a>, Invalid>> = recycle(std::mem::take(&mut self.batch.decoded));
        while messages.peek().is_some() {
            decoded.clear();
            decode_batch(messages.by_ref().take(DECODE_AHEAD), cx, &mut decoded);
            self.apply_decoded(&decoded, &[], outcomes);
        }
        self.batch.decoded = recycle(decoded);
    }

    /// Applies events decoded by [`decode_batch`] in order, appending one
    /// result per event to `outcomes`. `partitions[i]` is the Kafka
    /// partition of `events[i]` (empty when unknown), so that pages whose
    /// events come from several partitions are counted
    /// ([`Usage::split_pages`](super::Usage)).
    pub fn apply_decoded(
        &mut self,
        events: &[Result<Event<'_>, Invalid>],
        partitions: &[u32],
        outcomes: &mut Vec<Result<Outcome, Invalid>>,
    ) {
        let mut keys = std::mem::take(&mut self.batch.keys);
        keys.clear();
        keys.extend(events.iter().map(|e| e.as_ref().ok().and_then(|ev| self.keys(ev))));
        for i in 0..events.len() {
            if let Some(Some(k)) = keys.get(i + 4 * DISTANCE) {
                self.prefetch_buckets(k);
            }
            if let Some(Some(k)) = keys.get(i + 3 * DISTANCE) {
                self.prefetch_records(k);
            }
            if let Some(Some(k)) = keys.get(i + 2 * DISTANCE) {
                self.prefetch_entries(k);
            }
            if let Some(Some(k)) = keys.get(i + DISTANCE) {
                self.prefetch_slots(k);
            }
            if let Some(Some(k)) = keys.get(i + DISTANCE / 2) {
                self.prefetch_day(k);
            }
            outcomes.push(match &events[i] {
                Ok(ev) => Ok(self.apply_keyed(ev, keys[i], partitions.get(i).copied())),
                Err(invalid) => Err(*invalid),
            });
        }
        self.batch.keys = keys;
    }

    fn keys(&self, ev: &Event<'_>) -> Option<Keys> {
        let platform = self.pages.platform(&ev.platform)?;
        let page = super::pages::page_key(platform, &ev.page_id);
        let post_hash = post_hash(&ev.post_id);
        let periods = self.periods_of(ev.published_at);
        Some(Keys {
            platform,
            page,
            post_hash,
            post: post_key(page, post_hash),
            interactions: ev.counts.interactions(),
            published: ev.published_at,
            periods,
        })
    }

    fn prefetch_buckets(&self, k: &Keys) {
        self.pages.prefetch_bucket(k.page);
        self.posts.prefetch_bucket(k.post);
    }

    /// The page's entries in the indexes of the post's periods.
    fn prefetch_entries(&self, k: &Keys) {
        if let Some(page) = self.pages.guess(k.page) {
            for (kind, p) in self.periods.iter().zip(k.periods) {
                kind.prefetch_entry(p, page);
            }
        }
    }

    /// The page's slots in the post's periods (through the index entries
    /// prefetched a stage earlier), what the rolling edges keep for its
    /// quarter slot, and its top list (through its state).
    fn prefetch_slots(&self, k: &Keys) {
        let Some(page) = self.pages.guess(k.page) else { return };
        for (kind, p) in self.periods.iter().zip(k.periods).skip(1) {
            kind.prefetch_slot(p, page);
        }
        let q = k.periods[0];
        if let Some(slot) = self.periods[0].prefetch_slot(q, page) {
            self.edges.iter().flatten().for_each(|e| e.prefetch(q, slot, k.published));
            self.series.prefetch_reference(q, slot);
        }
        self.pages.prefetch_top(page, crate::window::Quarter::from_index(q.index), k.interactions);
    }

    /// The cell of the post's day among the page's days of its quarter
    /// (through the reference prefetched a stage earlier).
    fn prefetch_day(&self, k: &Keys) {
        let Some(page) = self.pages.guess(k.page) else { return };
        let q = k.periods[0];
        if let Some(slot) = self.periods[0].slot_index(q, page) {
            self.series.prefetch_cell(q, slot, super::posts::day_of(k.published));
        }
    }

    fn prefetch_records(&self, k: &Keys) {
        self.pages.prefetch_page(k.page);
        self.posts.prefetch_record(k.post);
    }
}
