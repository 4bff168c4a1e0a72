//! Synthetic events: the reference league table (README) rebuilt from per-post
//! snapshots, and a seeded random stream for benches, load tests and the
//! demo. Pure and deterministic for a given seed.

use std::io::Write;

use crate::window::{Millis, Quarter, format_rfc3339};

pub mod groups;

/// A page of the reference table (Q3 2025, Facebook).
#[derive(Debug, Clone, Copy)]
pub struct SeedPage {
    pub id: &'static str,
    pub name: &'static str,
    pub interactions: u64,
    pub followers: Option<u64>,
    pub posts: u64,
}

/// The reference table. The last two rows are reported only roughly
/// ("≈ 17.5 M", "≈ 10.5 M", no followers or posts): they get round figures.
pub const SEED_TABLE: [SeedPage; 5] = [
    SeedPage {
        id: "whitehouse",
        name: "The White House",
        interactions: 26_243_488,
        followers: Some(12_485_769),
        posts: 650,
    },
    SeedPage {
        id: "moi.egy",
        name: "وزارة الداخلية - Egypt, Ministry of Interior",
        interactions: 24_370_680,
        followers: Some(12_083_986),
        posts: 1_780,
    },
    SeedPage {
        id: "pmcambodia",
        name: "Prime Minister of Cambodia",
        interactions: 19_116_205,
        followers: Some(4_961_090),
        posts: 666,
    },
    SeedPage {
        id: "inc.bihar",
        name: "Indian National Congress – Bihar",
        interactions: 17_500_000,
        followers: None,
        posts: 900,
    },
    SeedPage {
        id: "ice.gov",
        name: "U.S. Immigration and Customs Enforcement",
        interactions: 10_500_000,
        followers: None,
        posts: 400,
    },
];

/// The quarter the table describes.
pub fn seed_quarter() -> Quarter {
    Quarter::new(2025, 3).expect("valid quarter")
}

/// Splits `total` into `parts` near-equal integers that add up exactly.
pub fn split(total: u64, parts: u64, i: u64) -> u64 {
    total / parts + u64::from(i < total % parts)
}

/// One snapshot per post of every [`SEED_TABLE`] page, published across
/// the quarter and observed an hour later, so that the quarter's totals,
/// post counts and followers equal the table exactly.
pub fn seed_events() -> Vec<String> {
    let q = seed_quarter();
    let span = q.end() - q.start() - 2 * 3_600_000;
    let mut out = Vec::new();
    for page in &SEED_TABLE {
        for i in 0..page.posts {
            let published = q.start() + span * i as i64 / page.posts as i64;
            let interactions = split(page.interactions, page.posts, i);
            let post = format!("{}-{i}", page.id);
            out.push(snapshot_json(&page.into(), &post, published, published + 3_600_000, interactions));
        }
    }
    out
}

/// Identifies the page an event is about.
struct PageRef<'a> {
    platform: &'a str,
    id: &'a str,
    name: &'a str,
    followers: Option<u64>,
}

impl<'a> From<&'a SeedPage> for PageRef<'a> {
    fn from(p: &'a SeedPage) -> PageRef<'a> {
        PageRef { platform: "facebook", id: p.id, name: p.name, followers: p.followers }
    }
}

fn snapshot_json(page: &PageRef<'_>, post: &str, published: Millis, observed: Millis, interactions: u64) -> String {
    let comments = interactions / 8;
    let shares = interactions / 10;
    let reactions = interactions - comments - shares;
    let followers = page.followers.map_or(String::new(), |f| format!(",\"followers\":{f}"));
    format!(
        "{{\"page_id\":\"{}\",\"platform\":\"{}\",\"post_id\":\"{post}\",\"page_name\":{},\"published_at\":\"{}\",\"observed_at\":\"{}\",\"reactions\":{reactions},\"comments\":{comments},\"shares\":{shares}{followers}}}",
        page.id,
        page.platform,
        serde_json::to_string(page.name).expect("a str serializes"),
        format_rfc3339(published),
        format_rfc3339(observed),
    )
}

/// The demo's opening history: the reference table, earlier (smaller)
/// observations of some posts, a long tail of smaller Facebook pages, pages
/// on other platforms, delta-tracked posts with repeated event ids, and a
/// few invalid records, all shuffled. Most of it lies in 2025-Q3, so the
/// table's quarter is `current`; a smaller 2025-Q2 in another order
/// ([`demo_previous_quarter`]) makes the leaderboard's moves real.
pub fn demo_events(seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let q = seed_quarter();
    let mut out = seed_events();
    out.extend(demo_live_history());
    // Earlier, smaller observations of every seventh post: stale or replaced.
    for i in (0..out.len()).step_by(7) {
        out.push(out[i].replacen("\"reactions\":", "\"reactions\":0,\"reactions_before\":", 1));
    }
    let day = |d: u64| q.start() + d as i64 * 86_400_000;
    for page in 0..240u64 {
        let (platform, cap) = match page % 8 {
            0 => ("instagram", 9_500_000),
            1 => ("x", 8_000_000),
            _ => ("facebook", 9_000_000),
        };
        let posts = 5 + rng.below(40);
        let total = 10_000 + rng.below(cap);
        let id = format!("tail{page:03}");
        let name = format!("Page {page}");
        let page_ref = PageRef { platform, id: &id, name: &name, followers: Some(50_000 + rng.below(5_000_000)) };
        for i in 0..posts {
            let published = day(rng.below(85));
            let post = format!("{id}-{i}");
            out.push(snapshot_json(&page_ref, &post, published, published + 86_400_000, split(total, posts, i)));
        }
    }
    for i in 0..300u64 {
        let (published, observed) = (format_rfc3339(day(10 + i % 60)), format_rfc3339(day(11 + i % 60)));
        let id = i % 250; // ids repeat: duplicates
        out.push(format!(
            "{{\"page_id\":\"live.deltas\",\"page_name\":\"Delta-tracked page\",\"post_id\":\"d{}\",\"kind\":\"delta\",\"event_id\":\"ev{id}\",\"published_at\":\"{published}\",\"observed_at\":\"{observed}\",\"reactions\":{},\"comments\":3}}",
            id % 20,
            1_000 + rng.below(20_000)
        ));
    }
    out.extend(["not json at all".into(), "{\"page_id\":\"x\"}".into(), "[1,2,3]".into(), String::new()]);
    out.extend(demo_previous_quarter(&mut rng));
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

/// 2025-Q2 for the demo: the same pages, four posts each, with other
/// totals (Egypt's Ministry of Interior led, the White House second), so
/// that `previous` ranks and moves against the previous period are real.
pub fn demo_previous_quarter(rng: &mut Rng) -> Vec<String> {
    let q = seed_quarter().previous();
    let day = |d: u64| q.start() + d as i64 * 86_400_000;
    let seed_totals = [22_400_000, 25_100_000, 16_200_000, 19_000_000, 12_300_000];
    let mut pages: Vec<(PageRef<'_>, u64)> =
        SEED_TABLE.iter().zip(seed_totals).map(|(p, total)| (PageRef::from(p), total)).collect();
    let tail: Vec<(String, &str)> = (0..240u64)
        .map(|page| (format!("tail{page:03}"), ["instagram", "x", "facebook", "facebook"][(page % 4) as usize]))
        .collect();
    let names: Vec<String> = (0..240).map(|page| format!("Page {page}")).collect();
    for ((id, platform), name) in tail.iter().zip(&names) {
        let page = PageRef { platform, id, name, followers: None };
        pages.push((page, 10_000 + rng.below(9_000_000)));
    }
    let mut out = Vec::new();
    for (page, total) in &pages {
        for i in 0..4u64 {
            let published = day(rng.below(88));
            let post = format!("{}-q2-{i}", page.id);
            out.push(snapshot_json(page, &post, published, published + 86_400_000, split(*total, 4, i)));
        }
    }
    out
}

/// Pages whose totals the demo's live stream moves (they stay below the
/// five seed pages, so the reference table keeps its order while ranks 6 and
/// below change).
pub const DEMO_LIVE_PAGES: [(&str, &str, u64); 3] = [
    ("rising.a", "Ministry of Tourism (demo)", 8_000_000),
    ("rising.b", "City Hall (demo)", 8_300_000),
    ("rising.c", "Ministère de la Santé (demo)", 8_600_000),
];

fn live_page(i: usize) -> PageRef<'static> {
    let (id, name, _) = DEMO_LIVE_PAGES[i];
    PageRef { platform: "facebook", id, name, followers: Some(2_000_000 + i as u64 * 500_000) }
}

/// The live pages' history: one post each, holding their base totals.
fn demo_live_history() -> Vec<String> {
    let q = seed_quarter();
    (0..DEMO_LIVE_PAGES.len())
        .map(|i| {
            let published = q.start() + 30 * 86_400_000;
            let page = live_page(i);
            snapshot_json(&page, &format!("{}-base", page.id), published, published + 3_600_000, DEMO_LIVE_PAGES[i].2)
        })
        .collect()
}

/// The live part of the demo: step `k` re-observes the viral post of one
/// of [`DEMO_LIVE_PAGES`] late in the quarter, with interactions that rise
/// and fall by up to 1.5 M, so those pages keep overtaking each other.
pub fn demo_live_event(k: u64) -> String {
    if k % 4 == 3 {
        return demo_duel_event(k);
    }
    let q = seed_quarter();
    let i = (k % 3) as usize;
    let swing = ((k as f64 / 5.0) + i as f64 * 2.1).sin();
    let interactions = (750_000.0 + 750_000.0 * swing) as u64;
    let published = q.end() - 3 * 86_400_000;
    let observed = published + 86_400_000 + k as i64 * 1000;
    let page = live_page(i);
    snapshot_json(&page, &format!("{}-viral", page.id), published, observed, interactions)
}

/// Live steps in one period of the duel for #1 (at the demo's 500 ms a
/// step, about 4 minutes).
pub const DEMO_DUEL_PERIOD: u64 = 470;

/// Every fourth live step: a viral post of Egypt's Ministry of Interior
/// whose interactions follow a slow wave, 0 → 3.2 M → 0 every
/// [`DEMO_DUEL_PERIOD`] steps. The page trails the White House by 1.87 M,
/// so it takes #1 about 28 % into each period (a little over a minute
/// after the demo starts) and gives it back at 72 % (under three minutes).
pub fn demo_duel_event(k: u64) -> String {
    let q = seed_quarter();
    let phase = (k % DEMO_DUEL_PERIOD) as f64 / DEMO_DUEL_PERIOD as f64;
    let interactions = (1_600_000.0 * (1.0 - (std::f64::consts::TAU * phase).cos())) as u64;
    let published = q.end() - 2 * 86_400_000;
    let observed = published + 3_600_000 + k as i64 * 1000;
    let challenger = PageRef::from(&SEED_TABLE[1]);
    snapshot_json(&challenger, "moi.egy-viral", published, observed, interactions)
}

/// SplitMix64: a tiny, fast, seedable generator, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A random stream of snapshot events over `pages × posts_per_page` posts
/// published in one quarter: each post has one publication time, and each
/// event re-observes a random post 1 ms after the previous event, with
/// higher counts than any earlier event for it could have had. Early on,
/// most events are a post's first.
#[derive(Debug, Clone)]
pub struct RandomStream {
    pub pages: u64,
    pub posts_per_page: u64,
    pub quarter: Quarter,
    rng: Rng,
    seq: u64,
}

impl RandomStream {
    pub fn new(pages: u64, posts_per_page: u64, quarter: Quarter, seed: u64) -> RandomStream {
        RandomStream { pages, posts_per_page, quarter, rng: Rng::new(seed), seq: 0 }
    }

    /// Writes the next event's JSON into `buf` (cleared first), without
    /// allocating once `buf` has grown to an event's size (~200 bytes), and
    /// returns the page number (the message key is `page_NNNNNNN`).
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> u64 {
        let page = self.rng.below(self.pages);
        let post = self.rng.below(self.posts_per_page);
        let q = self.quarter;
        let span = (q.end() - q.start()) as u64 / 2;
        // Fixed per post; observations from mid-quarter on, 1 ms apart.
        let key = page * self.posts_per_page + post;
        let published = q.start() + (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) % span) as Millis;
        self.seq += 1;
        let observed = q.start() + span as Millis + self.seq as Millis;
        let base = self.rng.below(50_000);
        let counts = [base + self.seq % 1000, base / 10, base / 20, base * 12];
        write_snapshot(
            buf,
            page,
            &format_args!("p{page:07}_{post:06}"),
            published,
            observed,
            counts,
            Some(1_000_000 + page * 10),
        );
        page
    }
}

/// One snapshot event in the shape all synthetic streams share.
fn write_snapshot(
    buf: &mut Vec<u8>,
    page: u64,
    post: &std::fmt::Arguments<'_>,
    published: Millis,
    observed: Millis,
    [reactions, comments, shares, views]: [u64; 4],
    followers: Option<u64>,
) {
    buf.clear();
    write!(
        buf,
        "{{\"page_id\":\"page_{page:07}\",\"post_id\":\"{post}\",\"published_at\":{published},\"observed_at\":{observed},\"kind\":\"snapshot\",\"reactions\":{reactions},\"comments\":{comments},\"shares\":{shares},\"views\":{views}"
    )
    .expect("writing to a Vec cannot fail");
    if let Some(f) = followers {
        write!(buf, ",\"followers\":{f}").expect("writing to a Vec cannot fail");
    }
    buf.push(b'}');
}

/// Page popularity like a crawler's: page `k` weighs 1 / (k + 10).
#[derive(Debug, Clone)]
struct Zipf {
    /// Cumulative weights of the pages.
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(pages: u64) -> Zipf {
        let mut total = 0.0;
        Zipf {
            cdf: (0..pages)
                .map(|k| {
                    total += 1.0 / (k as f64 + 10.0);
                    total
                })
                .collect(),
        }
    }

    fn page(&self, rng: &mut Rng) -> u64 {
        let total = *self.cdf.last().unwrap_or(&1.0);
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.cdf.partition_point(|c| *c < x) as u64
    }
}

/// A stream where every event is a new post: pages uniform, one post per
/// event, published in one quarter. The worst case for the post table.
#[derive(Debug, Clone)]
pub struct InsertStream {
    pages: u64,
    quarter: Quarter,
    rng: Rng,
    seq: u64,
    zipf: Option<Zipf>,
}

impl InsertStream {
    pub fn new(pages: u64, quarter: Quarter, seed: u64) -> InsertStream {
        InsertStream { pages, quarter, rng: Rng::new(seed), seq: 0, zipf: None }
    }

    /// Pages picked by popularity like [`TrackerStream`]'s instead of
    /// uniformly: a few pages publish many posts a day, most a few a week.
    pub fn popular(mut self) -> InsertStream {
        self.zipf = Some(Zipf::new(self.pages));
        self
    }

    /// Like [`RandomStream::next_into`].
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> u64 {
        let page = match &self.zipf {
            Some(z) => z.page(&mut self.rng),
            None => self.rng.below(self.pages),
        };
        let q = self.quarter;
        let span = (q.end() - q.start()) as u64;
        self.seq += 1;
        let published = q.start() + (self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) % span) as Millis;
        let base = self.rng.below(50_000);
        let counts = [base, base / 10, base / 20, base * 12];
        let followers = (self.seq % 10 == 0).then_some(1_000_000 + page * 10);
        write_snapshot(buf, page, &format_args!("n{:010}", self.seq), published, published + 60_000, counts, followers);
        page
    }
}

/// A post the tracker is following.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    page: u64,
    post: u64,
    published: Millis,
    /// Observations left before the tracker drops it.
    left: u32,
    interactions: u64,
}

/// What a crawler that tracks pages produces: page popularity Zipf-like
/// over `pages`; each post is published once and then re-observed 10 to 50
/// times with later `observed_at` and growing counts; about one event in
/// ten carries the page's follower count; a few percent of events are new
/// posts (a tracked post's first observation). Time advances 100 ms per
/// event, from the start of `quarter`.
#[derive(Debug, Clone)]
pub struct TrackerStream {
    quarter: Quarter,
    rng: Rng,
    zipf: Zipf,
    tracked: Vec<Tracked>,
    next_post: u64,
    seq: u64,
    long_ids: bool,
}

impl TrackerStream {
    /// Follows `active` posts at a time over `pages` pages.
    pub fn new(pages: u64, active: usize, quarter: Quarter, seed: u64) -> TrackerStream {
        let mut s = TrackerStream {
            quarter,
            rng: Rng::new(seed),
            zipf: Zipf::new(pages),
            tracked: Vec::with_capacity(active),
            next_post: 0,
            seq: 0,
            long_ids: false,
        };
        for _ in 0..active {
            let t = s.new_post();
            s.tracked.push(t);
        }
        s
    }

    /// Post ids like Facebook's `pageid_postid` (33 bytes, too long to be
    /// stored inline) instead of 11-byte ones.
    pub fn with_long_ids(mut self) -> TrackerStream {
        self.long_ids = true;
        self
    }

    fn now(&self) -> Millis {
        self.quarter.start() + self.seq as Millis * 100
    }

    fn new_post(&mut self) -> Tracked {
        self.next_post += 1;
        let left = 10 + self.rng.below(41) as u32;
        Tracked {
            page: self.zipf.page(&mut self.rng),
            post: self.next_post,
            published: self.now(),
            left,
            interactions: 0,
        }
    }

    /// Like [`RandomStream::next_into`].
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> u64 {
        self.seq += 1;
        let i = self.rng.below(self.tracked.len() as u64) as usize;
        if self.tracked[i].left == 0 {
            self.tracked[i] = self.new_post();
        }
        let growth = 1 + self.rng.below(500);
        let t = &mut self.tracked[i];
        t.left -= 1;
        t.interactions += growth;
        let t = *t;
        let (c, s) = (t.interactions / 8, t.interactions / 10);
        let counts = [t.interactions - c - s, c, s, t.interactions * 20];
        let followers = (self.seq % 10 == 0).then(|| 1_000_000 + t.page * 10 + self.seq / 1000);
        let observed = self.now();
        if self.long_ids {
            let id = format_args!("{:016}_{:016}", 100_000_000_000 + t.page, t.post);
            write_snapshot(buf, t.page, &id, t.published, observed, counts, followers);
        } else {
            write_snapshot(buf, t.page, &format_args!("t{:010}", t.post), t.published, observed, counts, followers);
        }
        t.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_adds_up() {
        for (total, parts) in [(26_243_488, 650), (7, 3), (2, 5)] {
            assert_eq!((0..parts).map(|i| split(total, parts, i)).sum::<u64>(), total);
        }
    }

    #[test]
    fn seed_events_cover_the_table() {
        let n: u64 = SEED_TABLE.iter().map(|p| p.posts).sum();
        assert_eq!(seed_events().len() as u64, n);
    }

    #[test]
    fn random_events_are_about_200_bytes() {
        let mut s = RandomStream::new(100_000, 50, seed_quarter(), 7);
        let mut buf = Vec::new();
        let total: usize = (0..1000)
            .map(|_| {
                s.next_into(&mut buf);
                buf.len()
            })
            .sum();
        assert!((150..260).contains(&(total / 1000)), "{}", total / 1000);
    }
}
