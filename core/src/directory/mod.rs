//! The page directory (docs/directory.md): which groups each page belongs
//! to — `category:government`, `country:EG`, `list:g20-gov` — and an
//! optional display name, as read from a compacted topic or a JSON Lines
//! file. Rankings within a group keep only the pages in it.
//!
//! The directory is keyed by (platform, page_id), not by an engine's page
//! number: it applies to pages before their first event, and the same
//! directory serves one engine's view and shard mode's global table.
//!
//! Memory: a group is a (dimension, value) pair interned once as a
//! [`GroupId`]; a page holds the ids of its groups inline, 16 bytes for up
//! to four groups (more spill to a side table), beside its key and name.
//! A ranking within a group finds the group's pages by one pass over the
//! directory (no per-group member lists to keep in step).
//!
//! Bounds (each refusal counted by its [`Refused`] reason): a record of at
//! most [`MAX_RECORD_BYTES`]; at most `max_groups_per_page` groups per page,
//! `max_values` distinct groups and `max_pages` pages.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

mod record;
#[cfg(test)]
mod tests;

pub use record::{MAX_DIMENSION_BYTES, MAX_RECORD_BYTES, MAX_VALUE_BYTES, Parsed, Refused, parse_group};

/// One group, interned: an index into the directory's group names. Below
/// [`SPILLED`]: `max_values` is at most 10,000,000.
pub type GroupId = u32;

/// Groups of a page held inline: ids, then [`NONE`]s.
const INLINE: usize = 4;
const NONE: u32 = u32::MAX;
/// In a page's first slot: the rest of `0` is an index into the spilled lists.
const SPILLED: u32 = 1 << 31;

type Map<K, V> = HashMap<K, V, Xxh3DefaultBuilder>;

/// The bounds of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryLimits {
    pub max_groups_per_page: usize,
    pub max_values: usize,
    pub max_pages: usize,
}

impl Default for DirectoryLimits {
    fn default() -> DirectoryLimits {
        DirectoryLimits { max_groups_per_page: 32, max_values: 100_000, max_pages: 1_000_000 }
    }
}

/// What a page holds: its groups (up to [`INLINE`] ids, or a spilled
/// list's index) and the name the directory gives it.
#[derive(Debug, Clone)]
struct Entry {
    groups: [u32; INLINE],
    name: Option<Box<str>>,
}

/// An interned group: `dimension:value`, and the pages in it (0: free).
#[derive(Debug, Clone, Default)]
struct Group {
    name: Box<str>,
    pages: u32,
}

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The page's groups or name were set.
    Put,
    /// A tombstone removed the page (or it was not there).
    Removed,
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    limits: DirectoryLimits,
    /// platform → page_id → entry.
    pages: Map<CompactString, Map<CompactString, Entry>>,
    page_count: usize,
    groups: Vec<Group>,
    group_ids: Map<Box<str>, GroupId>,
    free_groups: Vec<GroupId>,
    /// Group lists of pages in more than [`INLINE`] groups.
    spilled: Vec<Box<[GroupId]>>,
    free_spilled: Vec<u32>,
}

impl Directory {
    pub fn new(limits: DirectoryLimits) -> Directory {
        Directory { limits, ..Directory::default() }
    }

    /// Pages in the directory.
    pub fn len(&self) -> usize {
        self.page_count
    }

    pub fn is_empty(&self) -> bool {
        self.page_count == 0
    }

    /// Applies one record: `key` is the message key (`platform/page_id`;
    /// `None` in a file, where the value names the page), `value` its JSON
    /// or `None` for a tombstone. A refused record changes nothing.
    pub fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Change, Refused> {
        let Some(value) = value else {
            let (platform, id) = record::split_key(key.ok_or(Refused::BadKey)?)?;
            self.remove(platform, id);
            return Ok(Change::Removed);
        };
        let parsed = record::parse(value, &self.limits)?;
        if let Some(key) = key {
            let (platform, id) = record::split_key(key)?;
            if (platform, id) != (&*parsed.platform, &*parsed.page_id) {
                return Err(Refused::KeyMismatch);
            }
        }
        self.put(&parsed)?;
        Ok(Change::Put)
    }

    /// Sets a page's groups and name, within the bounds.
    pub fn put(&mut self, r: &Parsed<'_>) -> Result<(), Refused> {
        let exists = self.entry(&r.platform, &r.page_id).is_some();
        if !exists && self.page_count >= self.limits.max_pages {
            return Err(Refused::DirectoryFull);
        }
        let mut fresh: Vec<&str> =
            r.groups.iter().map(String::as_str).filter(|g| !self.group_ids.contains_key(*g)).collect();
        fresh.sort_unstable();
        fresh.dedup();
        if self.group_ids.len() + fresh.len() > self.limits.max_values {
            return Err(Refused::TooManyValues);
        }
        let mut ids: Vec<GroupId> = r.groups.iter().map(|g| self.intern_group(g)).collect();
        ids.sort_unstable();
        ids.dedup();
        for g in &ids {
            self.groups[*g as usize].pages += 1;
        }
        let entry = Entry { groups: self.hold(ids), name: r.page_name.as_deref().map(Box::from) };
        if !self.pages.contains_key(&*r.platform) {
            self.pages.insert(CompactString::from(&*r.platform), Map::default());
        }
        let platform = self.pages.get_mut(&*r.platform).expect("inserted above");
        match platform.get_mut(&*r.page_id) {
            Some(e) => {
                let old = std::mem::replace(e, entry);
                self.release(old.groups);
            }
            None => {
                platform.insert(CompactString::from(&*r.page_id), entry);
                self.page_count += 1;
            }
        }
        Ok(())
    }

    /// Removes a page (a tombstone); nothing when it is not there.
    pub fn remove(&mut self, platform: &str, id: &str) {
        let Some(pages) = self.pages.get_mut(platform) else { return };
        let Some(e) = pages.remove(id) else { return };
        if pages.is_empty() {
            self.pages.remove(platform);
        }
        self.page_count -= 1;
        self.release(e.groups);
    }

    fn intern_group(&mut self, name: &str) -> GroupId {
        if let Some(id) = self.group_ids.get(name) {
            return *id;
        }
        let id = place(&mut self.groups, &mut self.free_groups, Group { name: name.into(), pages: 0 });
        self.group_ids.insert(name.into(), id);
        id
    }

    /// A page's slots for `ids` (sorted, distinct): inline, or spilled.
    fn hold(&mut self, ids: Vec<GroupId>) -> [u32; INLINE] {
        let mut slots = [NONE; INLINE];
        if ids.len() <= INLINE {
            slots[..ids.len()].copy_from_slice(&ids);
            return slots;
        }
        slots[0] = SPILLED | place(&mut self.spilled, &mut self.free_spilled, ids.into_boxed_slice());
        slots
    }

    /// A page's groups as held.
    fn ids<'a>(&'a self, slots: &'a [u32; INLINE]) -> &'a [GroupId] {
        if slots[0] != NONE && slots[0] & SPILLED != 0 {
            return &self.spilled[(slots[0] & !SPILLED) as usize];
        }
        let n = slots.iter().position(|s| *s == NONE).unwrap_or(INLINE);
        &slots[..n]
    }

    /// A page leaves its groups; a group no page is in is freed.
    fn release(&mut self, slots: [u32; INLINE]) {
        let ids: Vec<GroupId> = self.ids(&slots).to_vec();
        if slots[0] != NONE && slots[0] & SPILLED != 0 {
            let i = slots[0] & !SPILLED;
            self.spilled[i as usize] = Box::default();
            self.free_spilled.push(i);
        }
        for g in ids {
            let group = &mut self.groups[g as usize];
            group.pages -= 1;
            if group.pages == 0 {
                self.group_ids.remove(&group.name);
                group.name = Box::from("");
                self.free_groups.push(g);
            }
        }
    }

    fn entry(&self, platform: &str, id: &str) -> Option<&Entry> {
        self.pages.get(platform)?.get(id)
    }

    /// Distinct groups some page is in.
    pub fn group_count(&self) -> usize {
        self.group_ids.len()
    }

    /// The id of group `dimension:value`, if a page is in it.
    pub fn group(&self, name: &str) -> Option<GroupId> {
        self.group_ids.get(name).copied()
    }

    /// The pages in a group.
    pub fn group_pages(&self, id: GroupId) -> u32 {
        self.groups.get(id as usize).map_or(0, |g| g.pages)
    }

    /// Whether page (platform, id) is in every one of `groups`.
    pub fn has_all(&self, platform: &str, id: &str, groups: &[GroupId]) -> bool {
        self.entry(platform, id).is_some_and(|e| {
            let held = self.ids(&e.groups);
            groups.iter().all(|g| held.binary_search(g).is_ok())
        })
    }

    /// The pages in every one of `groups`, as (platform, page_id): one pass
    /// over the directory.
    pub fn pages_in<'a>(&'a self, groups: &'a [GroupId]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.pages.iter().flat_map(move |(p, ids)| {
            ids.iter()
                .filter(move |(_, e)| {
                    let held = self.ids(&e.groups);
                    groups.iter().all(|g| held.binary_search(g).is_ok())
                })
                .map(move |(id, _)| (p.as_str(), id.as_str()))
        })
    }

    /// A page's groups as `(dimension, value)`, in name order.
    pub fn groups_of(&self, platform: &str, id: &str) -> Vec<(&str, &str)> {
        let Some(e) = self.entry(platform, id) else { return Vec::new() };
        let mut groups: Vec<(&str, &str)> =
            self.ids(&e.groups).iter().filter_map(|g| split(&self.groups[*g as usize].name)).collect();
        groups.sort_unstable();
        groups
    }

    /// The name the directory gives a page, if any.
    pub fn name_of(&self, platform: &str, id: &str) -> Option<&str> {
        self.entry(platform, id)?.name.as_deref()
    }

    /// Every dimension with its values and each value's page count, in name order.
    pub fn listing(&self) -> BTreeMap<&str, Vec<(&str, u32)>> {
        let mut dims: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
        for g in self.groups.iter().filter(|g| g.pages > 0) {
            if let Some((dim, value)) = split(&g.name) {
                dims.entry(dim).or_default().push((value, g.pages));
            }
        }
        dims.values_mut().for_each(|v| v.sort_unstable());
        dims
    }

    /// Bytes of group membership per page: the inline slots, plus spilled
    /// lists (the interned group names are counted by [`Directory::heap_bytes`]).
    pub fn membership_bytes(&self) -> usize {
        self.page_count * INLINE * 4 + self.spilled_bytes()
    }

    fn spilled_bytes(&self) -> usize {
        self.spilled.iter().map(|l| l.len() * 4 + 16).sum()
    }

    /// Heap bytes held, estimated from capacities: page entries and keys,
    /// names, groups, spilled lists.
    pub fn heap_bytes(&self) -> usize {
        let entry = size_of::<(CompactString, Entry)>() + 1;
        let pages: usize = self.pages.values().map(|m| m.capacity() * entry).sum();
        let heap_keys: usize =
            self.pages.values().flat_map(|m| m.keys()).filter(|k| k.is_heap_allocated()).map(|k| k.len()).sum();
        let names: usize =
            self.pages.values().flat_map(|m| m.values()).filter_map(|e| e.name.as_ref()).map(|n| n.len()).sum();
        let groups: usize = self.groups.iter().map(|g| g.name.len() * 2 + size_of::<Group>() + 24).sum();
        pages + heap_keys + names + groups + self.spilled_bytes()
    }
}

/// Puts `item` in a free slot of `slots` (or a new one); its index.
fn place<T>(slots: &mut Vec<T>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(i) => {
            slots[i as usize] = item;
            i
        }
        None => {
            slots.push(item);
            (slots.len() - 1) as u32
        }
    }
}

/// `dimension:value` as its two parts.
fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(':')
}
