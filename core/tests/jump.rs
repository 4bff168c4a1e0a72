//! Property tests of the watermark guard (docs/events.md#watermark-jumps):
//! on random streams, fewer than a quorum of events far past the watermark,
//! wherever they fall, change no answer and no watermark; a quorum moves
//! the watermark to the last of them.

use std::time::Duration;

use engagement_core::engine::{Bound, Engine, Limits, Outcome};
use engagement_core::event::decode;
use engagement_core::view::View;
use engagement_core::window::{DAY_MS, Millis};
use proptest::prelude::*;

#[allow(dead_code)] // what the other property tests use of it
mod common;

use common::*;

/// The common limits with a guard wider than the generated history
/// (540 days of publication, 100 of observation), so that only the
/// outliers jump.
fn guarded(quorum: u32) -> Limits {
    Limits { max_watermark_jump: Duration::from_secs(800 * 86_400), watermark_jump_quorum: quorum, ..*LIMITS }
}

/// An event of a page of its own, observed `days` after the history starts
/// (before the decode context's "now", some 26,000 days on).
fn outlier(n: usize, days: i64) -> String {
    let at = EPOCH + days * DAY_MS;
    format!(r#"{{"page_id":"stray{n}","post_id":"x","published_at":{at},"observed_at":{at},"reactions":7}}"#)
}

/// Applies `records`; the outcomes of the valid ones.
fn run(engine: &mut Engine, records: &[String]) -> Vec<Outcome> {
    records.iter().filter_map(|r| decode(r.as_bytes(), &cx()).ok()).map(|ev| engine.apply(&ev)).collect()
}

/// `records` with `outliers` inserted at `at` (each position modulo the length).
fn with(records: &[String], outliers: &[String], at: &[usize]) -> Vec<String> {
    let mut all = records.to_vec();
    for (o, i) in outliers.iter().zip(at) {
        all.insert(i % (all.len() + 1), o.clone());
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fewer_than_a_quorum_of_outliers_change_nothing(
        gens in proptest::collection::vec(record(), 1..150),
        quorum in 2u32..6,
        at in proptest::collection::vec(any::<usize>(), 5),
        far in 2_000i64..20_000,
    ) {
        let records: Vec<String> = gens.iter().map(render).collect();
        let outliers: Vec<String> = (0..quorum as usize - 1).map(|n| outlier(n, far + n as i64)).collect();
        let (mut plain, mut strayed) = (Engine::new(guarded(quorum)), Engine::new(guarded(quorum)));
        run(&mut plain, &records);
        let outcomes = run(&mut strayed, &with(&records, &outliers, &at));
        let refused = outcomes.iter().filter(|o| **o == Outcome::Rejected(Bound::WatermarkJump)).count();
        let seen_first = records.iter().any(|r| decode(r.as_bytes(), &cx()).is_ok());
        // An outlier before any valid event sets the watermark: nothing to jump.
        prop_assume!(seen_first && refused == outliers.len());
        prop_assert_eq!(plain.watermark(), strayed.watermark());
        prop_assert_eq!(rankings(&View::build(&plain)), rankings(&View::build(&strayed)));
    }

    #[test]
    fn a_checkpoint_in_the_middle_of_a_jump_changes_no_verdict(
        gens in proptest::collection::vec(record(), 1..150),
        quorum in 2u32..6,
        at in proptest::collection::vec(any::<usize>(), 5),
        cut in any::<usize>(),
    ) {
        let records: Vec<String> = gens.iter().map(render).collect();
        let outliers: Vec<String> = (0..quorum as usize).map(|n| outlier(n, 3_000 + n as i64)).collect();
        let all = with(&records, &outliers, &at);
        let cut = cut % (all.len() + 1);
        let mut straight = Engine::new(guarded(quorum));
        let want = run(&mut straight, &all);
        let mut first = Engine::new(guarded(quorum));
        let mut got = run(&mut first, &all[..cut]);
        let mut bytes = Vec::new();
        first.durable_snapshot().encode(&mut bytes).expect("encodes");
        let mut restored = Engine::decode(&bytes[..], guarded(quorum)).expect("decodes");
        got.extend(run(&mut restored, &all[cut..]));
        prop_assert_eq!(got, want);
        prop_assert_eq!(restored.watermark(), straight.watermark());
        prop_assert_eq!(rankings(&View::build(&restored)), rankings(&View::build(&straight)));
    }

    #[test]
    fn a_quorum_of_events_past_the_jump_moves_the_watermark(
        gens in proptest::collection::vec(record(), 1..150),
        quorum in 2u32..6,
        far in 2_000i64..20_000,
    ) {
        let records: Vec<String> = gens.iter().map(render).collect();
        let mut e = Engine::new(guarded(quorum));
        run(&mut e, &records);
        prop_assume!(e.watermark().is_some());
        let outliers: Vec<String> = (0..quorum as usize).map(|n| outlier(n, far + n as i64)).collect();
        let outcomes = run(&mut e, &outliers);
        let last: Millis = EPOCH + (far + i64::from(quorum) - 1) * DAY_MS;
        prop_assert_eq!(e.watermark(), Some(last));
        prop_assert_eq!(outcomes.last(), Some(&Outcome::Applied));
        prop_assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == Outcome::Rejected(Bound::WatermarkJump)));
    }
}
