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
use crate::window::{CalendarKind, CalendarPeriod, DAY_MS, MAX_ROLLING, Millis, Quarter, Windows};

/// Format version of a page record (varints, with the page's figures per
/// day and its top lists kept for earlier quarters).
const RECORD_VERSION: u8 = 5;
/// Format 4: without the kept top lists; still read (none until the page
/// changes).
const DAYS_VERSION: u8 = 4;
/// Format 3: varints, without the figures per day; still read (a page
/// whose record is of format 3 has an empty series until it changes).
const COMPACT_VERSION: u8 = 3;
/// The previous format (fixed-width numbers), still read: a compacted
/// page-totals topic keeps the records of an older release until their
/// pages change.
const FIXED_VERSION: u8 = 2;
/// Most period figures a record carries: every kind at its longest
/// retention within the windows' reach.
const MAX_PERIODS: usize = 256;
/// Most days with posts a record carries: the cutoff lies at most the
/// longest retention (8 quarters, or twice the longest rolling window)
/// before the watermark.
const MAX_DAYS: usize = 1024;

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
    /// The top posts kept for earlier quarters, newest first.
    pub kept: Vec<TopPosts>,
    /// Periods where the page has a slot: by kind, newest first.
    pub periods: Vec<PeriodFigures>,
    /// Per rolling window (its days): totals of the page's posts published
    /// at or after the window's start, and its predecessor's start.
    pub since: Vec<(u16, [Totals; 2])>,
    /// The page's days with posts (days since the epoch) and their figures,
    /// in day order (see [`series`](crate::engine::series)).
    pub days: Vec<(i32, Totals)>,
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
        let owned =
            |t: crate::engine::TopList<'_>| (t.quarter, t.posts().map(|x| (Box::from(x.id), x.interactions)).collect());
        let top = s.top(p).map(owned);
        let live = top.as_ref().map(|(q, _)| *q);
        let kept = s
            .periods()
            .filter(|q| q.kind == CalendarKind::Quarter && Some(Quarter::from_index(q.index)) != live)
            .filter_map(|q| s.top_of(p, Quarter::from_index(q.index)).map(owned))
            .collect();
        Some(PageRecord {
            platform: s.platform(p).clone(),
            id: s.ident(p).id.as_str().into(),
            name: s.name(p).cloned(),
            followers: s.followers(p).unwrap_or(Sample::NONE),
            top,
            kept,
            periods,
            since,
            days: s.days(p).collect(),
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
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Writes the record into `out` (cleared first), in the current format:
    /// every number a varint, times relative to the watermark. About half
    /// the bytes of format 2's fixed-width fields (docs/scaling.md).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        self.write(&mut Writer(out)).expect("writing to a Vec cannot fail");
    }

    fn write(&self, w: &mut Writer<&mut Vec<u8>>) -> std::io::Result<()> {
        let wm = self.watermark;
        let sample = |w: &mut Writer<&mut Vec<u8>>, s: &Sample| match s.get() {
            None => w.u8(0),
            Some(s) => {
                w.u8(1)?;
                w.ivar(s.at.wrapping_sub(wm))?;
                w.uvar(s.value)
            }
        };
        w.u8(RECORD_VERSION)?;
        w.str_var(&self.platform)?;
        w.str_var(&self.id)?;
        w.ivar(wm)?;
        w.uvar(self.partition.into())?;
        sample(w, &self.followers)?;
        match &self.name {
            None => w.u8(0)?,
            Some(n) => {
                w.u8(1)?;
                w.ivar(n.at.wrapping_sub(wm))?;
                w.str_var(&n.name)?;
            }
        }
        let top = |w: &mut Writer<&mut Vec<u8>>, (q, posts): &TopPosts| {
            w.ivar(q.index().into())?;
            w.uvar(posts.len() as u64)?;
            for (id, interactions) in posts {
                w.str_var(id)?;
                w.uvar(*interactions)?;
            }
            Ok::<(), std::io::Error>(())
        };
        match &self.top {
            None => w.u8(0)?,
            Some(t) => {
                w.u8(1)?;
                top(w, t)?;
            }
        }
        w.uvar(self.periods.len() as u64)?;
        for f in &self.periods {
            w.u8(f.period.kind as u8)?;
            w.ivar(f.period.index.into())?;
            write_totals(w, &f.totals)?;
            sample(w, &f.followers)?;
        }
        w.uvar(self.since.len() as u64)?;
        for (days, [start, before]) in &self.since {
            w.uvar((*days).into())?;
            write_totals(w, start)?;
            write_totals(w, before)?;
        }
        // Each day after the previous one (the first after the
        // watermark's day, so negative).
        w.uvar(self.days.len() as u64)?;
        let mut prev = wm.div_euclid(DAY_MS);
        for (day, totals) in &self.days {
            w.ivar(i64::from(*day) - prev)?;
            prev = i64::from(*day);
            write_totals(w, totals)?;
        }
        w.uvar(self.kept.len() as u64)?;
        for t in &self.kept {
            top(w, t)?;
        }
        Ok(())
    }

    /// Reads a record of the current format or of format 2; any damage is
    /// an error, with bounded memory.
    pub fn decode(bytes: &[u8]) -> Result<PageRecord, DecodeError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        let compact = match version {
            RECORD_VERSION | DAYS_VERSION | COMPACT_VERSION => true,
            FIXED_VERSION => false,
            _ => return Err(DecodeError::Range("page record version")),
        };
        let mut f = Fields { r, compact, watermark: 0 };
        let platform: Arc<str> = f.str(32, "platform")?.into();
        let id: Box<str> = f.str(128, "page id")?.into();
        let watermark = f.i64()?;
        f.watermark = watermark;
        let partition = f.u32()?;
        let followers = f.sample()?;
        let name = match f.r.u8()? {
            0 => None,
            _ => Some(Named { at: f.at()?, name: f.str(256, "page name")?.into() }),
        };
        let top = match f.r.u8()? {
            0 => None,
            _ => Some(f.top()?),
        };
        let n = f.len(MAX_PERIODS, "periods")?;
        let mut periods = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = *CalendarKind::ALL.get(usize::from(f.r.u8()?)).ok_or(DecodeError::Range("period kind"))?;
            let period = CalendarPeriod { kind, index: f.i32()? };
            periods.push(PeriodFigures { period, totals: f.totals()?, followers: f.sample()? });
        }
        let n = f.len(MAX_ROLLING, "rolling windows")?;
        let mut since = Vec::with_capacity(n);
        for _ in 0..n {
            since.push((f.u16()?, [f.totals()?, f.totals()?]));
        }
        let mut days = Vec::new();
        if version >= DAYS_VERSION {
            let n = f.len(MAX_DAYS, "days")?;
            days.reserve_exact(n);
            let mut prev = watermark.div_euclid(DAY_MS);
            for _ in 0..n {
                let day = prev.checked_add(f.r.ivar()?).ok_or(DecodeError::Range("day"))?;
                if !days.is_empty() && day <= prev {
                    return Err(DecodeError::Range("days out of order"));
                }
                prev = day;
                let day = i32::try_from(day).map_err(|_| DecodeError::Range("day"))?;
                days.push((day, f.totals()?));
            }
        }
        let mut kept = Vec::new();
        if version >= RECORD_VERSION {
            for _ in 0..f.len(MAX_PERIODS, "kept top lists")? {
                kept.push(f.top()?);
            }
        }
        if !f.r.0.is_empty() {
            return Err(DecodeError::Range("page record has trailing bytes"));
        }
        Ok(PageRecord { platform, id, name, followers, top, kept, periods, since, days, watermark, partition })
    }
}

/// A record's fields as its format writes them: varints with times
/// relative to the watermark (current), or fixed width (format 2).
struct Fields<'a> {
    r: Reader<&'a [u8]>,
    compact: bool,
    watermark: Millis,
}

impl Fields<'_> {
    /// A top list: its quarter and its posts (id, interactions).
    fn top(&mut self) -> Result<TopPosts, DecodeError> {
        let q = Quarter::from_index(self.i32()?);
        let n = self.len(TOP_MAX, "top posts")?;
        let mut posts = Vec::with_capacity(n);
        for _ in 0..n {
            posts.push((self.str(crate::engine::ID_MAX, "post id")?.into(), self.u64()?));
        }
        Ok((q, posts))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        if self.compact { self.r.uvar() } else { self.r.u64() }
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        if self.compact { self.r.ivar() } else { self.r.i64() }
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        match self.compact {
            true => u16::try_from(self.r.uvar()?).map_err(|_| DecodeError::Range("a 16-bit field")),
            false => self.r.u16(),
        }
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        match self.compact {
            true => u32::try_from(self.r.uvar()?).map_err(|_| DecodeError::Range("a 32-bit field")),
            false => self.r.u32(),
        }
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        match self.compact {
            true => i32::try_from(self.r.ivar()?).map_err(|_| DecodeError::Range("a 32-bit field")),
            false => self.r.i32(),
        }
    }

    fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        usize::try_from(n).ok().filter(|n| *n <= max).ok_or(DecodeError::Range(what))
    }

    fn str(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        if self.compact { self.r.str_var(max, what) } else { self.r.str(max, what) }
    }

    /// A time: relative to the watermark in the current format.
    fn at(&mut self) -> Result<Millis, DecodeError> {
        match self.compact {
            true => Ok(self.watermark.wrapping_add(self.r.ivar()?)),
            false => self.r.i64(),
        }
    }

    fn sample(&mut self) -> Result<Sample, DecodeError> {
        match self.r.u8()? {
            0 => Ok(Sample::NONE),
            1 => Ok(Sample { at: self.at()?, value: self.u64()? }),
            _ => Err(DecodeError::Range("sample flag")),
        }
    }

    fn totals(&mut self) -> Result<Totals, DecodeError> {
        Ok(Totals {
            reactions: self.u64()?,
            comments: self.u64()?,
            shares: self.u64()?,
            views: self.u64()?,
            posts: self.u64()?,
        })
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

fn write_totals(w: &mut Writer<&mut Vec<u8>>, t: &Totals) -> std::io::Result<()> {
    for v in [t.reactions, t.comments, t.shares, t.views, t.posts] {
        w.uvar(v)?;
    }
    Ok(())
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
