//! The engine's part of a checkpoint: written from a [`Snapshot`] (so on
//! another thread, while the engine goes on), read back into an engine.
//!
//! Layout (little-endian, lengths as u64, strings as u32 length + bytes):
//! watermark; the windows specification (retention per calendar kind,
//! rolling durations); platforms; pages by number (platform, id, follower
//! sample, name, top list; a freed number has platform 0xffff); period
//! tables (kind, period, slots); per rolling duration its two edges; posts
//! by publication day as raw 32-byte records (a record with large counts is
//! followed by them); the remembered event ids per quarter; per input
//! partition, the watermark guard (its watermark, events past a jump and
//! within since); the history gaps (partition, horizon); each page's
//! figures per day by quarter (see [`series`](super::series)). Version 5
//! added each page's partition and split flag after its identity, and the
//! gaps; version 6 the figures per day (rebuilt from the posts when an
//! older checkpoint is read); version 7 the top lists kept for earlier
//! quarters (per list: its slot in its quarter's table, the quarter, the
//! posts; none when an older checkpoint is read).
//!
//! A checkpoint written under another windows specification is refused
//! with [`DecodeError::Windows`]: its tables are not those the
//! configuration asks for, and the shell replays instead.
//!
//! Reading trusts no count: every length is checked against its bound, and
//! nothing is allocated ahead of the bytes actually read, so a damaged or
//! hostile body fails with an error and bounded memory.

use std::io::{self, Read, Write};
use std::sync::Arc;

use compact_str::CompactString;

use super::column::CHUNK;
use super::gaps::{Gap, Gaps};
use super::jump::{Guard, Guards};
use super::pages::Ident;
use super::periods::{PeriodTable, Sample, Slot, Totals};
use super::posts::Rec;
use super::rolling::{Edge, quarter_of};
use super::snapshot::Snapshot;
use super::tops::{ID_MAX, OwnedTopPost, TOP_MAX};
use super::{DAY_MS, Engine, Limits};
use crate::codec::{DecodeError, Reader, Writer};
use crate::window::{CalendarKind, CalendarPeriod, Millis, Quarter, Windows};

/// Format version of the engine state in a checkpoint.
pub const STATE_VERSION: u32 = 7;
/// The oldest version this build reads: 4 lacks each page's partition and
/// the history gaps (read as unknown and none).
pub const OLDEST_STATE_VERSION: u32 = 4;
const FREE: u16 = u16::MAX;

fn write_sample<W: Write>(w: &mut Writer<W>, s: Sample) -> io::Result<()> {
    w.i64(s.at)?;
    w.u64(s.value)
}

fn read_sample<R: Read>(r: &mut Reader<R>) -> Result<Sample, DecodeError> {
    Ok(Sample { at: r.i64()?, value: r.u64()? })
}

fn write_totals<W: Write>(w: &mut Writer<W>, t: &Totals) -> io::Result<()> {
    for v in [t.reactions, t.comments, t.shares, t.views, t.posts] {
        w.u64(v)?;
    }
    Ok(())
}

fn read_totals<R: Read>(r: &mut Reader<R>) -> Result<Totals, DecodeError> {
    Ok(Totals { reactions: r.u64()?, comments: r.u64()?, shares: r.u64()?, views: r.u64()?, posts: r.u64()? })
}

impl Snapshot {
    /// Writes the engine state. A snapshot taken for a view (without posts)
    /// cannot be written: that is a bug, reported as an error.
    pub fn encode<W: Write>(&self, out: W) -> io::Result<()> {
        let durable = self.durable.as_ref().ok_or_else(|| io::Error::other("not a durable snapshot"))?;
        let mut w = Writer(out);
        match self.watermark {
            None => w.u8(0)?,
            Some(wm) => {
                w.u8(1)?;
                w.i64(wm)?;
            }
        }
        write_windows(&mut w, &self.limits.windows)?;
        w.len(self.platforms.len())?;
        for p in &self.platforms {
            w.str(p)?;
        }
        self.encode_pages(&mut w)?;
        self.encode_periods(&mut w)?;
        self.encode_edges(&mut w)?;
        encode_posts(&mut w, durable)?;
        w.len(durable.event_ids.len())?;
        for (q, log) in &durable.event_ids {
            w.i32(q.index())?;
            w.len(log.len())?;
            for k in log.iter() {
                w.u64(*k)?;
            }
        }
        write_guards(&mut w, &self.guards)?;
        write_gaps(&mut w, &self.gaps)?;
        self.series.write(&mut w)?;
        self.encode_kept_tops(&mut w)
    }

    /// The kept top lists of earlier quarters (format 7): per list its
    /// quarter, its slot in that quarter's table, and its posts.
    fn encode_kept_tops<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        let kept: Vec<(&PeriodTable, usize)> = self
            .tables()
            .iter()
            .filter(|t| t.period.kind == CalendarKind::Quarter)
            .flat_map(|t| (0..t.tops.len()).filter(|i| !t.top(*i).is_empty()).map(move |i| (t, i)))
            .collect();
        w.len(kept.len())?;
        for (t, i) in kept {
            w.len(i)?;
            write_top(w, self.list(Quarter::from_index(t.period.index), t.top(i)))?;
        }
        Ok(())
    }

    fn encode_pages<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.len(self.page_bound() as usize)?;
        for p in 0..self.page_bound() {
            let ident = self.ident(p);
            w.u16(ident.platform)?;
            if ident.platform == FREE {
                continue;
            }
            w.str(&ident.id)?;
            let state = self.state(p);
            w.u16(state.partition().map_or(u16::MAX, |p| p as u16))?;
            w.u8(u8::from(state.split()))?;
            write_sample(w, self.followers(p).unwrap_or(Sample::NONE))?;
            match self.name(p) {
                None => w.u8(0)?,
                Some(n) => {
                    w.u8(1)?;
                    w.i64(n.at)?;
                    w.str(&n.name)?;
                }
            }
            match self.top(p) {
                None => w.u8(0)?,
                Some(t) => {
                    w.u8(1)?;
                    write_top(w, t)?;
                }
            }
        }
        Ok(())
    }

    fn encode_periods<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        let tables = self.tables();
        w.len(tables.len())?;
        for t in tables {
            w.u8(t.period.kind as u8)?;
            w.i32(t.period.index)?;
            w.len(t.slots.len())?;
            for slot in t.slots.iter() {
                w.u32(slot.page)?;
                write_totals(w, &slot.totals())?;
                write_sample(w, slot.followers)?;
            }
        }
        Ok(())
    }

    fn encode_edges<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.len(self.edges.len())?;
        for e in self.edges.iter().flatten() {
            w.i64(e.at)?;
            w.i32(e.quarter.index)?;
            let left = e.left();
            w.len(left.len())?;
            for t in left.iter() {
                write_totals(w, t)?;
            }
        }
        Ok(())
    }
}

fn encode_posts<W: Write>(w: &mut Writer<W>, d: &super::snapshot::Durable) -> io::Result<()> {
    w.len(d.arena.days.len())?;
    let mut buf = [0u8; 32];
    for (day, chunks) in &d.arena.days {
        w.i32(*day)?;
        let records: usize = chunks.iter().map(|c| d.arena.chunks.get(*c as usize).map_or(0, |ch| ch.0.len())).sum();
        w.len(records)?;
        for &c in chunks {
            let Some(chunk) = d.arena.chunks.get(c as usize) else { continue };
            for (i, rec) in chunk.0.iter().enumerate() {
                for (bytes, word) in buf.chunks_exact_mut(8).zip(rec.0) {
                    bytes.copy_from_slice(&word.to_le_bytes());
                }
                w.bytes(&buf)?;
                if rec.0[1] >> 63 == 1 {
                    let slot = c * CHUNK as u32 + i as u32;
                    let counts = d.big.get(&slot).copied().unwrap_or_default();
                    for v in [counts.reactions, counts.comments, counts.shares, counts.views] {
                        w.u64(v)?;
                    }
                }
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Reads what [`Snapshot::encode`] wrote into an engine with `limits`.
    pub fn decode<R: Read>(input: R, limits: Limits) -> Result<Engine, DecodeError> {
        Engine::decode_version(input, limits, STATE_VERSION)
    }

    /// [`decode`](Self::decode) of a body written in format `version`
    /// ([`OLDEST_STATE_VERSION`] to [`STATE_VERSION`]).
    pub fn decode_version<R: Read>(input: R, limits: Limits, version: u32) -> Result<Engine, DecodeError> {
        if !(OLDEST_STATE_VERSION..=STATE_VERSION).contains(&version) {
            return Err(DecodeError::Range("state format version"));
        }
        limits.validate().map_err(DecodeError::Range)?;
        let mut r = Reader(input);
        let mut engine = Engine::new(limits);
        let watermark = match r.u8()? {
            0 => None,
            1 => Some(r.i64()?),
            _ => return Err(DecodeError::Range("watermark flag")),
        };
        let stored = read_windows(&mut r)?;
        if stored != limits.windows {
            let configured = limits.windows.describe_fully();
            return Err(DecodeError::Windows { stored: stored.describe_fully(), configured });
        }
        for _ in 0..r.len(limits.max_platforms as usize, "platform count")? {
            engine.pages.platforms.push(Arc::from(r.str(32, "platform")?));
        }
        engine.decode_pages(&mut r, version)?;
        if let Some(wm) = watermark {
            engine.watermark = Some(wm);
            engine.next_day = (wm.div_euclid(DAY_MS) + 1) * DAY_MS;
            engine.cutoff = limits.windows.cutoff(wm);
            engine.periods.iter_mut().for_each(|k| k.restore_current(wm));
        }
        engine.decode_periods(&mut r)?;
        let edges = decode_edges(&mut r, limits.windows.rolling().len())?;
        if edges.len() != if watermark.is_some() { limits.windows.rolling().len() } else { 0 } {
            return Err(DecodeError::Range("edge count"));
        }
        engine.edges = edges;
        engine.decode_posts(&mut r)?;
        engine.decode_event_ids(&mut r)?;
        engine.guards = read_guards(&mut r)?;
        if version >= 5 {
            engine.gaps = read_gaps(&mut r)?;
        }
        if version >= 6 {
            let quarters = &engine.periods[0];
            let slots = |q| quarters.table(q).map(|t| t.slots.len());
            engine.series.read(&mut r, slots, limits.max_posts as usize)?;
        } else {
            rebuild_series(&engine.posts, &engine.periods[0], &mut engine.series);
        }
        if version >= 7 {
            engine.decode_kept_tops(&mut r)?;
        }
        Ok(engine)
    }

    /// Reads what [`Snapshot::encode_kept_tops`] wrote.
    fn decode_kept_tops<R: Read>(&mut self, r: &mut Reader<R>) -> Result<(), DecodeError> {
        let most = super::posts::MAX_PAGES as usize * self.periods[0].ring.len();
        for _ in 0..r.len(most, "kept top lists")? {
            let slot = r.len(super::posts::MAX_PAGES as usize, "kept top list slot")?;
            let (quarter, posts) = decode_top(r)?;
            self.restore_kept_top(quarter, slot, posts)?;
        }
        Ok(())
    }

    /// Keeps `posts` as the top list of slot `slot` of `quarter`'s table;
    /// nothing when this engine holds no such table or slot (a quarter
    /// out of its retention).
    pub(super) fn restore_kept_top(
        &mut self,
        quarter: Quarter,
        slot: usize,
        posts: Vec<OwnedTopPost>,
    ) -> Result<(), DecodeError> {
        if posts.is_empty() {
            return Err(DecodeError::Range("an empty kept top list"));
        }
        let q = CalendarPeriod { kind: CalendarKind::Quarter, index: quarter.index() };
        let Some(table) = self.periods[0].table_for(q).filter(|t| slot < t.slots.len()) else { return Ok(()) };
        let list = self.pages.create_top(posts);
        let replaced = table.set_top(slot, list);
        self.pages.release_top(replaced);
        Ok(())
    }

    fn decode_pages<R: Read>(&mut self, r: &mut Reader<R>, version: u32) -> Result<(), DecodeError> {
        let bound = r.len(super::posts::MAX_PAGES as usize, "page count")?;
        for p in 0..bound {
            let platform = r.u16()?;
            if platform == FREE {
                self.pages.restore_free(p as u32);
                continue;
            }
            if usize::from(platform) >= self.pages.platforms.len() {
                return Err(DecodeError::Range("page platform"));
            }
            let id = CompactString::from(r.str(128, "page id")?);
            if self.pages.len() >= self.limits.max_pages as usize {
                return Err(DecodeError::Range("more pages than engine.max_pages"));
            }
            let partition = if version >= 5 { Some((r.u16()?, r.u8()?)) } else { None };
            let followers = read_sample(r)?;
            if !self.pages.restore(p as u32, Ident { id, platform }) {
                return Err(DecodeError::Range("page repeated"));
            }
            match partition {
                None => {}
                Some((partition, split @ (0 | 1))) => self.pages.set_partition(p as u32, partition, split == 1),
                Some(_) => return Err(DecodeError::Range("split flag")),
            }
            self.pages.state_mut(p as u32).followers = followers;
            match r.u8()? {
                0 => {}
                1 => {
                    let at = r.i64()?;
                    self.pages.observe_name(p as u32, at, &r.str(256, "page name")?);
                }
                _ => return Err(DecodeError::Range("page name flag")),
            }
            match r.u8()? {
                0 => {}
                1 => {
                    let (quarter, posts) = decode_top(r)?;
                    self.pages.restore_top(p as u32, quarter, posts);
                }
                _ => return Err(DecodeError::Range("top list flag")),
            }
        }
        Ok(())
    }

    fn decode_periods<R: Read>(&mut self, r: &mut Reader<R>) -> Result<(), DecodeError> {
        let most: usize = self.periods.iter().map(|k| k.ring.len()).sum();
        for _ in 0..r.len(most, "period table count")? {
            let kind = *CalendarKind::ALL.get(usize::from(r.u8()?)).ok_or(DecodeError::Range("period kind"))?;
            let period = CalendarPeriod { kind, index: r.i32()? };
            let k = self.periods.iter().position(|k| k.kind == kind).ok_or(DecodeError::Range("period kind"))?;
            if self.periods[k].oldest().is_none_or(|o| period < o)
                || self.periods[k].current().is_none_or(|c| period > c)
            {
                return Err(DecodeError::Range("period out of retention"));
            }
            let mut table = PeriodTable::new(period);
            for _ in 0..r.len(self.limits.max_pages as usize, "slot count")? {
                let page = r.u32()?;
                let mut slot = Slot::new(page);
                slot.set_totals(read_totals(r)?);
                slot.followers = read_sample(r)?;
                if !self.pages.is_live(page) || !table.restore(slot) {
                    return Err(DecodeError::Range("slot page"));
                }
                if k == 0 {
                    let state = self.pages.state_mut(page);
                    state.quarters = state.quarters.saturating_add(1);
                }
            }
            if !self.periods[k].restore_table(table) {
                return Err(DecodeError::Range("period repeated"));
            }
        }
        Ok(())
    }

    fn decode_posts<R: Read>(&mut self, r: &mut Reader<R>) -> Result<(), DecodeError> {
        let days = r.len(1 << 20, "post day count")?;
        let mut buf = [0u8; 32];
        let mut restored = 0usize;
        for _ in 0..days {
            let day = r.i32()?;
            let n = r.len(self.limits.max_posts as usize - restored, "post count")?;
            for _ in 0..n {
                r.bytes(&mut buf)?;
                let mut words = [0u64; 4];
                for (word, bytes) in words.iter_mut().zip(buf.chunks_exact(8)) {
                    *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                }
                let rec = Rec(words);
                let big = if words[1] >> 63 == 1 {
                    Some(crate::event::Counts {
                        reactions: r.u64()?,
                        comments: r.u64()?,
                        shares: r.u64()?,
                        views: r.u64()?,
                    })
                } else {
                    None
                };
                if !self.pages.is_live(rec.page_of()) {
                    return Err(DecodeError::Range("post page"));
                }
                self.posts.restore(day, rec, big).ok_or(DecodeError::Range("post record"))?;
            }
            restored += n;
        }
        let pages = &self.pages;
        self.posts.index_all(|p| super::posts::post_key(pages.key(p.page), p.hash)).map_err(DecodeError::Range)
    }

    fn decode_event_ids<R: Read>(&mut self, r: &mut Reader<R>) -> Result<(), DecodeError> {
        for _ in 0..r.len(self.periods[0].ring.len(), "event id quarters")? {
            let q = Quarter::from_index(r.i32()?);
            let n = r.len(self.limits.max_event_ids as usize, "event id count")?;
            for _ in 0..n {
                if !self.event_ids.restore(q, r.u64()?) {
                    return Err(DecodeError::Range("event id"));
                }
            }
        }
        Ok(())
    }
}

/// A top list: its quarter, then each post's hash, interactions and id.
pub(super) fn write_top<W: Write>(w: &mut Writer<W>, t: super::TopList<'_>) -> io::Result<()> {
    w.i32(t.quarter.index())?;
    w.len(t.len())?;
    for post in t.posts() {
        w.u64(post.hash)?;
        w.u64(post.interactions)?;
        w.str(post.id)?;
    }
    Ok(())
}

/// Reads what [`write_top`] wrote.
pub(super) fn decode_top<R: Read>(r: &mut Reader<R>) -> Result<(Quarter, Vec<OwnedTopPost>), DecodeError> {
    let quarter = Quarter::from_index(r.i32()?);
    let mut posts = Vec::new();
    for _ in 0..r.len(TOP_MAX, "top posts")? {
        let (hash, interactions) = (r.u64()?, r.u64()?);
        posts.push(OwnedTopPost { hash, interactions, id: r.str(ID_MAX, "post id")? });
    }
    Ok((quarter, posts))
}

fn decode_edges<R: Read>(r: &mut Reader<R>, durations: usize) -> Result<Vec<[Edge; 2]>, DecodeError> {
    let n = r.len(durations, "rolling window count")?;
    let mut edge = || -> Result<Edge, DecodeError> {
        let at: Millis = r.i64()?;
        let quarter = r.i32()?;
        if quarter != quarter_of(at).index {
            return Err(DecodeError::Range("edge quarter"));
        }
        let mut e = Edge::new(at);
        for _ in 0..r.len(super::posts::MAX_PAGES as usize, "edge slots")? {
            e.left.push(read_totals(r)?);
        }
        Ok(e)
    };
    (0..n).map(|_| Ok([edge()?, edge()?])).collect()
}

/// Each guarded partition: number, watermark (flag and value), events past
/// a jump, events within since.
pub(super) fn write_guards<W: Write>(w: &mut Writer<W>, guards: &Guards) -> io::Result<()> {
    w.len(guards.0.len())?;
    for (p, g) in &guards.0 {
        w.u32(*p)?;
        match g.watermark {
            None => w.u8(0)?,
            Some(wm) => {
                w.u8(1)?;
                w.i64(wm)?;
            }
        }
        w.u32(g.past)?;
        w.u32(g.within)?;
    }
    Ok(())
}

pub(super) fn read_guards<R: Read>(r: &mut Reader<R>) -> Result<Guards, DecodeError> {
    let mut guards = Guards::default();
    for _ in 0..r.len(super::jump::MAX_GUARDED_PARTITIONS, "guarded partitions")? {
        let partition = r.u32()?;
        let watermark = match r.u8()? {
            0 => None,
            1 => Some(r.i64()?),
            _ => return Err(DecodeError::Range("guard watermark flag")),
        };
        guards.0.push((partition, Guard { watermark, past: r.u32()?, within: r.u32()? }));
    }
    Ok(guards)
}

/// Each history gap: partition, horizon (a sample's flag and time).
pub(super) fn write_gaps<W: Write>(w: &mut Writer<W>, gaps: &Gaps) -> io::Result<()> {
    w.len(gaps.0.len())?;
    for g in gaps.iter() {
        w.u32(g.partition)?;
        w.sample(g.horizon.map(|h| (h, 0)))?;
    }
    Ok(())
}

pub(super) fn read_gaps<R: Read>(r: &mut Reader<R>) -> Result<Gaps, DecodeError> {
    let mut gaps = Gaps::default();
    for _ in 0..r.len(super::gaps::MAX_GAPS, "history gaps")? {
        let partition = r.u32()?;
        gaps.0.push(Gap { partition, horizon: r.sample()?.map(|(h, _)| h) });
    }
    Ok(gaps)
}

/// The specification as (per kind: retention or 0xff) and the durations.
pub(super) fn write_windows<W: Write>(w: &mut Writer<W>, windows: &Windows) -> io::Result<()> {
    for kind in CalendarKind::ALL {
        w.u8(windows.retention(kind).map_or(u8::MAX, |r| r as u8))?;
    }
    w.len(windows.rolling().len())?;
    for d in windows.rolling() {
        w.u16(*d)?;
    }
    Ok(())
}

pub(super) fn read_windows<R: Read>(r: &mut Reader<R>) -> Result<Windows, DecodeError> {
    let mut kinds = Vec::new();
    for kind in CalendarKind::ALL {
        match r.u8()? {
            u8::MAX => {}
            n => kinds.push((kind.as_str(), Some(u32::from(n)))),
        }
    }
    let days: Vec<String> = (0..r.len(crate::window::MAX_ROLLING, "rolling windows")?)
        .map(|_| Ok(format!("{}d", r.u16()?)))
        .collect::<Result<_, DecodeError>>()?;
    let days: Vec<&str> = days.iter().map(String::as_str).collect();
    Windows::new(&kinds, &days).map_err(|_| DecodeError::Range("windows"))
}

/// Rebuilds the pages' figures per day from the posts (see
/// [`series`](super::series)) when a checkpoint older than format 6 is
/// read: day by day, each post's cell going after the page's others. Like
/// the batch loop, it prefetches: the page's index entry in its quarter
/// for the post 16 ahead, its days of the quarter for the post 8 ahead,
/// their last cell for the post 4 ahead.
fn rebuild_series(
    posts: &super::posts::PostTable,
    quarters: &super::periods::Periods,
    series: &mut super::series::DaySeries,
) {
    use super::posts::day_of;
    const AHEAD: usize = 16;
    let mut ahead: std::collections::VecDeque<super::Post> = std::collections::VecDeque::with_capacity(AHEAD);
    let mut all = posts.iter();
    loop {
        while ahead.len() < AHEAD {
            let Some(p) = all.next() else { break };
            quarters.prefetch_entry(quarters.period_of(p.published), p.page);
            ahead.push_back(p);
        }
        let Some(post) = ahead.pop_front() else { break };
        for (n, day_ref) in [(AHEAD / 2, true), (AHEAD / 4, false)] {
            if let Some(p) = ahead.get(n) {
                let q = quarters.period_of(p.published);
                if let Some(slot) = quarters.slot_index(q, p.page) {
                    match day_ref {
                        true => series.prefetch_reference(q, slot),
                        false => series.prefetch_cell(q, slot, day_of(p.published)),
                    }
                }
            }
        }
        let q = quarters.period_of(post.published);
        if let Some(slot) = quarters.slot_index(q, post.page) {
            series.change(q, slot, post.page, day_of(post.published), |t| t.add_post(&post.counts));
        }
    }
}
