//! Pages: identity, follower counts, names and top posts, in columns
//! shared copy-on-write with views and checkpoints. A page is found by a hash [`Index`] over
//! (platform, page id); pages are numbered densely and numbers of freed
//! pages are reused.

use std::sync::Arc;

use compact_str::CompactString;

use super::column::{Column, prefetch_slice};
use super::index::Index;
use super::periods::Sample;
use super::tops::{OwnedTopPost, TopBlocks, TopList, TopRef, TopSlab};
use crate::window::{Millis, Quarter};

/// The platform number of a freed page.
const FREE: u16 = u16::MAX;

/// Who a page is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ident {
    pub id: CompactString,
    pub platform: u16,
}

/// What changes about a page besides its totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageState {
    /// The latest follower count observed overall.
    pub followers: Sample,
    /// Quarters kept in which the page has a slot: it is freed at none.
    pub quarters: u8,
    /// A summary of the top list, so that most events need not read the
    /// list itself: its quarter (`i32::MIN` for none), whether it is full,
    /// and its minimum. The state is one cache line.
    top_quarter: i32,
    top_full: bool,
    top_min: u64,
    /// The partition the page's first event came from ([`NO_PARTITION`]
    /// before one with a known partition), and whether one came from
    /// another (see [`Pages::note_partition`]). Both fit the padding.
    partition: u16,
    split: bool,
}

/// No partition noted yet.
const NO_PARTITION: u16 = u16::MAX;

impl PageState {
    /// The partition the page's first event came from, if known.
    pub fn partition(&self) -> Option<u32> {
        (self.partition != NO_PARTITION).then_some(u32::from(self.partition))
    }

    /// Whether events came from more than one partition.
    pub fn split(&self) -> bool {
        self.split
    }
}

impl Default for PageState {
    fn default() -> PageState {
        PageState {
            followers: Sample::NONE,
            quarters: 0,
            top_quarter: i32::MIN,
            top_full: false,
            top_min: 0,
            partition: NO_PARTITION,
            split: false,
        }
    }
}

/// A page name as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub at: Millis,
    pub name: Box<str>,
}

/// What a post did to its page's top list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopChange {
    None,
    /// A listed post's interactions changed.
    Counts,
    /// A post entered (or a newer quarter's list began).
    Members,
}

/// What noting a post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The live list took it, or not.
    Live(TopChange),
    /// The post began the list of a later quarter; `old`, the live list of
    /// `quarter` until now, is taken out for the caller to keep or free.
    Began { old: TopRef, quarter: Quarter },
    /// The post is of a quarter before the live list's.
    Earlier,
}

/// A post whose interactions may put it in its page's top list.
pub struct TopCandidate<'a> {
    pub hash: u64,
    pub id: &'a str,
    /// Its interactions before this change; `None` for a new post.
    pub old: Option<u64>,
    pub interactions: u64,
}

/// Why a page could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRejected {
    Pages,
    Platforms,
}

/// The index key of a page.
pub fn page_key(platform: u16, id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), u64::from(platform))
}

#[derive(Debug, Clone)]
pub struct Pages {
    pub(super) platforms: Vec<Arc<str>>,
    max_platforms: usize,
    index: Index,
    pub(super) idents: Column<Ident>,
    pub(super) states: Column<PageState>,
    pub(super) names: Column<Option<Arc<Named>>>,
    /// Where each page's top list is in `top_blocks` (its quarter and
    /// minimum live in the page state).
    pub(super) tops: Column<TopRef>,
    pub(super) top_blocks: TopSlab,
    free: Vec<u32>,
    live: usize,
    max_pages: u32,
    /// Pages in use whose events came from more than one partition.
    split: usize,
    /// Heap bytes of names and long page ids, kept as they change
    /// (summing them per page would cost O(pages) per view).
    strings: usize,
}

impl Pages {
    pub fn new(max_pages: u32, max_platforms: usize, top_posts: usize) -> Pages {
        Pages {
            platforms: Vec::new(),
            max_platforms,
            index: Index::new(23),
            idents: Column::default(),
            states: Column::default(),
            names: Column::default(),
            tops: Column::default(),
            top_blocks: TopSlab::new(top_posts),
            free: Vec::new(),
            live: 0,
            max_pages,
            split: 0,
            strings: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Pages in use whose events came from more than one partition.
    pub fn split(&self) -> usize {
        self.split
    }

    /// Notes that an event of page `p` came from `partition` (partitions
    /// past 65,534 count as 65,534). A page whose events come from two
    /// partitions is counted once: producers do not key its events by
    /// page, which shard mode will need. Not kept in checkpoints: counted
    /// since the start.
    #[inline]
    pub fn note_partition(&mut self, p: u32, partition: u32) {
        let partition = partition.min(u32::from(NO_PARTITION) - 1) as u16;
        let state = self.state(p);
        if state.partition == partition || state.split {
            return;
        }
        let state = self.state_mut(p);
        if state.partition == NO_PARTITION {
            state.partition = partition;
        } else {
            state.split = true;
            self.split += 1;
        }
    }

    pub fn platforms(&self) -> &[Arc<str>] {
        &self.platforms
    }

    /// The number of a known platform.
    pub fn platform(&self, name: &str) -> Option<u16> {
        self.platforms.iter().position(|p| &**p == name).map(|i| i as u16)
    }

    /// Numbers of the pages in use.
    pub fn live(&self) -> impl Iterator<Item = u32> + '_ {
        self.idents.iter().enumerate().filter(|(_, i)| i.platform != FREE).map(|(p, _)| p as u32)
    }

    pub fn ident(&self, page: u32) -> &Ident {
        self.idents.get(page as usize)
    }

    pub fn state(&self, page: u32) -> &PageState {
        self.states.get(page as usize)
    }

    pub fn state_mut(&mut self, page: u32) -> &mut PageState {
        self.states.get_mut(page as usize)
    }

    /// The key of a page in use.
    pub fn key(&self, page: u32) -> u64 {
        let i = self.ident(page);
        page_key(i.platform, &i.id)
    }

    /// Hints the CPU to load `key`'s index bucket.
    #[inline]
    pub fn prefetch_bucket(&self, key: u64) {
        self.index.prefetch(key);
    }

    /// Hints the CPU to load the identity and state of the page `key`
    /// probably refers to.
    #[inline]
    pub fn prefetch_page(&self, key: u64) {
        if let Some(p) = self.index.guess(key) {
            self.idents.prefetch(p as usize);
            self.states.prefetch(p as usize);
            self.tops.prefetch(p as usize);
        }
    }

    /// The page `key` probably refers to (unconfirmed: a prefetch hint).
    #[inline]
    pub fn guess(&self, key: u64) -> Option<u32> {
        self.index.guess(key).filter(|p| (*p as usize) < self.states.len())
    }

    /// Hints the CPU to load page `p`'s top list, unless its summary says
    /// that a post of `interactions` in quarter `q` will not read it.
    #[inline]
    pub fn prefetch_top(&self, p: u32, q: Quarter, interactions: u64) {
        let state = self.state(p);
        if state.top_quarter == q.index() && state.top_full && interactions <= state.top_min {
            return;
        }
        prefetch_slice(self.top_blocks.get(*self.tops.get(p as usize)), 8);
    }

    /// Page (platform, id), if it is held.
    pub fn lookup(&self, platform: &str, id: &str) -> Option<u32> {
        let platform = self.platform(platform)?;
        self.find(page_key(platform, id), platform, id)
    }

    pub fn find(&self, key: u64, platform: u16, id: &str) -> Option<u32> {
        let idents = &self.idents;
        self.index.find(key, |p| {
            let i = idents.get(p as usize);
            i.platform == platform && i.id == id
        })
    }

    /// The page (platform, id) and its key, added if it is new.
    pub fn intern(&mut self, platform: &str, id: &str) -> Result<(u32, u64), PageRejected> {
        self.intern_keyed(platform, id, None)
    }

    /// [`intern`](Self::intern) with the key when the caller computed it
    /// for a known platform.
    pub fn intern_keyed(
        &mut self,
        platform: &str,
        id: &str,
        key: Option<(u16, u64)>,
    ) -> Result<(u32, u64), PageRejected> {
        if let Some((platform, key)) = key {
            if let Some(p) = self.find(key, platform, id) {
                return Ok((p, key));
            }
        }
        let platform = match self.platform(platform) {
            Some(p) => p,
            None if self.platforms.len() >= self.max_platforms => return Err(PageRejected::Platforms),
            None => {
                self.platforms.push(Arc::from(platform));
                (self.platforms.len() - 1) as u16
            }
        };
        let key = page_key(platform, id);
        if let Some(p) = self.find(key, platform, id) {
            return Ok((p, key));
        }
        if self.live >= self.max_pages as usize {
            return Err(PageRejected::Pages);
        }
        let p = self.add(Ident { id: CompactString::new(id), platform });
        Ok((p, key))
    }

    /// Adds a page that is not there, reusing a freed number if there is
    /// one; returns its number.
    fn add(&mut self, ident: Ident) -> u32 {
        let Some(p) = self.free.pop() else {
            return self.append(ident);
        };
        let key = page_key(ident.platform, &ident.id);
        *self.idents.get_mut(p as usize) = ident;
        *self.states.get_mut(p as usize) = PageState::default();
        *self.names.get_mut(p as usize) = None;
        *self.tops.get_mut(p as usize) = TopRef::default();
        self.index_page(key, p);
        p
    }

    /// Adds a page that is not there under the next new number.
    fn append(&mut self, ident: Ident) -> u32 {
        let key = page_key(ident.platform, &ident.id);
        self.states.push(PageState::default());
        self.names.push(None);
        self.tops.push(TopRef::default());
        let p = self.idents.push(ident) as u32;
        self.index_page(key, p);
        p
    }

    fn index_page(&mut self, key: u64, p: u32) {
        self.strings += heap_len(&self.idents.get(p as usize).id);
        let Self { index, idents, .. } = self;
        index.insert(key, p, |q| {
            let i = idents.get(q as usize);
            page_key(i.platform, &i.id)
        });
        self.live += 1;
    }

    /// Frees page `p`: its number is reused by the next new page.
    pub(super) fn free(&mut self, p: u32) {
        let key = self.key(p);
        let dropped = heap_len(&self.ident(p).id) + self.name(p).map_or(0, name_bytes);
        self.strings = self.strings.saturating_sub(dropped);
        // The state is reset when the number is reused.
        self.split -= usize::from(self.state(p).split);
        self.index.remove(key, p);
        let ident = self.idents.get_mut(p as usize);
        ident.platform = FREE;
        ident.id = CompactString::default();
        *self.names.get_mut(p as usize) = None;
        let list = std::mem::take(self.tops.get_mut(p as usize));
        self.top_blocks.release(list);
        self.free.push(p);
        self.live -= 1;
    }

    /// Whether `p` is a page in use.
    pub fn is_live(&self, p: u32) -> bool {
        (p as usize) < self.idents.len() && self.ident(p).platform != FREE
    }

    /// Restores page number `p` (the next one) from a checkpoint; false
    /// when the same page is already there.
    pub(super) fn restore(&mut self, p: u32, ident: Ident) -> bool {
        debug_assert_eq!(p as usize, self.idents.len());
        if self.find(page_key(ident.platform, &ident.id), ident.platform, &ident.id).is_some() {
            return false;
        }
        self.append(ident) == p
    }

    /// Makes page (platform, id) live under number `p`, as another engine
    /// numbered it (an increment: remembered event ids are keyed by page
    /// number). False when `p` holds another page, the page is live under
    /// another number, or a bound is reached.
    pub(super) fn intern_at(&mut self, p: u32, platform: &str, id: &str) -> bool {
        let platform = match self.platform(platform) {
            Some(n) => n,
            None if self.platforms.len() >= self.max_platforms => return false,
            None => {
                self.platforms.push(Arc::from(platform));
                (self.platforms.len() - 1) as u16
            }
        };
        if self.is_live(p) {
            let i = self.ident(p);
            return i.platform == platform && i.id == id;
        }
        if self.find(page_key(platform, id), platform, id).is_some()
            || self.live >= self.max_pages as usize
            || p >= super::posts::MAX_PAGES
        {
            return false;
        }
        while (self.idents.len() as u32) < p {
            self.restore_free(self.idents.len() as u32);
        }
        if (p as usize) < self.idents.len() {
            self.free.retain(|f| *f != p);
            self.free.push(p);
        }
        let ident = Ident { id: CompactString::new(id), platform };
        if p as usize == self.idents.len() {
            self.append(ident);
        } else {
            self.add(ident);
        }
        true
    }

    /// Sets page `p`'s partition and split flag (from a checkpoint or an
    /// increment).
    pub(super) fn set_partition(&mut self, p: u32, partition: u16, split: bool) {
        let state = self.state_mut(p);
        let was = state.split;
        (state.partition, state.split) = (partition, split);
        self.split = self.split + usize::from(split) - usize::from(was);
    }

    /// Restores page number `p` (the next one) as free.
    pub(super) fn restore_free(&mut self, p: u32) {
        debug_assert_eq!(p as usize, self.idents.len());
        self.idents.push(Ident { id: CompactString::default(), platform: FREE });
        self.states.push(PageState::default());
        self.names.push(None);
        self.tops.push(TopRef::default());
        self.free.push(p);
    }

    /// Restores a page's top list; a list longer than the configured
    /// maximum keeps its posts with the most interactions.
    pub(super) fn restore_top(&mut self, p: u32, quarter: Quarter, posts: Vec<OwnedTopPost>) {
        let old = std::mem::take(self.tops.get_mut(p as usize));
        self.top_blocks.release(old);
        *self.tops.get_mut(p as usize) = self.create_top(posts);
        self.summarize_top(p, quarter);
    }

    /// Writes page `p`'s top list summary (quarter, fullness, minimum) into
    /// its state.
    fn summarize_top(&mut self, p: u32, quarter: Quarter) {
        let list = *self.tops.get(p as usize);
        let posts = self.top_blocks.get(list);
        let min = posts.iter().map(|t| t.interactions).min().unwrap_or(0);
        let full = posts.len() >= self.top_blocks.max();
        let state = self.state_mut(p);
        (state.top_quarter, state.top_full, state.top_min) = (quarter.index(), full, min);
    }

    pub fn name(&self, p: u32) -> Option<&Named> {
        self.names.get(p as usize).as_deref()
    }

    pub fn observe_name(&mut self, p: u32, at: Millis, name: &str) {
        let newer = self.name(p).is_none_or(|n| (at, name) > (n.at, &*n.name));
        if newer {
            let old = self.name(p).map_or(0, name_bytes);
            let named = Named { at, name: name.into() };
            self.strings = (self.strings + name_bytes(&named)).saturating_sub(old);
            *self.names.get_mut(p as usize) = Some(Arc::new(named));
        }
    }

    pub fn top(&self, p: u32) -> Option<TopList<'_>> {
        top_list(self.state(p), *self.tops.get(p as usize), self.top_blocks.blocks())
    }

    /// Records a post's interactions for the top list of quarter `q`: the
    /// page's live list, of the latest quarter a post was noted for. A post
    /// of an earlier quarter is the caller's, for that quarter's kept list
    /// ([`Noted::Earlier`]); a post of a later one starts a new live list,
    /// and the one it replaces is handed out ([`Noted::Began`]).
    pub fn note_top_post(&mut self, p: u32, q: Quarter, post: &TopCandidate<'_>) -> Noted {
        let state = self.state(p);
        if self.top_blocks.max() == 0 {
            return Noted::Live(TopChange::None);
        }
        if state.top_quarter > q.index() {
            return Noted::Earlier;
        }
        // A listed post's recorded count is its previous count, never below
        // the list's minimum; with a full list and no gain past the minimum
        // there is nothing to do (the common case: no read of the list).
        let min = state.top_min;
        if state.top_quarter == q.index()
            && state.top_full
            && post.old.is_none_or(|o| o < min)
            && post.interactions <= min
        {
            return Noted::Live(TopChange::None);
        }
        let mut list = *self.tops.get(p as usize);
        let mut began = None;
        if state.top_quarter < q.index() {
            // A later quarter: its list starts with this post.
            let old = std::mem::take(&mut list);
            began = (!old.is_empty()).then(|| (old, Quarter::from_index(state.top_quarter)));
        }
        let (list, change) = self.offer(list, post);
        *self.tops.get_mut(p as usize) = list;
        if change != TopChange::None {
            self.summarize_top(p, q);
        }
        match began {
            Some((old, quarter)) => Noted::Began { old, quarter },
            None => Noted::Live(change),
        }
    }

    /// The top-list rule, for any list: a listed post takes its new count;
    /// otherwise it is appended while the list is short, or replaces the
    /// first post with the fewest interactions when it has more. Returns
    /// the list (moved when it grew) and what changed.
    pub(super) fn offer(&mut self, list: TopRef, post: &TopCandidate<'_>) -> (TopRef, TopChange) {
        let posts = self.top_blocks.get(list);
        let listed = posts.iter().position(|t| t.hash == post.hash);
        let lowest = || posts.iter().enumerate().min_by_key(|(_, t)| t.interactions).map(|(i, _)| i);
        match listed {
            Some(i) => {
                self.top_blocks.set_interactions(list, i, post.interactions);
                (list, TopChange::Counts)
            }
            None if list.len() >= self.top_blocks.max() => match lowest() {
                Some(i) if post.interactions > posts[i].interactions => {
                    self.top_blocks.set(list, i, post.hash, post.interactions, post.id);
                    (list, TopChange::Members)
                }
                _ => (list, TopChange::None),
            },
            None => (self.top_blocks.push(list, post.hash, post.interactions, post.id), TopChange::Members),
        }
    }

    /// List `list` of quarter `q`, read from these blocks.
    pub(super) fn list(&self, q: Quarter, list: TopRef) -> TopList<'_> {
        TopList::new(q, list, self.top_blocks.blocks())
    }

    /// Frees a list taken out of a page (a kept quarter's, when the
    /// quarter goes).
    pub(super) fn release_top(&mut self, list: TopRef) {
        self.top_blocks.release(list);
    }

    /// A list of `posts` (a kept quarter's, restored).
    pub(super) fn create_top(&mut self, mut posts: Vec<OwnedTopPost>) -> TopRef {
        if posts.len() > self.top_blocks.max() {
            posts.sort_by(|a, b| b.interactions.cmp(&a.interactions).then_with(|| a.hash.cmp(&b.hash)));
        }
        self.top_blocks.create(&posts)
    }

    /// Sets the interactions of listed posts (by hash) of page `p`'s top
    /// list of quarter `q`; false when the list is of another quarter or
    /// lacks one of them.
    pub(super) fn restore_top_counts(&mut self, p: u32, q: Quarter, counts: &[(u64, u64)]) -> bool {
        if self.state(p).top_quarter != q.index() {
            return false;
        }
        let list = *self.tops.get(p as usize);
        for &(hash, interactions) in counts {
            let Some(i) = self.top_blocks.get(list).iter().position(|t| t.hash == hash) else { return false };
            self.top_blocks.set_interactions(list, i, interactions);
        }
        self.summarize_top(p, q);
        true
    }

    pub fn heap_bytes(&self) -> usize {
        self.idents.heap_bytes()
            + self.states.heap_bytes()
            + self.names.heap_bytes()
            + self.tops.heap_bytes()
            + self.top_blocks.heap_bytes()
            + self.index.heap_bytes()
            + self.strings
            + self.free.capacity() * 4
    }
}

fn heap_len(s: &CompactString) -> usize {
    if s.is_heap_allocated() { s.len() } else { 0 }
}

fn name_bytes(n: &Named) -> usize {
    16 + size_of::<Named>() + n.name.len()
}

/// The top list a page state and its column entry describe.
pub(super) fn top_list<'a>(state: &PageState, list: TopRef, blocks: &'a TopBlocks) -> Option<TopList<'a>> {
    (!list.is_empty()).then(|| TopList::new(Quarter::from_index(state.top_quarter), list, blocks))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// The top-list rule, written plainly: a listed post takes its new
    /// count; otherwise it is appended while the list is short, or replaces
    /// the first post with the fewest interactions when it has more.
    #[derive(Clone, Default)]
    struct Model {
        lists: HashMap<u32, (i32, Vec<(u64, u64)>)>,
    }

    impl Model {
        fn note(&mut self, p: u32, q: i32, hash: u64, interactions: u64, max: usize) {
            if max == 0 {
                return;
            }
            let (quarter, list) = self.lists.entry(p).or_insert((i32::MIN, Vec::new()));
            if *quarter > q {
                return;
            }
            if *quarter < q {
                (*quarter, *list) = (q, Vec::new());
            }
            if let Some(t) = list.iter_mut().find(|t| t.0 == hash) {
                t.1 = interactions;
            } else if list.len() < max {
                list.push((hash, interactions));
            } else if let Some(low) = list.iter_mut().min_by_key(|t| t.1) {
                if interactions > low.1 {
                    *low = (hash, interactions);
                }
            }
        }
    }

    fn lists(pages: &Pages, n: u32) -> HashMap<u32, (i32, Vec<(u64, u64)>)> {
        (0..n)
            .filter_map(|p| {
                let t = pages.top(p)?;
                Some((p, (t.quarter.index(), t.posts().map(|t| (t.hash, t.interactions)).collect())))
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Step {
        Note { page: u32, quarter: i32, post: u64, interactions: u64 },
        Snapshot,
        Free { page: u32 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            // A post belongs to one quarter (that of its publication).
            20 => (0..4u32, 0..24u64, 0..40u64)
                .prop_map(|(page, post, interactions)| Step::Note { page, quarter: (post / 8) as i32, post, interactions }),
            1 => Just(Step::Snapshot),
            1 => (0..4u32).prop_map(|page| Step::Free { page }),
        ]
    }

    proptest! {
        /// The stored lists follow the plain rule, with the summary's
        /// shortcut and the blocks' moves, and every snapshot keeps the
        /// lists it was taken with.
        #[test]
        fn top_lists_follow_the_plain_rule(max in 0..6usize, steps in proptest::collection::vec(step(), 1..300)) {
            let mut pages = Pages::new(100, 4, max);
            for p in 0..4u32 {
                prop_assert_eq!(pages.intern("fb", &format!("page{p}")).unwrap().0, p);
            }
            let (mut model, mut counts) = (Model::default(), HashMap::<(u32, u64), u64>::new());
            let mut snapshots = Vec::new();
            for s in steps {
                match s {
                    Step::Note { page, quarter, post, interactions } => {
                        let id = format!("post-{post}-with-an-id-longer-than-inline");
                        let old = counts.insert((page, post), interactions);
                        let candidate = TopCandidate { hash: post, id: &id, old, interactions };
                        if let Noted::Began { old, .. } = pages.note_top_post(page, Quarter::from_index(quarter), &candidate) {
                            pages.release_top(old);
                        }
                        model.note(page, quarter, post, interactions, max);
                        let listed = pages.top(page).and_then(|t| t.posts().find(|t| t.hash == post).map(|t| t.id.to_owned()));
                        if let Some(listed) = listed {
                            prop_assert_eq!(listed, id);
                        }
                    }
                    Step::Snapshot => snapshots.push((pages.clone(), model.clone())),
                    Step::Free { page } => {
                        pages.free(page);
                        prop_assert_eq!(pages.intern("fb", &format!("page{page}")).unwrap().0, page);
                        model.lists.remove(&page);
                        counts.retain(|(p, _), _| *p != page);
                    }
                }
                prop_assert_eq!(lists(&pages, 4), model.lists.clone());
            }
            for (snapshot, then) in &snapshots {
                prop_assert_eq!(lists(snapshot, 4), then.lists.clone());
            }
        }
    }
}
