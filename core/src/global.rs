//! Shard mode's global page table (docs/scaling.md): each shard publishes,
//! for the pages of its partitions that changed, one [`PageRecord`] — the
//! page's figures as its engine holds them — and every instance gathers
//! them into a [`GlobalTable`], from which it builds the same [`View`](crate::view::View) one
//! engine over the whole topic would.
//!
//! A record carries what the view reads of a page: identity, name, latest
//! follower sample, top posts, and per kept period (of every calendar kind)
//! the totals and the period's follower sample; per rolling window, the
//! totals of the posts published at or after its start and its
//! predecessor's. Those two
//! depend on the watermark: shards move their engines to the greatest
//! watermark of the topic (published per partition, the greatest kept
//! here), and
//! republish the pages whose posts the window passes.
//!
//! A page whose records come from two partitions (its producers do not key
//! by page) is counted: its figures are split between engines, and the
//! table holds only the last record.
//!
//! Bounds: pages as the engine's `max_pages` (a page over it is refused
//! and counted by the caller; the split set holds at most one key per page
//! held); decoding
//! checks every length.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::codec::{DecodeError, Reader, Writer};
use crate::engine::column::Column;
use crate::engine::{Limits, Named, Sample, Snapshot, TOP_MAX, Totals};
use crate::window::{CalendarKind, CalendarPeriod, MAX_ROLLING, Millis, Quarter, Windows};

/// Format version of a page record.
const RECORD_VERSION: u8 = 2;
/// Most period figures a record carries: every kind at its longest
/// retention within the windows' reach.
const MAX_PERIODS: usize = 256;

/// One period's figures of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodFigures {
    pub period: CalendarPeriod,
    pub totals: Totals,
    /// The latest follower sample observed in the period.
    pub followers: Sample,
}

/// A page's top posts of one quarter, as (id, interactions).
pub type TopPosts = (Quarter, Vec<(Box<str>, u64)>);

/// One page's figures as its shard publishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecord {
    pub platform: Arc<str>,
    pub id: Box<str>,
    pub name: Option<Named>,
    /// The latest follower sample overall.
    pub followers: Sample,
    /// The top posts of the quarter named.
    pub top: Option<TopPosts>,
    /// Periods where the page has a slot: by kind, newest first.
    pub periods: Vec<PeriodFigures>,
    /// Per rolling window (its days): totals of the page's posts published
    /// at or after the window's start, and its predecessor's start.
    pub since: Vec<(u16, [Totals; 2])>,
    /// The watermark these figures are as of.
    pub watermark: Millis,
    /// The input partition the page's events come from.
    pub partition: u32,
}

impl PageRecord {
    /// Page `p` of a snapshot of partition `partition`'s engine; `None` for
    /// a free number or an engine that has seen no event.
    pub fn of(s: &Snapshot, p: u32, partition: u32) -> Option<PageRecord> {
        let watermark = s.watermark?;
        if p >= s.page_bound() || s.ident(p).platform == u16::MAX {
            return None;
        }
        let periods = s
            .periods()
            .filter_map(|period| {
                let (_, slot) = s.slot(period, p)?;
                Some(PeriodFigures { period, totals: slot.totals(), followers: slot.followers })
            })
            .collect();
        let days = s.limits.windows.rolling().iter();
        let since = days.zip(&s.edges).map(|(d, [e, e2])| (*d, [s.since(p, e), s.since(p, e2)])).collect();
        let top = s.top(p).map(|t| (t.quarter, t.posts().map(|x| (Box::from(x.id), x.interactions)).collect()));
        Some(PageRecord {
            platform: s.platform(p).clone(),
            id: s.ident(p).id.as_str().into(),
            name: s.name(p).cloned(),
            followers: s.followers(p).unwrap_or(Sample::NONE),
            top,
            periods,
            since,
            watermark,
            partition,
        })
    }

    /// The record's key: the page, so that a compacted topic keeps one
    /// record per page.
    pub fn key(&self) -> Vec<u8> {
        page_key(&self.platform, &self.id)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(256));
        self.write(&mut w).expect("writing to a Vec cannot fail");
        w.0
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.u8(RECORD_VERSION)?;
        w.str(&self.platform)?;
        w.str(&self.id)?;
        w.i64(self.watermark)?;
        w.u32(self.partition)?;
        w.sample(self.followers.get().map(|s| (s.at, s.value)))?;
        match &self.name {
            None => w.u8(0)?,
            Some(n) => {
                w.u8(1)?;
                w.i64(n.at)?;
                w.str(&n.name)?;
            }
        }
        match &self.top {
            None => w.u8(0)?,
            Some((q, posts)) => {
                w.u8(1)?;
                w.i32(q.index())?;
                w.len(posts.len())?;
                for (id, interactions) in posts {
                    w.str(id)?;
                    w.u64(*interactions)?;
                }
            }
        }
        w.len(self.periods.len())?;
        for f in &self.periods {
            w.u8(f.period.kind as u8)?;
            w.i32(f.period.index)?;
            write_totals(w, &f.totals)?;
            w.sample(f.followers.get().map(|s| (s.at, s.value)))?;
        }
        w.len(self.since.len())?;
        for (days, [start, before]) in &self.since {
            w.u16(*days)?;
            write_totals(w, start)?;
            write_totals(w, before)?;
        }
        Ok(())
    }

    /// Reads a record; any damage is an error, with bounded memory.
    pub fn decode(bytes: &[u8]) -> Result<PageRecord, DecodeError> {
        let mut r = Reader(bytes);
        if r.u8()? != RECORD_VERSION {
            return Err(DecodeError::Range("page record version"));
        }
        let platform: Arc<str> = r.str(32, "platform")?.into();
        let id: Box<str> = r.str(128, "page id")?.into();
        let watermark = r.i64()?;
        let partition = r.u32()?;
        let followers = sample(r.sample()?);
        let name = match r.u8()? {
            0 => None,
            _ => Some(Named { at: r.i64()?, name: r.str(256, "page name")?.into() }),
        };
        let top = match r.u8()? {
            0 => None,
            _ => {
                let q = Quarter::from_index(r.i32()?);
                let n = r.len(TOP_MAX, "top posts")?;
                let mut posts = Vec::with_capacity(n);
                for _ in 0..n {
                    posts.push((r.str(crate::engine::ID_MAX, "post id")?.into(), r.u64()?));
                }
                Some((q, posts))
            }
        };
        let n = r.len(MAX_PERIODS, "periods")?;
        let mut periods = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = *CalendarKind::ALL.get(usize::from(r.u8()?)).ok_or(DecodeError::Range("period kind"))?;
            let period = CalendarPeriod { kind, index: r.i32()? };
            periods.push(PeriodFigures { period, totals: read_totals(&mut r)?, followers: sample(r.sample()?) });
        }
        let n = r.len(MAX_ROLLING, "rolling windows")?;
        let mut since = Vec::with_capacity(n);
        for _ in 0..n {
            since.push((r.u16()?, [read_totals(&mut r)?, read_totals(&mut r)?]));
        }
        if !r.0.is_empty() {
            return Err(DecodeError::Range("page record has trailing bytes"));
        }
        Ok(PageRecord { platform, id, name, followers, top, periods, since, watermark, partition })
    }
}

/// The key of page (platform, id) in the page-totals topic.
pub fn page_key(platform: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(platform.len() + 1 + id.len());
    k.extend_from_slice(platform.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn sample(s: Option<(i64, u64)>) -> Sample {
    s.map_or(Sample::NONE, |(at, value)| Sample { at, value })
}

fn write_totals(w: &mut Writer<Vec<u8>>, t: &Totals) -> std::io::Result<()> {
    for v in [t.reactions, t.comments, t.shares, t.views, t.posts] {
        w.u64(v)?;
    }
    Ok(())
}

fn read_totals(r: &mut Reader<&[u8]>) -> Result<Totals, DecodeError> {
    Ok(Totals { reactions: r.u64()?, comments: r.u64()?, shares: r.u64()?, views: r.u64()?, posts: r.u64()? })
}

/// The pages a global view reads: shared chunk by chunk with the table.
#[derive(Debug, Clone)]
pub struct PageSet {
    pub windows: Windows,
    pub watermark: Option<Millis>,
    pub pages: Column<Option<Arc<PageRecord>>>,
    /// Pages held (the live entries of `pages`).
    pub held: usize,
    /// Pages published from more than one partition.
    pub split_pages: usize,
    /// Input partitions with a history gap (their owners say so): their
    /// pages may lack figures.
    pub gaps: Vec<u32>,
}

impl PageSet {
    /// Whether page record `r` may lack figures.
    pub fn history_complete(&self, r: &PageRecord) -> bool {
        !self.gaps.contains(&r.partition)
    }
}

/// A record the table had no room for.
#[derive(Debug, PartialEq, Eq)]
pub struct TableFull;

/// Every page of the topic, as the shards last published it.
#[derive(Debug)]
pub struct GlobalTable {
    limits: Limits,
    index: HashMap<Vec<u8>, u32>,
    pages: Column<Option<Arc<PageRecord>>>,
    free: Vec<u32>,
    /// The greatest watermark published.
    watermark: Option<Millis>,
    /// Keys of the pages published from more than one partition (producers
    /// that do not key by page): at most one per page held.
    split: HashSet<Vec<u8>>,
    /// Input partitions whose owners report a history gap: at most the
    /// input's partition count.
    gaps: Vec<u32>,
}

impl GlobalTable {
    pub fn new(limits: Limits) -> GlobalTable {
        GlobalTable {
            limits,
            index: HashMap::new(),
            pages: Column::default(),
            free: Vec::new(),
            watermark: None,
            split: HashSet::new(),
            gaps: Vec::new(),
        }
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Puts a page's latest figures in place of what the table had.
    pub fn put(&mut self, rec: PageRecord) -> Result<(), TableFull> {
        let key = rec.key();
        if let Some(&p) = self.index.get(&key) {
            let held = self.pages.get_mut(p as usize);
            if held.as_ref().is_some_and(|h| h.partition != rec.partition) {
                self.split.insert(key);
            }
            *held = Some(Arc::new(rec));
            return Ok(());
        }
        if self.index.len() >= self.limits.max_pages as usize {
            return Err(TableFull);
        }
        let p = match self.free.pop() {
            Some(p) => {
                *self.pages.get_mut(p as usize) = Some(Arc::new(rec));
                p
            }
            None => self.pages.push(Some(Arc::new(rec))) as u32,
        };
        self.index.insert(key, p);
        Ok(())
    }

    /// Forgets the page with key `key` (a tombstone).
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(p) = self.index.remove(key) {
            self.split.remove(key);
            *self.pages.get_mut(p as usize) = None;
            self.free.push(p);
        }
    }

    /// A partition's watermark: the table keeps the greatest.
    pub fn set_watermark(&mut self, at: Millis) {
        self.watermark = self.watermark.max(Some(at));
    }

    /// The greatest watermark of the topic.
    pub fn watermark(&self) -> Option<Millis> {
        self.watermark
    }

    /// The pages as a view sees them (cheap: shared chunks).
    pub fn page_set(&self) -> PageSet {
        PageSet {
            windows: self.limits.windows,
            watermark: self.watermark(),
            pages: self.pages.clone(),
            held: self.index.len(),
            split_pages: self.split.len(),
            gaps: self.gaps.clone(),
        }
    }

    /// Notes whether input partition `partition`'s owner reports a history
    /// gap; whether that changed.
    pub fn note_gap(&mut self, partition: u32, gap: bool) -> bool {
        if self.gaps.contains(&partition) == gap {
            return false;
        }
        match gap {
            true => self.gaps.push(partition),
            false => self.gaps.retain(|g| *g != partition),
        }
        true
    }
}
