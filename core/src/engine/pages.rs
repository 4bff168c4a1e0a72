//! Pages: the interned (platform, page_id) → dense index map, and per page
//! its name, follower samples, per-quarter totals and top posts.
//!
//! Per-quarter data sits in a ring of `retained + 1` slots indexed by the
//! quarter number modulo the ring length; a slot whose tag is not the quarter
//! asked for is stale and reads as empty. Freed pages go on a free list and
//! their index is reused, so the number of page records never exceeds the
//! configured bound.

use std::io::{self, Read, Write};
use std::sync::Arc;

use compact_str::CompactString;
use hashbrown::HashTable;

use crate::codec::{DecodeError, Reader, Writer};
use crate::event::Counts;
use crate::window::{Millis, Quarter};

/// Totals of the posts of one page in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub reactions: u64,
    pub comments: u64,
    pub shares: u64,
    pub views: u64,
    pub posts: u64,
}

impl Totals {
    pub fn interactions(&self) -> u64 {
        self.reactions.wrapping_add(self.comments).wrapping_add(self.shares)
    }

    /// Adds `new - old` field by field. Wrapping arithmetic keeps every
    /// intermediate state representable; the result is exact whenever the
    /// true total fits in a u64.
    pub fn apply_change(&mut self, old: &Counts, new: &Counts) {
        let step = |t: &mut u64, o: u64, n: u64| *t = t.wrapping_add(n.wrapping_sub(o));
        step(&mut self.reactions, old.reactions, new.reactions);
        step(&mut self.comments, old.comments, new.comments);
        step(&mut self.shares, old.shares, new.shares);
        step(&mut self.views, old.views, new.views);
    }

    pub fn add_post(&mut self, counts: &Counts) {
        self.apply_change(&Counts::default(), counts);
        self.posts += 1;
    }

    pub fn remove_post(&mut self, counts: &Counts) {
        self.apply_change(counts, &Counts::default());
        self.posts -= 1;
    }
}

/// A value observed at an instant; the greater `(at, value)` wins, which
/// makes merging idempotent and independent of arrival order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sample<T> {
    pub at: Millis,
    pub value: T,
}

fn merge<T: Ord>(slot: &mut Option<Sample<T>>, candidate: Sample<T>) -> bool {
    if slot.as_ref().is_none_or(|s| candidate > *s) {
        *slot = Some(candidate);
        true
    } else {
        false
    }
}

/// One quarter of one page: posts published in it, followers observed in it.
#[derive(Debug, Clone, Default)]
pub struct QuarterSlot {
    quarter: Option<Quarter>,
    pub totals: Totals,
    pub followers: Option<Sample<u64>>,
}

/// A post offered to a page's top-posts list.
#[derive(Debug, Clone, Copy)]
pub struct TopCandidate<'a> {
    pub hash: u64,
    pub id: &'a str,
    /// Interactions before this change; `None` for a new post.
    pub old: Option<u64>,
    pub interactions: u64,
}

/// A post listed among a page's top posts of the current quarter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopPost {
    pub hash: u64,
    /// Inline up to 24 bytes, so replacing an entry usually allocates nothing.
    pub post_id: CompactString,
    pub interactions: u64,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub platform: u16,
    /// Inline up to 24 bytes: the per-event lookup compares it without a
    /// pointer chase.
    pub id: CompactString,
    pub name: Option<Sample<Arc<str>>>,
    /// Latest follower sample overall (for the rolling window).
    pub followers: Option<Sample<u64>>,
    slots: Box<[QuarterSlot]>,
    /// Top posts of `top_quarter` by interactions, at most `top_posts` long.
    top_quarter: Option<Quarter>,
    top: Vec<TopPost>,
    /// Smallest interactions in `top`.
    top_min: u64,
}

impl Page {
    fn slot_index(&self, q: Quarter) -> usize {
        q.index().rem_euclid(self.slots.len() as i32) as usize
    }

    /// The slot of `q`, or `None` when it holds no data for `q`.
    pub fn slot(&self, q: Quarter) -> Option<&QuarterSlot> {
        let s = &self.slots[self.slot_index(q)];
        (s.quarter == Some(q)).then_some(s)
    }

    /// The slot of `q`, emptied first if it held an older quarter.
    pub fn slot_mut(&mut self, q: Quarter) -> &mut QuarterSlot {
        let i = self.slot_index(q);
        let s = &mut self.slots[i];
        if s.quarter != Some(q) {
            *s = QuarterSlot { quarter: Some(q), ..QuarterSlot::default() };
        }
        s
    }

    /// Top posts of quarter `q` (empty unless `q` is the one tracked).
    pub fn top_posts(&self, q: Quarter) -> &[TopPost] {
        if self.top_quarter == Some(q) { &self.top } else { &[] }
    }

    /// Records a post's interactions for the top-posts list of `q`; `old`
    /// is its count before this change (`None` for a new post). A post whose
    /// count falls keeps its place until another post passes it.
    pub fn note_top_post(&mut self, q: Quarter, post: TopCandidate<'_>, max: usize) {
        if self.top_quarter != Some(q) {
            if self.top_quarter.is_some_and(|t| t > q) {
                return;
            }
            self.top_quarter = Some(q);
            self.top.clear();
            self.top_min = 0;
        }
        // A listed post's recorded count is its previous count and is never
        // below the list's minimum, so a post whose previous count was below
        // it is not listed: with a full list and no gain past the minimum,
        // there is nothing to do (the common case, without a scan).
        let full = self.top.len() >= max;
        if full && post.old.is_none_or(|o| o < self.top_min) && post.interactions <= self.top_min {
            return;
        }
        if let Some(t) = self.top.iter_mut().find(|t| t.hash == post.hash) {
            t.interactions = post.interactions;
        } else {
            let entry =
                || TopPost { hash: post.hash, post_id: CompactString::new(post.id), interactions: post.interactions };
            if !full {
                self.top.push(entry());
            } else if let Some(low) = self.top.iter_mut().min_by_key(|t| t.interactions) {
                if post.interactions > low.interactions {
                    *low = entry();
                }
            }
        }
        self.top_min = self.top.iter().map(|t| t.interactions).min().unwrap_or(0);
    }

    /// Drops data of quarters before `oldest`; true when nothing is left:
    /// no post or follower sample in a retained quarter, no recent name.
    fn forget_before(&mut self, oldest: Quarter) -> bool {
        for s in self.slots.iter_mut() {
            if s.quarter.is_some_and(|q| q < oldest) {
                *s = QuarterSlot::default();
            }
        }
        if self.top_quarter.is_some_and(|q| q < oldest) {
            self.top_quarter = None;
            self.top = Vec::new();
        }
        let recent = |at: Millis| at >= oldest.start();
        self.slots.iter().all(|s| s.quarter.is_none())
            && !self.name.as_ref().is_some_and(|n| recent(n.at))
            && !self.followers.as_ref().is_some_and(|f| recent(f.at))
    }

    /// The name, when observed in a retained quarter (from `oldest` on).
    pub fn name_since(&self, oldest: Quarter) -> Option<&Arc<str>> {
        self.name.as_ref().filter(|n| n.at >= oldest.start()).map(|n| &n.value)
    }

    /// Records a follower count observed at `at`, in quarter `q`.
    pub fn observe_followers(&mut self, q: Quarter, at: Millis, followers: u64) {
        merge(&mut self.followers, Sample { at, value: followers });
        merge(&mut self.slot_mut(q).followers, Sample { at, value: followers });
    }

    pub fn observe_name(&mut self, at: Millis, name: &str) {
        let newer = self.name.as_ref().is_none_or(|n| (at, name) > (n.at, &*n.value));
        if newer {
            self.name = Some(Sample { at, value: Arc::from(name) });
        }
    }

    fn heap_bytes(&self) -> usize {
        (if self.id.is_heap_allocated() { self.id.len() } else { 0 })
            + self.name.as_ref().map_or(0, |n| n.value.len())
            + self.slots.len() * size_of::<QuarterSlot>()
            + self.top.capacity() * size_of::<TopPost>()
            + self.top.iter().filter(|t| t.post_id.is_heap_allocated()).map(|t| t.post_id.len()).sum::<usize>()
    }
}

/// Why a page could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRefused {
    Pages,
    Platforms,
}

/// All pages, with the platform names they refer to.
pub struct Pages {
    platforms: Vec<Arc<str>>,
    max_platforms: usize,
    pages: Vec<Option<Page>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    max_pages: u32,
    ring: usize,
}

fn page_hash(platform: u16, id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), u64::from(platform))
}

impl Pages {
    pub fn new(max_pages: u32, max_platforms: usize, ring: usize) -> Pages {
        Pages {
            platforms: Vec::new(),
            max_platforms,
            pages: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            max_pages,
            ring,
        }
    }

    pub fn platform_name(&self, platform: u16) -> &Arc<str> {
        &self.platforms[usize::from(platform)]
    }

    pub fn platforms(&self) -> &[Arc<str>] {
        &self.platforms
    }

    fn platform(&mut self, name: &str) -> Result<u16, PageRefused> {
        if let Some(i) = self.platforms.iter().position(|p| &**p == name) {
            return Ok(i as u16);
        }
        if self.platforms.len() >= self.max_platforms {
            return Err(PageRefused::Platforms);
        }
        self.platforms.push(Arc::from(name));
        Ok((self.platforms.len() - 1) as u16)
    }

    /// The index of (platform, id), adding the page if it is new.
    pub fn intern(&mut self, platform: &str, id: &str) -> Result<u32, PageRefused> {
        let p = self.platform(platform)?;
        let h = page_hash(p, id);
        let pages = &self.pages;
        let found = self.index.find(h, |&i| {
            let page = pages[i as usize].as_ref().expect("indexed pages are live");
            page.platform == p && page.id.as_str() == id
        });
        if let Some(&i) = found {
            return Ok(i);
        }
        if self.len() >= self.max_pages as usize {
            return Err(PageRefused::Pages);
        }
        let page = Page {
            platform: p,
            id: CompactString::new(id),
            name: None,
            followers: None,
            slots: vec![QuarterSlot::default(); self.ring].into_boxed_slice(),
            top_quarter: None,
            top: Vec::new(),
            top_min: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.pages[i as usize] = Some(page);
                i
            }
            None => {
                self.pages.push(Some(page));
                (self.pages.len() - 1) as u32
            }
        };
        let pages = &self.pages;
        self.index.insert_unique(h, i, |&j| {
            let page = pages[j as usize].as_ref().expect("indexed pages are live");
            page_hash(page.platform, &page.id)
        });
        Ok(i)
    }

    pub fn get(&self, i: u32) -> &Page {
        self.pages[i as usize].as_ref().expect("page index refers to a live page")
    }

    pub fn get_mut(&mut self, i: u32) -> &mut Page {
        self.pages[i as usize].as_mut().expect("page index refers to a live page")
    }

    /// Live pages with their indices.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Page)> {
        self.pages.iter().enumerate().filter_map(|(i, p)| Some((i as u32, p.as_ref()?)))
    }

    pub fn len(&self) -> usize {
        self.pages.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets quarters before `oldest` and frees pages left with nothing.
    pub fn forget_before(&mut self, oldest: Quarter) {
        for i in 0..self.pages.len() {
            let Some(page) = self.pages[i].as_mut() else {
                continue;
            };
            if page.forget_before(oldest) {
                let h = page_hash(page.platform, &page.id);
                if let Ok(e) = self.index.find_entry(h, |&j| j as usize == i) {
                    e.remove();
                }
                self.pages[i] = None;
                self.free.push(i as u32);
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.pages.capacity() * size_of::<Option<Page>>()
            + self.iter().map(|(_, p)| p.heap_bytes()).sum::<usize>()
            + (self.index.capacity() * 8 / 7).next_power_of_two() * 5
            + self.free.capacity() * 4
    }
}

fn encode_totals<W: Write>(w: &mut Writer<W>, t: &Totals) -> io::Result<()> {
    for v in [t.reactions, t.comments, t.shares, t.views, t.posts] {
        w.u64(v)?;
    }
    Ok(())
}

fn decode_totals<R: Read>(r: &mut Reader<R>) -> Result<Totals, DecodeError> {
    Ok(Totals { reactions: r.u64()?, comments: r.u64()?, shares: r.u64()?, views: r.u64()?, posts: r.u64()? })
}

fn sample(s: &Option<Sample<u64>>) -> Option<(i64, u64)> {
    s.as_ref().map(|s| (s.at, s.value))
}

fn unsample(s: Option<(i64, u64)>) -> Option<Sample<u64>> {
    s.map(|(at, value)| Sample { at, value })
}

impl Page {
    fn encode<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.u16(self.platform)?;
        w.str(&self.id)?;
        match &self.name {
            None => w.u8(0)?,
            Some(n) => {
                w.u8(1)?;
                w.i64(n.at)?;
                w.str(&n.value)?;
            }
        }
        w.sample(sample(&self.followers))?;
        let slots: Vec<&QuarterSlot> = self.slots.iter().filter(|s| s.quarter.is_some()).collect();
        w.len(slots.len())?;
        for slot in slots {
            w.i32(slot.quarter.map_or(0, Quarter::index))?;
            encode_totals(w, &slot.totals)?;
            w.sample(sample(&slot.followers))?;
        }
        w.i32(self.top_quarter.map_or(i32::MIN, Quarter::index))?;
        w.len(self.top.len())?;
        for t in &self.top {
            w.u64(t.hash)?;
            w.u64(t.interactions)?;
            w.str(&t.post_id)?;
        }
        Ok(())
    }

    fn decode<R: Read>(r: &mut Reader<R>, ring: usize, platforms: usize) -> Result<Page, DecodeError> {
        let platform = r.u16()?;
        if usize::from(platform) >= platforms {
            return Err(DecodeError::Range("page platform"));
        }
        let id = CompactString::from(r.str(128, "page id")?);
        let name = match r.u8()? {
            0 => None,
            1 => Some(Sample { at: r.i64()?, value: Arc::from(r.str(256, "page name")?) }),
            _ => return Err(DecodeError::Range("page name flag")),
        };
        let mut page = Page {
            platform,
            id,
            name,
            followers: unsample(r.sample()?),
            slots: vec![QuarterSlot::default(); ring].into_boxed_slice(),
            top_quarter: None,
            top: Vec::new(),
            top_min: 0,
        };
        let mut saved = Vec::new();
        for _ in 0..r.len(64, "page slots")? {
            saved.push((Quarter::from_index(r.i32()?), decode_totals(r)?, unsample(r.sample()?)));
        }
        // Oldest first, so that with a smaller ring the newest quarter wins.
        saved.sort_by_key(|(q, _, _)| *q);
        for (q, totals, followers) in saved {
            let slot = page.slot_mut(q);
            slot.totals = totals;
            slot.followers = followers;
        }
        let top_quarter = r.i32()?;
        page.top_quarter = (top_quarter != i32::MIN).then(|| Quarter::from_index(top_quarter));
        for _ in 0..r.len(100, "top posts")? {
            let (hash, interactions) = (r.u64()?, r.u64()?);
            page.top.push(TopPost { hash, interactions, post_id: CompactString::from(r.str(128, "post id")?) });
        }
        page.top_min = page.top.iter().map(|t| t.interactions).min().unwrap_or(0);
        Ok(page)
    }
}

impl Pages {
    pub(super) fn encode<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.len(self.platforms.len())?;
        for p in &self.platforms {
            w.str(p)?;
        }
        w.len(self.len())?;
        for (i, page) in self.iter() {
            w.u32(i)?;
            page.encode(w)?;
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote, keeping page indices (the
    /// post records refer to them).
    pub(super) fn decode<R: Read>(
        r: &mut Reader<R>,
        max_pages: u32,
        max_platforms: usize,
        ring: usize,
    ) -> Result<Pages, DecodeError> {
        let mut pages = Pages::new(max_pages, max_platforms, ring);
        for _ in 0..r.len(max_platforms, "platform count")? {
            pages.platforms.push(r.str(32, "platform")?.into());
        }
        for _ in 0..r.len(max_pages as usize, "page count")? {
            let i = r.u32()? as usize;
            if i >= max_pages as usize {
                return Err(DecodeError::Range("page index"));
            }
            let page = Page::decode(r, ring, pages.platforms.len())?;
            if pages.pages.len() <= i {
                pages.pages.resize_with(i + 1, || None);
            }
            if pages.pages[i].replace(page).is_some() {
                return Err(DecodeError::Range("page index repeated"));
            }
        }
        pages.free = (0..pages.pages.len() as u32).rev().filter(|i| pages.pages[*i as usize].is_none()).collect();
        let Pages { index, pages: list, .. } = &mut pages;
        for (i, page) in list.iter().enumerate() {
            if let Some(p) = page {
                let h = page_hash(p.platform, &p.id);
                let dup = index
                    .find(h, |&j| list[j as usize].as_ref().is_some_and(|q| q.platform == p.platform && q.id == p.id));
                if dup.is_some() {
                    return Err(DecodeError::Range("page repeated"));
                }
                index.insert_unique(h, i as u32, |&j| {
                    list[j as usize].as_ref().map_or(0, |q| page_hash(q.platform, &q.id))
                });
            }
        }
        Ok(pages)
    }

    /// Whether `i` is a live page.
    pub(super) fn is_live(&self, i: u32) -> bool {
        self.pages.get(i as usize).is_some_and(Option::is_some)
    }
}
