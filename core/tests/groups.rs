//! Rankings within groups against a plain model: on random streams and a
//! random directory (records, replacements, tombstones), every ranking of
//! a group, alone or two together and with a platform, is the all-pages
//! ranking with the pages outside the group struck out and the ranks
//! counted again — `previous_period_rank` too, among the same pages.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use engagement_core::directory::{Directory, DirectoryLimits};
use engagement_core::engine::Engine;
use engagement_core::event::decode;
use engagement_core::ranking::{Filter, Metric, ranks_of, top};
use engagement_core::view::View;
use proptest::prelude::*;

#[allow(dead_code)] // what the other property tests use of it
mod common;

use common::*;

const GROUPS: [&str; 4] = ["category:government", "category:media", "country:EG", "list:g20"];

/// One directory record: page (platform, number), its groups (a bit per
/// [`GROUPS`] entry, at most one category), or a tombstone.
#[derive(Debug, Clone)]
struct DirRecord {
    platform: u8,
    page: u8,
    groups: Option<u8>,
}

fn dir_record() -> impl Strategy<Value = DirRecord> {
    (0u8..2, 0u8..5, proptest::option::weighted(0.85, 0u8..16)).prop_map(|(platform, page, groups)| DirRecord {
        platform,
        page,
        groups,
    })
}

fn platform(p: u8) -> &'static str {
    ["facebook", "instagram"][usize::from(p % 2)]
}

fn groups_of(bits: u8) -> Vec<&'static str> {
    // At most one category: "media" only without "government".
    let bits = if bits & 3 == 3 { bits & !2 } else { bits };
    GROUPS.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, g)| *g).collect()
}

/// Applies the records to a directory and to the model (page → groups).
fn load(records: &[DirRecord]) -> (Directory, BTreeMap<(String, String), BTreeSet<&'static str>>) {
    let (mut dir, mut model) = (Directory::new(DirectoryLimits::default()), BTreeMap::new());
    for r in records {
        let (platform, id) = (platform(r.platform), format!("p{}", r.page));
        let key = format!("{platform}/{id}");
        match r.groups {
            None => {
                dir.apply(Some(key.as_bytes()), None).expect("a tombstone");
                model.remove(&(platform.to_string(), id));
            }
            Some(bits) => {
                let mut by_dim: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for g in groups_of(bits) {
                    let (d, v) = g.split_once(':').unwrap();
                    by_dim.entry(d).or_default().push(v);
                }
                let groups = serde_json::to_string(&by_dim).unwrap();
                let value = format!(r#"{{"platform":"{platform}","page_id":"{id}","groups":{groups}}}"#);
                dir.apply(Some(key.as_bytes()), Some(value.as_bytes())).expect("a valid record");
                model.insert((platform.to_string(), id), groups_of(bits).into_iter().collect());
            }
        }
    }
    (dir, model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn group_rankings_are_the_all_pages_ranking_restricted(
        events in proptest::collection::vec(record(), 1..150),
        directory in proptest::collection::vec(dir_record(), 0..30),
    ) {
        let mut engine = Engine::new(*LIMITS);
        for r in events.iter().map(render) {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                engine.apply(&ev);
            }
        }
        let (dir, model) = load(&directory);
        let view = View::build(&engine);
        view.attach(Arc::new(dir));
        let filters: Vec<Vec<String>> = vec![
            vec!["category:government".into()],
            vec!["country:EG".into(), "list:g20".into()],
            vec!["category:media".into(), "country:EG".into()],
        ];
        for t in view.tables() {
            for m in Metric::ALL {
                for groups in &filters {
                    for platform in [None, Some("facebook")] {
                        let filter = Filter { platform, groups };
                        let within = |page: u32| {
                            let p = view.page(page);
                            let held = model.get(&(p.platform.to_string(), p.id.to_string()));
                            groups.iter().all(|g| held.is_some_and(|h| h.contains(g.as_str())))
                        };
                        let base = Filter { platform, groups: &[] };
                        let kept: Vec<_> = view.filtered_rows(t, base).into_iter().filter(|r| within(r.page)).collect();
                        let expected: Vec<(u32, u32)> = top(&kept, m, 0, usize::MAX).into_iter().map(|(rank, r)| (rank, r.page)).collect();
                        let got: Vec<(u32, u32)> = view.ranking(t, m, &filter, 0, usize::MAX).into_iter().map(|(rank, r)| (rank, r.page)).collect();
                        prop_assert_eq!(&got, &expected);
                        prop_assert_eq!(view.filtered(t, &filter).len(), kept.len());
                        if let Some(before) = view.predecessor(t) {
                            let prev: Vec<_> = view.filtered_rows(before, base).into_iter().filter(|r| within(r.page)).collect();
                            let pages: Vec<u32> = got.iter().map(|(_, p)| *p).collect();
                            let model_prev = ranks_of(&prev, m, &pages);
                            let view_prev: Vec<Option<u32>> = pages.iter().map(|p| view.rank_of(before, m, &filter, *p)).collect();
                            prop_assert_eq!(view_prev, model_prev);
                        }
                    }
                }
            }
        }
    }
}

/// A JSON value shaped like a directory record's parts, often wrong.
fn loose_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[A-Za-z0-9_:. \"\\\\\u{0}-\u{1f}é م]{0,70}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("\"government\"".to_string()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(("[a-zA-Z0-9_]{0,34}", inner), 0..5).prop_map(|v| format!(
                "{{{}}}",
                v.iter().map(|(k, v)| format!("{k:?}:{v}")).collect::<Vec<_>>().join(",")
            )),
        ]
    })
}

/// A record: the known fields with random values, in random order.
fn record_json() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        loose_json().prop_map(|v| format!("\"page_id\":{v}")),
        Just("\"page_id\":\"p1\"".to_string()),
        loose_json().prop_map(|v| format!("\"platform\":{v}")),
        loose_json().prop_map(|v| format!("\"page_name\":{v}")),
        loose_json().prop_map(|v| format!("\"groups\":{v}")),
    ];
    proptest::collection::vec(field, 0..6).prop_map(|f| format!("{{{}}}", f.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the key and value, applying never panics; a refused record
    /// changes nothing; an accepted one leaves the directory consistent
    /// (every listed group has pages, every page's groups are listed).
    #[test]
    fn any_record_is_applied_or_refused_and_the_directory_stays_whole(
        records in proptest::collection::vec(
            (proptest::option::of(prop_oneof!["facebook/p[0-3]", "[a-z/ ]{0,12}"]),
             proptest::option::weighted(0.9, prop_oneof![record_json(), loose_json(), ".{0,40}"])),
            1..20),
    ) {
        let limits = DirectoryLimits { max_groups_per_page: 3, max_values: 6, max_pages: 3 };
        let mut dir = Directory::new(limits);
        for (key, value) in &records {
            let before = format!("{:?}", dir.listing());
            let result = dir.apply(key.as_deref().map(str::as_bytes), value.as_deref().map(str::as_bytes));
            if result.is_err() {
                prop_assert_eq!(format!("{:?}", dir.listing()), before);
            }
            prop_assert!(dir.len() <= 3 && dir.group_count() <= 6);
            let listed: usize = dir.listing().values().map(Vec::len).sum();
            prop_assert_eq!(listed, dir.group_count());
        }
    }
}
