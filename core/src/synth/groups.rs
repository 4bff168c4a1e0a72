//! Synthetic page directories (docs/directory.md) and the pages that make
//! them matter: a tail of media and celebrity pages larger than every
//! government page, so that "all pages" and `category:government` rank
//! differently, and the directory records (key `platform/page_id`, value
//! JSON) that put the reference table's pages in `category:government`.
//! Pure and deterministic.

use serde_json::json;

use super::{DEMO_LIVE_PAGES, PageRef, SEED_TABLE, seed_quarter, snapshot_json, split};

/// A non-government page of the tail: id, name, category, country, and
/// its 2025-Q3 interactions.
type TailPage = (&'static str, &'static str, &'static str, &'static str, u64);

/// Invented media outlets and celebrities, all on Facebook. Every total is
/// above the White House's 26,243,488, so in "all pages" these 24 lead and
/// the reference table starts at rank 25: only a group restores it.
pub const TAIL_PAGES: [TailPage; 24] = [
    ("demo.newsnetwork", "News Network (demo)", "media", "US", 64_200_000),
    ("demo.goleador10", "Marco Goleador, footballer (demo)", "celebrity", "BR", 61_750_000),
    ("demo.leilasings", "Leila Sings (demo)", "celebrity", "EG", 58_300_000),
    ("demo.dailyheadlines", "Daily Headlines (demo)", "media", "GB", 55_900_000),
    ("demo.bharatlive", "Bharat Live TV (demo)", "media", "IN", 52_480_000),
    ("demo.djnova", "DJ Nova (demo)", "celebrity", "US", 49_100_000),
    ("demo.noticiashoy", "Noticias Hoy (demo)", "media", "MX", 47_020_000),
    ("demo.priyastar", "Priya Star, actress (demo)", "celebrity", "IN", 45_660_000),
    ("demo.cairomorning", "Cairo Morning News (demo)", "media", "EG", 43_310_000),
    ("demo.kofistriker", "Kofi Striker, footballer (demo)", "celebrity", "NG", 41_870_000),
    ("demo.journalexpress", "Le Journal Express (demo)", "media", "FR", 40_050_000),
    ("demo.yukipop", "Yuki Pop (demo)", "celebrity", "JP", 38_640_000),
    ("demo.sportscentral", "Sports Central (demo)", "media", "BR", 37_200_000),
    ("demo.anaritmo", "Ana Ritmo, singer (demo)", "celebrity", "MX", 35_980_000),
    ("demo.manilabalita", "Manila Balita (demo)", "media", "PH", 34_400_000),
    ("demo.comedykhan", "Comedy Khan (demo)", "celebrity", "PK", 33_150_000),
    ("demo.techtoday", "Tech Today (demo)", "media", "US", 32_020_000),
    ("demo.rafaskills", "Rafa Skills, footballer (demo)", "celebrity", "ES", 30_870_000),
    ("demo.lagospulse", "Lagos Pulse (demo)", "media", "NG", 29_960_000),
    ("demo.chefamara", "Chef Amara (demo)", "celebrity", "ZA", 29_010_000),
    ("demo.jakartakini", "Jakarta Kini (demo)", "media", "ID", 28_330_000),
    ("demo.sararunway", "Sara Runway, model (demo)", "celebrity", "IT", 27_640_000),
    ("demo.viralclips", "World Viral Clips (demo)", "media", "US", 27_050_000),
    ("demo.linavlogs", "Lina Vlogs (demo)", "celebrity", "ID", 26_900_000),
];

/// Posts per tail page in 2025-Q3 and in 2025-Q2: a few each, enough for
/// a page to look like one, few enough to keep the seed data set small.
const TAIL_POSTS: u64 = 6;
const TAIL_PREVIOUS_POSTS: u64 = 3;

/// Countries of the reference table's pages, and the lists they are on.
const SEED_GROUPS: [(&str, &[&str]); 5] =
    [("US", &["g20-gov"]), ("EG", &["mena-security"]), ("KH", &[]), ("IN", &["g20-gov"]), ("US", &["g20-gov"])];

/// Countries of the demo's live pages (Tourism, City Hall, Santé).
const LIVE_COUNTRIES: [&str; 3] = ["GR", "US", "FR"];

/// Countries the demo's `tailNNN` pages cycle through.
const COUNTRIES: [&str; 12] = ["US", "EG", "IN", "BR", "FR", "KH", "MX", "NG", "GB", "ID", "DE", "JP"];

fn tail_ref(p: &TailPage, i: u64) -> PageRef<'static> {
    // Celebrities have the larger audiences; the figure only fills the field.
    PageRef { platform: "facebook", id: p.0, name: p.1, followers: Some(3_000_000 + i * 410_000) }
}

/// The tail pages' events: in 2025-Q3, [`TAIL_POSTS`] snapshots per page
/// (one per post, observed an hour after publication) adding up exactly to
/// its total; in 2025-Q2, [`TAIL_PREVIOUS_POSTS`] posts with 60–100 % of
/// it, in another order, so that previous-period ranks among them move.
pub fn tail_events() -> Vec<String> {
    let (q3, q2) = (seed_quarter(), seed_quarter().previous());
    // Posts 12 days apart from day n + 1: the last, day 84, is in the quarter.
    let day = |start: i64, d: u64| start + (1 + d as i64) * 86_400_000;
    let mut out = Vec::new();
    for (n, p) in TAIL_PAGES.iter().enumerate() {
        let n = n as u64;
        let page = tail_ref(p, n);
        for i in 0..TAIL_POSTS {
            let published = day(q3.start(), n + i * 12);
            let post = format!("{}-{i}", p.0);
            out.push(snapshot_json(&page, &post, published, published + 3_600_000, split(p.4, TAIL_POSTS, i)));
        }
        let previous = p.4 / 100 * (60 + (n * 17) % 41);
        for i in 0..TAIL_PREVIOUS_POSTS {
            let published = day(q2.start(), n + i * 20);
            let post = format!("{}-q2-{i}", p.0);
            let interactions = split(previous, TAIL_PREVIOUS_POSTS, i);
            out.push(snapshot_json(&page, &post, published, published + 3_600_000, interactions));
        }
    }
    out
}

/// One directory record: key `platform/page_id`, value JSON.
fn record(platform: &str, id: &str, category: &str, country: &str, lists: &[&str]) -> (String, String) {
    let mut groups = json!({ "category": category, "country": country });
    if !lists.is_empty() {
        groups["list"] = json!(lists);
    }
    let value = json!({ "platform": platform, "page_id": id, "groups": groups });
    (format!("{platform}/{id}"), value.to_string())
}

/// The directory of `produce --scenario seed`: the five reference pages in
/// `category:government` with their countries (lists `g20-gov` for the US
/// and Indian pages, `mena-security` for Egypt's), then the
/// [`TAIL_PAGES`] in `category:media` or `category:celebrity`.
pub fn seed_directory() -> Vec<(String, String)> {
    let seed = SEED_TABLE
        .iter()
        .zip(SEED_GROUPS)
        .map(|(p, (country, lists))| record("facebook", p.id, "government", country, lists));
    let tail = TAIL_PAGES.iter().map(|p| record("facebook", p.0, p.2, p.3, &[]));
    seed.chain(tail).collect()
}

/// The demo's directory: [`seed_directory`], the live pages in
/// `category:government`, and every `tailNNN` page of `demo_events`: a
/// third (`NNN` divisible by 3) government, the rest media, brand or
/// celebrity, countries in turn. A tail page that the demo puts on one
/// platform in 2025-Q3 and another in 2025-Q2 gets a record for each.
///
/// The seed pages stay the top five of `category:government` in 2025-Q3:
/// the live pages peak at 8.6 M + 1.5 M and the `tailNNN` pages below
/// 9.51 M, under ICE's 10.5 M (checked by a test below).
pub fn demo_directory() -> Vec<(String, String)> {
    let mut out = seed_directory();
    for ((id, _, _), country) in DEMO_LIVE_PAGES.iter().zip(LIVE_COUNTRIES) {
        out.push(record("facebook", id, "government", country, &[]));
    }
    for page in 0..240usize {
        let id = format!("tail{page:03}");
        let category = if page % 3 == 0 { "government" } else { ["media", "brand", "celebrity"][page / 3 % 3] };
        let country = COUNTRIES[page % COUNTRIES.len()];
        // The platforms demo_events and demo_previous_quarter give the page.
        let q3 = ["instagram", "x", "facebook", "facebook", "facebook", "facebook", "facebook", "facebook"][page % 8];
        let q2 = ["instagram", "x", "facebook", "facebook"][page % 4];
        out.push(record(q3, &id, category, country, &[]));
        if q2 != q3 {
            out.push(record(q2, &id, category, country, &[]));
        }
    }
    out
}

/// The directory of the generated streams' pages `page_0000000`,
/// `page_0000001`, ... (`RandomStream`, `TrackerStream`, `InsertStream`):
/// categories government, media, brand and celebrity in turn, countries in
/// turn, so that group rankings can be tried on any number of pages.
pub fn numbered_directory(pages: u64) -> impl Iterator<Item = (String, String)> {
    (0..pages).map(|n| {
        let category = ["government", "media", "brand", "celebrity"][(n % 4) as usize];
        record("facebook", &format!("page_{n:07}"), category, COUNTRIES[(n % COUNTRIES.len() as u64) as usize], &[])
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::directory::{Directory, DirectoryLimits};
    use crate::synth::{DEMO_DUEL_PERIOD, demo_events, demo_live_event};

    /// 2025-Q3 interactions per (platform, page_id), each post counted at
    /// its largest observation, as the engine counts snapshots.
    fn q3_totals(events: &[String]) -> HashMap<(String, String), u64> {
        let mut posts: HashMap<(String, String, String), u64> = HashMap::new();
        for e in events {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(e) else { continue };
            let published = v["published_at"].as_str().unwrap_or("");
            if v["kind"] == "delta" || !["2025-07", "2025-08", "2025-09"].iter().any(|m| published.starts_with(m)) {
                continue;
            }
            let n = |f: &str| v[f].as_u64().unwrap_or(0);
            let platform = v["platform"].as_str().unwrap_or("facebook").to_owned();
            let key = (platform, v["page_id"].as_str().unwrap().to_owned(), v["post_id"].as_str().unwrap().to_owned());
            let best = posts.entry(key).or_default();
            *best = (*best).max(n("reactions") + n("comments") + n("shares"));
        }
        let mut pages = HashMap::new();
        for ((platform, page, _), total) in posts {
            *pages.entry((platform, page)).or_default() += total;
        }
        pages
    }

    fn group_of(value: &str, dimension: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        v["groups"][dimension].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn every_record_parses_and_keys_are_distinct() {
        let mut d = Directory::new(DirectoryLimits::default());
        let records = demo_directory();
        for (key, value) in &records {
            assert!(d.apply(Some(key.as_bytes()), Some(value.as_bytes())).is_ok(), "{key} {value}");
        }
        assert_eq!(d.len(), records.len(), "one record per page");
        assert!(records.starts_with(&seed_directory()), "the seed directory is part of the demo's");
        for (key, value) in numbered_directory(1000) {
            assert!(d.apply(Some(key.as_bytes()), Some(value.as_bytes())).is_ok(), "{key} {value}");
        }
        assert_eq!(numbered_directory(3).nth(2).unwrap().0, "facebook/page_0000002");
    }

    #[test]
    fn the_seed_pages_are_exactly_the_seed_sets_government_pages() {
        let government: Vec<String> = seed_directory()
            .into_iter()
            .filter(|(_, v)| group_of(v, "category") == "government")
            .map(|(k, _)| k)
            .collect();
        let seed: Vec<String> = SEED_TABLE.iter().map(|p| format!("facebook/{}", p.id)).collect();
        assert_eq!(government, seed);
        let egypt = &seed_directory()[1].1;
        assert_eq!(group_of(egypt, "country"), "EG");
        assert!(egypt.contains("mena-security"), "{egypt}");
    }

    #[test]
    fn every_tail_page_outranks_the_white_house() {
        let totals = q3_totals(&tail_events());
        assert_eq!(totals.len(), TAIL_PAGES.len());
        for p in &TAIL_PAGES {
            assert_eq!(totals[&("facebook".to_owned(), p.0.to_owned())], p.4, "{}", p.0);
            assert!(p.4 > SEED_TABLE[0].interactions, "{}", p.0);
        }
        assert!(tail_events().iter().any(|e| e.contains("\"published_at\":\"2025-0")), "Q2 and Q3 posts");
    }

    #[test]
    fn tail_ids_are_new_and_every_demo_page_is_in_the_directory() {
        let events = demo_events(2025);
        let before = q3_totals(&events);
        assert!(TAIL_PAGES.iter().all(|p| !before.keys().any(|(_, id)| id == p.0)), "tail ids are distinct");
        let keys: HashSet<String> = demo_directory().into_iter().map(|(k, _)| k).collect();
        let mut all = events;
        all.extend(tail_events());
        for (platform, id) in q3_totals(&all).keys() {
            assert!(id == "live.deltas" || keys.contains(&format!("{platform}/{id}")), "{platform}/{id}");
        }
    }

    #[test]
    fn the_seed_pages_stay_the_top_five_of_government_in_the_demo() {
        let mut events = demo_events(2025);
        events.extend(tail_events());
        let government: HashSet<String> = demo_directory()
            .into_iter()
            .filter(|(_, v)| group_of(v, "category") == "government")
            .map(|(k, _)| k)
            .collect();
        let seed: HashSet<String> = SEED_TABLE.iter().map(|p| format!("facebook/{}", p.id)).collect();
        let floor = SEED_TABLE.iter().map(|p| p.interactions).min().unwrap();
        // Whole periods of the swing and of the duel; a post counted at its
        // largest observation bounds whatever the engine holds at any step.
        events.extend((0..2 * DEMO_DUEL_PERIOD).map(demo_live_event));
        for ((platform, id), total) in q3_totals(&events) {
            let key = format!("{platform}/{id}");
            if government.contains(&key) && !seed.contains(&key) {
                assert!(total < floor, "{key} reaches {total}");
            }
        }
    }
}
