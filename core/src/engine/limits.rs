//! What bounds the engine, and the closed sets of what becomes of an event
//! and of which bound rejected it.

use super::pages::PageRejected;
use super::posts::{MAX_PAGES, MAX_POSTS};
use crate::window::Windows;

/// Caps on what input can grow, and the windows kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The windows kept (validated when built).
    pub windows: Windows,
    pub max_pages: u32,
    pub max_posts: u32,
    pub max_platforms: u32,
    pub max_event_ids: u32,
    /// Posts listed per page by the page endpoint.
    pub top_posts: u32,
    /// How far one event may move the watermark ahead before the stream
    /// must corroborate the jump (zero: any jump is taken at once).
    pub max_watermark_jump: std::time::Duration,
    /// Events past such a jump that corroborate it (the last one is applied).
    pub watermark_jump_quorum: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            windows: Windows::default(),
            max_pages: 1_000_000,
            max_posts: 50_000_000,
            max_platforms: 64,
            max_event_ids: 20_000_000,
            top_posts: 10,
            max_watermark_jump: std::time::Duration::from_secs(31 * 24 * 3600),
            watermark_jump_quorum: 100,
        }
    }
}

/// Largest `max_event_ids` (a quarter's ids are positions of 27 bits).
pub const MAX_EVENT_IDS: u32 = 100_000_000;

impl Limits {
    /// The configured cap of one bound.
    pub fn bound(&self, b: Bound) -> u32 {
        match b {
            Bound::Pages => self.max_pages,
            Bound::Posts => self.max_posts,
            Bound::Platforms => self.max_platforms,
            Bound::EventIds => self.max_event_ids,
            Bound::WatermarkJump => self.watermark_jump_quorum,
        }
    }

    /// Checks the limits against what the engine can represent.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.max_pages == 0 || self.max_pages > MAX_PAGES - 1 {
            return Err("max_pages must be between 1 and 8388606");
        }
        if self.max_posts > MAX_POSTS {
            return Err("max_posts must be at most 125000000");
        }
        if self.max_event_ids > MAX_EVENT_IDS {
            return Err("max_event_ids must be at most 100000000");
        }
        if self.max_platforms == 0 || self.max_platforms > 1024 {
            return Err("max_platforms must be between 1 and 1024");
        }
        if self.top_posts as usize > super::TOP_MAX {
            return Err("top_posts must be at most 100");
        }
        if !(2..=100_000).contains(&self.watermark_jump_quorum) {
            return Err("watermark_jump_quorum must be between 2 and 100000");
        }
        Ok(())
    }
}

/// Which cap rejected an event: a structure's size, or how far one event
/// may move the watermark before the stream corroborates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    Pages,
    Posts,
    Platforms,
    EventIds,
    WatermarkJump,
}

impl Bound {
    pub const ALL: [Bound; 5] = [Bound::Pages, Bound::Posts, Bound::Platforms, Bound::EventIds, Bound::WatermarkJump];
    /// The bounds that cap a structure input grows.
    pub const STRUCTURES: [Bound; 4] = [Bound::Pages, Bound::Posts, Bound::Platforms, Bound::EventIds];

    pub const fn as_str(self) -> &'static str {
        match self {
            Bound::Pages => "pages",
            Bound::Posts => "posts",
            Bound::Platforms => "platforms",
            Bound::EventIds => "event_ids",
            Bound::WatermarkJump => "watermark_jump",
        }
    }

    /// The reason given for a rejected event (log field, dead-letter header).
    pub fn reason(self) -> &'static str {
        match self {
            Bound::Pages => "rejected at the page bound",
            Bound::Posts => "rejected at the post bound",
            Bound::Platforms => "rejected at the platform bound",
            Bound::EventIds => "rejected at the event id bound",
            Bound::WatermarkJump => "past the watermark by more than events.max_watermark_jump, not yet corroborated",
        }
    }
}

/// What became of an event (the `outcome` label of docs/metrics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Applied,
    Stale,
    Duplicate,
    Conflict,
    Expired,
    Invalid,
    /// Refused at a capacity bound (see [`Bound`]); not in the product specification's list.
    Rejected(Bound),
}

impl Outcome {
    /// One outcome per label value, in the order they are exported.
    pub const EACH: [Outcome; 7] = [
        Outcome::Applied,
        Outcome::Stale,
        Outcome::Duplicate,
        Outcome::Conflict,
        Outcome::Expired,
        Outcome::Invalid,
        Outcome::Rejected(Bound::Pages),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
            Outcome::Expired => "expired",
            Outcome::Invalid => "invalid",
            Outcome::Rejected(_) => "rejected",
        }
    }

    /// Position of the outcome's label in [`EACH`](Self::EACH).
    pub const fn index(self) -> usize {
        match self {
            Outcome::Applied => 0,
            Outcome::Stale => 1,
            Outcome::Duplicate => 2,
            Outcome::Conflict => 3,
            Outcome::Expired => 4,
            Outcome::Invalid => 5,
            Outcome::Rejected(_) => 6,
        }
    }
}

impl From<PageRejected> for Bound {
    fn from(r: PageRejected) -> Bound {
        match r {
            PageRejected::Pages => Bound::Pages,
            PageRejected::Platforms => Bound::Platforms,
        }
    }
}

/// Sizes of the input-grown structures, for gauges against their bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub pages: usize,
    pub posts: usize,
    pub platforms: usize,
    pub event_ids: usize,
    /// Pages whose events came from more than one Kafka partition since
    /// the start: producers do not key them by page.
    pub split_pages: usize,
    pub heap_bytes: usize,
}
