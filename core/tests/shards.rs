//! Shard mode's promise, as a property: the stream split by page over
//! several engines, their changed pages published as page records (encoded
//! and decoded, at random moments) into one global table, answers every
//! ranking and page exactly as one engine over the whole stream.

#[allow(dead_code)] // what the other property tests use of it
mod common;

use common::*;
use engagement_core::engine::Engine;
use engagement_core::event::decode;
use engagement_core::global::{GlobalTable, PageRecord, page_key};
use engagement_core::view::{Period, View};
use engagement_core::window::{CalendarKind, Quarter};
use proptest::prelude::*;

/// Publishes what changed in `shard` (number `k`) into the table, as a
/// shard does once per ranking interval.
fn publish(k: u32, shard: &mut Engine, table: &mut GlobalTable) {
    let changed = shard.take_changes();
    for (platform, id) in &changed.freed {
        table.remove(&page_key(platform, id));
    }
    let snap = shard.snapshot();
    for p in changed.pages {
        let rec = PageRecord::of(&snap, p, k).expect("a changed page is live");
        let bytes = rec.encode();
        let back = PageRecord::decode(&bytes).expect("a record reads back");
        assert_eq!(back, rec);
        table.put(back).expect("within bounds");
    }
    if let Some(wm) = shard.watermark() {
        table.set_watermark(wm);
    }
}

/// Per page: its name, top posts (of the current quarter, and of a
/// quarter's table, kept for an earlier one), and where `find_page` finds it.
fn pages(v: &View) -> Vec<String> {
    let mut out = Vec::new();
    for t in v.tables() {
        for row in v.rows(t) {
            let p = v.page(row.page);
            let found = v.find_page(p.platform, p.id).map(|q| v.page(q).id.to_string());
            let quarter = match t.period {
                Period::Calendar(q) if q.kind == CalendarKind::Quarter => {
                    v.top_posts_of(row.page, Quarter::from_index(q.index))
                }
                _ => Vec::new(),
            };
            out.push(format!(
                "{:?} {}/{} {:?} {:?} {quarter:?} {found:?}",
                t.period,
                p.platform,
                p.id,
                p.name,
                v.top_posts(row.page)
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn pages_split_over_engines_rank_as_one_engine(
        records in proptest::collection::vec(record(), 1..150),
        n in 1u32..4,
        looks in proptest::collection::vec(prop::bool::weighted(0.1), 150),
    ) {
        let mut one = Engine::new(*LIMITS);
        let mut shards: Vec<Engine> = (0..n).map(|_| Engine::new(*LIMITS)).collect();
        shards.iter_mut().for_each(Engine::track_changes);
        let mut table = GlobalTable::new(*LIMITS);
        for (i, r) in records.iter().map(render).enumerate() {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                one.apply(&ev);
                // Keyed by page: the page id's last byte picks the shard,
                // which follows the topic's watermark before each event.
                let k = u32::from(*ev.page_id.as_bytes().last().unwrap_or(&0)) % n;
                if let Some(wm) = table.watermark() {
                    shards[k as usize].advance_to(wm);
                }
                shards[k as usize].apply(&ev);
                if let Some(wm) = shards[k as usize].watermark() {
                    table.set_watermark(wm);
                }
            }
            if looks[i] {
                for (k, s) in shards.iter_mut().enumerate() {
                    publish(k as u32, s, &mut table);
                }
            }
        }
        let wm = table.watermark();
        for (k, s) in shards.iter_mut().enumerate() {
            if let Some(wm) = wm {
                s.advance_to(wm);
            }
            publish(k as u32, s, &mut table);
        }
        let (single, global) = (View::build(&one), View::of_table(&table));
        prop_assert_eq!(single.watermark, global.watermark);
        prop_assert_eq!(rankings(&single), rankings(&global));
        prop_assert_eq!(pages(&single), pages(&global));
        prop_assert_eq!(series(&single), series(&global));
        prop_assert_eq!(single.usage.pages, table.len());
        prop_assert_eq!(global.usage.split_pages, 0);
    }
}

#[test]
fn a_page_published_from_two_partitions_is_counted_and_forgotten_with_the_page() {
    let mut engine = Engine::new(*LIMITS);
    let ev = r#"{"page_id":"p1","post_id":"a","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":3}"#;
    engine.apply(&decode(ev.as_bytes(), &cx()).unwrap());
    let rec = PageRecord::of(&engine.snapshot(), 0, 4).unwrap();
    let mut table = GlobalTable::new(*LIMITS);
    table.put(rec.clone()).unwrap();
    table.put(rec.clone()).unwrap();
    assert_eq!(View::of_table(&table).usage.split_pages, 0, "the same partition again");
    table.put(PageRecord { partition: 5, ..rec.clone() }).unwrap();
    assert_eq!(View::of_table(&table).usage.split_pages, 1);
    table.remove(&rec.key());
    assert_eq!(View::of_table(&table).usage.split_pages, 0);
    assert_eq!(table.len(), 0);
}

#[test]
fn a_damaged_record_is_an_error() {
    let mut engine = Engine::new(*LIMITS);
    let ev = r#"{"page_id":"p1","post_id":"a","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":3,"page_name":"P"}"#;
    engine.apply(&decode(ev.as_bytes(), &cx()).unwrap());
    let bytes = PageRecord::of(&engine.snapshot(), 0, 0).unwrap().encode();
    for cut in 0..bytes.len() {
        assert!(PageRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(PageRecord::decode(&longer).is_err());
    let mut other = bytes;
    other[0] = 9;
    assert!(PageRecord::decode(&other).is_err(), "an unknown version");
}

proptest! {
    /// Whatever the page-totals topic holds, reading it never panics and
    /// never allocates past the record's own bounds: bytes after either
    /// version byte, and every byte of a valid record changed.
    #[test]
    fn any_bytes_read_as_a_record_or_an_error(
        version in prop_oneof![Just(2u8), Just(3u8)],
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        flip in any::<u8>(),
    ) {
        let mut b = vec![version];
        b.extend_from_slice(&bytes);
        if let Ok(r) = PageRecord::decode(&b) {
            prop_assert_eq!(PageRecord::decode(&r.encode()).ok(), Some(r));
        }
        let mut engine = Engine::new(*LIMITS);
        let ev = r#"{"page_id":"p1","post_id":"a","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":3,"page_name":"P","followers":9}"#;
        engine.apply(&decode(ev.as_bytes(), &cx()).unwrap());
        let valid = PageRecord::of(&engine.snapshot(), 0, 0).unwrap().encode();
        for i in 0..valid.len() {
            let mut changed = valid.clone();
            changed[i] ^= flip | 1;
            if let Ok(r) = PageRecord::decode(&changed) {
                prop_assert_eq!(PageRecord::decode(&r.encode()).ok(), Some(r));
            }
        }
    }
}
