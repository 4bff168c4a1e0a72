//! A base and the increments after it restore an engine that answers as
//! the engine that wrote them: every table and ranking, every post, every
//! top list, and the same outcome for every event applied afterwards
//! (remembered event ids included), across random streams of six quarters
//! whose days expire, periods roll and rolling edges move between two
//! increments. 1,000 cases (PROPTEST_CASES overrides).

use std::collections::BTreeSet;

use engagement_core::engine::{Engine, IncrementSize};
use engagement_core::event::decode;
use engagement_core::view::View;
use proptest::prelude::*;

mod common;

use common::*;

fn run(engine: &mut Engine, records: &[String]) {
    for r in records {
        if let Ok(ev) = decode(r.as_bytes(), &cx()) {
            engine.apply(&ev);
        }
    }
}

/// Every post and top list (live and kept for earlier quarters), by page
/// identity (page numbers may differ).
fn held(e: &Engine) -> (BTreeSet<String>, BTreeSet<String>) {
    let s = e.snapshot();
    let name = |p: u32| format!("{}/{}", s.platform(p), s.ident(p).id);
    let posts = e
        .posts()
        .map(|p| format!("{} {} {} {} {:?} {:?}", name(p.page), p.hash, p.published, p.observed, p.kind, p.counts))
        .collect();
    (posts, top_lists(e))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_base_and_its_increments_answer_as_the_engine_that_wrote_them(
        records in proptest::collection::vec(record(), 1..200),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
    ) {
        let json: Vec<String> = records.iter().map(render).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(json.len() + 1)).collect();
        cuts.sort_unstable();
        let mut original = Engine::new(*LIMITS);
        run(&mut original, &json[..cuts[0]]);
        original.track_increments();
        let mut base = Vec::new();
        original.durable_snapshot().encode(&mut base).unwrap();
        let mut restored = Engine::decode(&base[..], *LIMITS).unwrap();
        let ends = cuts.iter().skip(1).copied().chain([json.len()]);
        let mut from = cuts[0];
        for to in ends {
            run(&mut original, &json[from..to]);
            from = to;
            let mut bytes = Vec::new();
            let wrote = original.take_increment(&mut bytes);
            let read = restored.apply_increment(&bytes).unwrap();
            prop_assert_eq!(wrote, read);
            prop_assert_eq!(rankings(&View::build(&original)), rankings(&View::build(&restored)));
            prop_assert_eq!(series(&View::build(&original)), series(&View::build(&restored)));
            prop_assert_eq!(held(&original), held(&restored));
            prop_assert_eq!(original.usage().event_ids, restored.usage().event_ids);
            // Every truncation is refused, never a panic.
            let mut probe = Engine::decode(&base[..], *LIMITS).unwrap();
            for len in (0..bytes.len()).step_by(bytes.len() / 20 + 1) {
                prop_assert!(probe.apply_increment(&bytes[..len]).is_err());
            }
        }
        // Redelivering the whole stream: the same outcome, event by event.
        for r in &json {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                prop_assert_eq!(original.apply(&ev), restored.apply(&ev), "{}", r);
            }
        }
        prop_assert_eq!(rankings(&View::build(&original)), rankings(&View::build(&restored)));
    }

    #[test]
    fn an_increment_holds_only_what_changed(
        records in proptest::collection::vec(event(true), 1..100),
    ) {
        let json: Vec<String> = records.iter().map(render).collect();
        let mut engine = Engine::new(*LIMITS);
        run(&mut engine, &json);
        engine.track_increments();
        let mut bytes = Vec::new();
        prop_assert_eq!(engine.take_increment(&mut bytes), IncrementSize::default());
        prop_assert!(!engine.increment_pending());
    }
}
