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
//! [`GroupId`]; a page holds the id of its *set* of groups, interned too,
//! since pages share few distinct sets (a category and a country), so a
//! page's membership costs 4 bytes plus its share of the sets.
//!
//! Bounds (each refusal counted by its [`Refused`] reason): a record of at
//! most [`MAX_RECORD_BYTES`]; at most `max_groups_per_page` groups per page,
//! `max_values` distinct groups and `max_pages` pages.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;

mod record;
#[cfg(test)]
mod tests;

pub use record::{MAX_DIMENSION_BYTES, MAX_RECORD_BYTES, MAX_VALUE_BYTES, Parsed, Refused, parse_group};

/// One group, interned: an index into the directory's group names.
pub type GroupId = u32;

/// A page's set of groups, interned.
type SetId = u32;

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

/// What a page holds.
#[derive(Debug, Clone)]
struct Entry {
    set: SetId,
    name: Option<Box<str>>,
}

/// An interned group: `dimension:value`, and the pages in it (0: free).
#[derive(Debug, Clone, Default)]
struct Group {
    name: Box<str>,
    pages: u32,
}

/// An interned set of groups (sorted ids) and the pages that hold it.
#[derive(Debug, Clone, Default)]
struct Set {
    groups: Box<[GroupId]>,
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
    pages: HashMap<CompactString, HashMap<CompactString, Entry>>,
    page_count: usize,
    groups: Vec<Group>,
    group_ids: HashMap<Box<str>, GroupId>,
    free_groups: Vec<GroupId>,
    sets: Vec<Set>,
    set_ids: HashMap<Box<[GroupId]>, SetId>,
    free_sets: Vec<SetId>,
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
        let set = self.intern_set(ids);
        let name = r.page_name.as_deref().map(Box::from);
        if !self.pages.contains_key(&*r.platform) {
            self.pages.insert(CompactString::from(&*r.platform), HashMap::new());
        }
        let platform = self.pages.get_mut(&*r.platform).expect("inserted above");
        match platform.get_mut(&*r.page_id) {
            Some(e) => {
                let old = std::mem::replace(e, Entry { set, name });
                self.release_set(old.set);
            }
            None => {
                platform.insert(CompactString::from(&*r.page_id), Entry { set, name });
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
        self.release_set(e.set);
    }

    fn intern_group(&mut self, name: &str) -> GroupId {
        if let Some(id) = self.group_ids.get(name) {
            return *id;
        }
        let group = Group { name: name.into(), pages: 0 };
        let id = match self.free_groups.pop() {
            Some(id) => {
                self.groups[id as usize] = group;
                id
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1) as GroupId
            }
        };
        self.group_ids.insert(name.into(), id);
        id
    }

    /// The set of `groups` (sorted, distinct), its holders counted one more.
    fn intern_set(&mut self, groups: Vec<GroupId>) -> SetId {
        let id = match self.set_ids.get(groups.as_slice()) {
            Some(id) => *id,
            None => {
                let set = Set { groups: groups.clone().into(), pages: 0 };
                let id = match self.free_sets.pop() {
                    Some(id) => {
                        self.sets[id as usize] = set;
                        id
                    }
                    None => {
                        self.sets.push(set);
                        (self.sets.len() - 1) as SetId
                    }
                };
                self.set_ids.insert(groups.into(), id);
                id
            }
        };
        self.sets[id as usize].pages += 1;
        for g in self.sets[id as usize].groups.iter() {
            self.groups[*g as usize].pages += 1;
        }
        id
    }

    /// One holder fewer of `set`; a set or group no page holds is freed.
    fn release_set(&mut self, id: SetId) {
        let set = &mut self.sets[id as usize];
        set.pages -= 1;
        let freed = set.pages == 0;
        let groups = std::mem::take(&mut set.groups);
        for g in groups.iter() {
            let group = &mut self.groups[*g as usize];
            group.pages -= 1;
            if group.pages == 0 {
                self.group_ids.remove(&group.name);
                group.name = Box::from("");
                self.free_groups.push(*g);
            }
        }
        if freed {
            self.set_ids.remove(&groups);
            self.free_sets.push(id);
        } else {
            self.sets[id as usize].groups = groups;
        }
    }

    fn entry(&self, platform: &str, id: &str) -> Option<&Entry> {
        self.pages.get(platform)?.get(id)
    }

    /// The id of group `dimension:value`, if a page is in it.
    pub fn group(&self, name: &str) -> Option<GroupId> {
        self.group_ids.get(name).copied()
    }

    /// The set a page holds (`None`: not in the directory).
    pub fn set_of(&self, platform: &str, id: &str) -> Option<u32> {
        self.entry(platform, id).map(|e| e.set)
    }

    /// Set ids are below this.
    pub fn set_slots(&self) -> u32 {
        self.sets.len() as u32
    }

    /// Whether set `set` holds every group of `groups`.
    pub fn set_has_all(&self, set: u32, groups: &[GroupId]) -> bool {
        let held = &self.sets[set as usize].groups;
        groups.iter().all(|g| held.binary_search(g).is_ok())
    }

    /// Every page with its set: `(platform, page_id, set)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        self.pages.iter().flat_map(|(p, ids)| ids.iter().map(move |(id, e)| (p.as_str(), id.as_str(), e.set)))
    }

    /// A page's groups as `(dimension, value)`, in name order.
    pub fn groups_of(&self, platform: &str, id: &str) -> Vec<(&str, &str)> {
        let Some(e) = self.entry(platform, id) else { return Vec::new() };
        let mut groups: Vec<(&str, &str)> =
            self.sets[e.set as usize].groups.iter().filter_map(|g| split(&self.groups[*g as usize].name)).collect();
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

    /// Whether some page has a group in dimension `dim`.
    pub fn has_dimension(&self, dim: &str) -> bool {
        self.groups.iter().any(|g| g.pages > 0 && split(&g.name).is_some_and(|(d, _)| d == dim))
    }

    /// Heap bytes held (an estimate from capacities), for the benches and
    /// the size gauge.
    pub fn heap_bytes(&self) -> usize {
        let entry = size_of::<(CompactString, Entry)>() + 1;
        let pages: usize = self.pages.values().map(|m| m.capacity() * entry).sum();
        let names: usize =
            self.pages.values().flat_map(|m| m.values()).filter_map(|e| e.name.as_ref()).map(|n| n.len()).sum();
        let groups: usize = self.groups.iter().map(|g| g.name.len() * 2 + size_of::<Group>() + 32).sum();
        let sets: usize = self.sets.iter().map(|s| s.groups.len() * 8 + size_of::<Set>() + 32).sum();
        pages + names + groups + sets
    }

    /// Bytes of membership per page: the set id each page holds plus the
    /// interned sets and groups, shared.
    pub fn membership_bytes(&self) -> usize {
        let groups: usize = self.groups.iter().map(|g| g.name.len() * 2 + size_of::<Group>() + 32).sum();
        let sets: usize = self.sets.iter().map(|s| s.groups.len() * 8 + size_of::<Set>() + 32).sum();
        self.page_count * size_of::<SetId>() + groups + sets
    }
}

/// `dimension:value` as its two parts.
fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(':')
}
