use super::*;
use crate::event::{Counts, DecodeContext, decode};
use crate::view::View;
use crate::window::{Windows, parse_rfc3339};

fn ts(s: &str) -> Millis {
    parse_rfc3339(s).unwrap()
}

/// Decodes `json` and applies it; the event must be valid.
fn apply(e: &mut Engine, json: &str) -> Outcome {
    let cx = DecodeContext {
        message_time: None,
        now: ts("2030-01-01T00:00:00Z"),
        max_skew: 3_600_000,
        max_payload_bytes: 1 << 16,
    };
    e.apply(&decode(json.as_bytes(), &cx).expect("valid test event"))
}

fn snap(post: &str, published: &str, observed: &str, reactions: u64) -> String {
    format!(
        r#"{{"page_id":"pg","post_id":"{post}","published_at":"{published}","observed_at":"{observed}","reactions":{reactions}}}"#
    )
}

fn delta(post: &str, id: Option<&str>, reactions: u64) -> String {
    let id = id.map_or(String::new(), |i| format!(r#","event_id":"{i}""#));
    format!(
        r#"{{"page_id":"pg","post_id":"{post}","kind":"delta","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":{reactions}{id}}}"#
    )
}

fn q(s: &str) -> Quarter {
    s.parse().unwrap()
}

/// Totals of page `pg` in quarter `quarter`.
fn totals(e: &Engine, quarter: &str) -> Totals {
    let v = View::build(e);
    let page = v.find_page("facebook", "pg").expect("page known");
    v.quarter(q(quarter)).and_then(|t| v.row(t, page)).map(|r| r.totals).unwrap_or_default()
}

#[test]
fn newer_snapshot_replaces_older_and_older_is_stale() {
    let mut e = Engine::new(Limits::default());
    assert_eq!(apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-02T00:00:00Z", 10)), Outcome::Applied);
    assert_eq!(apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-03T00:00:00Z", 7)), Outcome::Applied);
    assert_eq!(apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-02T12:00:00Z", 99)), Outcome::Stale);
    assert_eq!(
        apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-03T00:00:00Z", 7)),
        Outcome::Stale,
        "equal pair"
    );
    assert_eq!(
        apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-03T00:00:00Z", 8)),
        Outcome::Applied,
        "same time, more"
    );
    let t = totals(&e, "2025-Q3");
    assert_eq!((t.reactions, t.posts), (8, 1));
}

#[test]
fn deltas_add_and_repeated_event_ids_are_duplicates() {
    let mut e = Engine::new(Limits::default());
    assert_eq!(apply(&mut e, &delta("d", Some("e1"), 5)), Outcome::Applied);
    assert_eq!(apply(&mut e, &delta("d", Some("e2"), 6)), Outcome::Applied);
    assert_eq!(apply(&mut e, &delta("d", Some("e1"), 5)), Outcome::Duplicate);
    assert_eq!(apply(&mut e, &delta("d", None, 1)), Outcome::Applied, "no id: always applied");
    assert_eq!(totals(&e, "2025-Q3").reactions, 12);
}

#[test]
fn the_first_event_decides_how_a_post_is_tracked() {
    let mut e = Engine::new(Limits::default());
    apply(&mut e, &delta("d", Some("e1"), 5));
    assert_eq!(apply(&mut e, &snap("d", "2025-07-01T00:00:00Z", "2025-07-05T00:00:00Z", 1)), Outcome::Conflict);
    apply(&mut e, &snap("s", "2025-07-01T00:00:00Z", "2025-07-05T00:00:00Z", 1));
    assert_eq!(apply(&mut e, &delta("s", Some("e9"), 5)), Outcome::Conflict);
    assert_eq!(totals(&e, "2025-Q3").reactions, 6);
}

#[test]
fn late_observations_count_for_the_publication_quarter() {
    let mut e = Engine::new(unguarded(Limits::default()));
    apply(&mut e, &snap("a", "2025-09-30T23:00:00Z", "2025-09-30T23:30:00Z", 10));
    apply(&mut e, &snap("a", "2025-09-30T23:00:00Z", "2025-11-15T00:00:00Z", 500));
    assert_eq!(totals(&e, "2025-Q3").reactions, 500);
    assert_eq!(totals(&e, "2025-Q4").posts, 0);
    assert_eq!(e.current(), Some(q("2025-Q4")));
}

#[test]
fn posts_before_the_retained_quarters_are_expired_and_freed() {
    let windows = Windows::new(&[("quarter", Some(1))], &["30d"]).unwrap();
    let mut e = Engine::new(unguarded(Limits { windows, ..Limits::default() }));
    apply(&mut e, &snap("old", "2025-01-10T00:00:00Z", "2025-01-11T00:00:00Z", 3));
    assert_eq!(e.usage().posts, 1);
    apply(&mut e, &snap("new", "2025-07-10T00:00:00Z", "2025-07-11T00:00:00Z", 4));
    assert_eq!(e.usage().posts, 1, "2025-Q1 left retention when 2025-Q3 became current");
    assert_eq!(apply(&mut e, &snap("old", "2025-01-10T00:00:00Z", "2025-07-12T00:00:00Z", 9)), Outcome::Expired);
    assert_eq!(apply(&mut e, &snap("q2", "2025-04-10T00:00:00Z", "2025-07-12T00:00:00Z", 9)), Outcome::Applied);
    assert_eq!(View::build(&e).quarters().count(), 2);
}

#[test]
fn watermark_is_the_greatest_observation_of_valid_events() {
    let mut e = Engine::new(Limits::default());
    apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-08-01T00:00:00Z", 1));
    apply(&mut e, &snap("a", "2025-07-01T00:00:00Z", "2025-07-15T00:00:00Z", 1));
    assert_eq!(e.watermark(), Some(ts("2025-08-01T00:00:00Z")));
}

#[test]
fn followers_are_the_latest_sample_in_each_window() {
    let mut e = Engine::new(Limits::default());
    let with_followers = |post: &str, observed: &str, f: u64| {
        format!(
            r#"{{"page_id":"pg","post_id":"{post}","published_at":"2025-06-01T00:00:00Z","observed_at":"{observed}","followers":{f}}}"#
        )
    };
    apply(&mut e, &with_followers("a", "2025-06-20T00:00:00Z", 100));
    apply(&mut e, &with_followers("b", "2025-06-25T00:00:00Z", 200));
    apply(&mut e, &with_followers("a", "2025-06-21T00:00:00Z", 150)); // older than 200's sample
    apply(&mut e, &with_followers("c", "2025-07-02T00:00:00Z", 300));
    apply(
        &mut e,
        r#"{"page_id":"pg","post_id":"x","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-03T00:00:00Z"}"#,
    );
    let v = View::build(&e);
    let f = |quarter: &str| v.row_at(v.quarter(q(quarter)).unwrap(), 0).followers;
    assert_eq!(f("2025-Q2"), Some(200));
    assert_eq!(f("2025-Q3"), Some(300));
}

#[test]
fn page_names_come_from_the_latest_observation() {
    let mut e = Engine::new(Limits::default());
    let named = |observed: &str, name: &str| {
        format!(
            r#"{{"page_id":"pg","post_id":"a","published_at":"2025-07-01T00:00:00Z","observed_at":"{observed}","page_name":"{name}"}}"#
        )
    };
    apply(&mut e, &named("2025-07-03T00:00:00Z", "New"));
    apply(&mut e, &named("2025-07-02T00:00:00Z", "Old"));
    assert_eq!(View::build(&e).page(0).name, Some("New"));
}

#[test]
fn bounds_reject_new_things() {
    let limits = Limits { max_pages: 2, max_posts: 3, max_platforms: 2, max_event_ids: 1, ..Limits::default() };
    let mut e = Engine::new(limits);
    let ev = |platform: &str, page: &str, post: &str| {
        format!(
            r#"{{"platform":"{platform}","page_id":"{page}","post_id":"{post}","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z"}}"#
        )
    };
    assert_eq!(apply(&mut e, &ev("fb", "p1", "a")), Outcome::Applied);
    assert_eq!(apply(&mut e, &ev("ig", "p2", "a")), Outcome::Applied);
    assert_eq!(apply(&mut e, &ev("x", "p1", "a")), Outcome::Rejected(Bound::Platforms));
    assert_eq!(apply(&mut e, &ev("fb", "p3", "a")), Outcome::Rejected(Bound::Pages));
    assert_eq!(apply(&mut e, &ev("fb", "p1", "b")), Outcome::Applied);
    assert_eq!(apply(&mut e, &ev("fb", "p1", "c")), Outcome::Rejected(Bound::Posts));
    let mut d = Engine::new(limits);
    assert_eq!(apply(&mut d, &delta("d", Some("e1"), 1)), Outcome::Applied);
    assert_eq!(apply(&mut d, &delta("d", Some("e2"), 1)), Outcome::Rejected(Bound::EventIds));
    assert_eq!(totals(&d, "2025-Q3").reactions, 1);
    assert_eq!(e.usage().posts, 3);
}

#[test]
fn outcome_labels_line_up_with_indices() {
    let all = [
        Outcome::Applied,
        Outcome::Stale,
        Outcome::Duplicate,
        Outcome::Conflict,
        Outcome::Expired,
        Outcome::Invalid,
        Outcome::Rejected(Bound::Posts),
    ];
    for o in all {
        assert_eq!(Outcome::EACH[o.index()].as_str(), o.as_str());
    }
}

#[test]
fn limits_are_validated() {
    assert!(Limits::default().validate().is_ok());
    assert!(Limits { max_pages: MAX_PAGES, ..Limits::default() }.validate().is_err());
}

#[test]
fn counts_near_the_limit_do_not_overflow() {
    let mut e = Engine::new(Limits::default());
    let big = crate::event::COUNT_LIMIT - 1;
    apply(&mut e, &delta("d", Some("1"), big));
    apply(&mut e, &delta("d", Some("2"), big));
    assert_eq!(totals(&e, "2025-Q3").reactions, big, "per-post counts saturate below 2^53");
    let _ = Counts::default();
}

#[test]
fn snapshots_equal_on_time_and_interactions_tie_break_on_counts() {
    let a = r#"{"page_id":"pg","post_id":"p","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":139,"comments":450,"shares":988}"#;
    let b = r#"{"page_id":"pg","post_id":"p","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":426,"comments":708,"shares":443}"#;
    let (mut ab, mut ba) = (Engine::new(Limits::default()), Engine::new(Limits::default()));
    apply(&mut ab, a);
    apply(&mut ab, b);
    apply(&mut ba, b);
    apply(&mut ba, a);
    assert_eq!(totals(&ab, "2025-Q3"), totals(&ba, "2025-Q3"), "same answer in either order");
    assert_eq!(totals(&ab, "2025-Q3").reactions, 426);
}

#[test]
fn top_lists_survive_a_checkpoint_with_ids_of_every_length() {
    let mut e = Engine::new(Limits { top_posts: 3, ..Limits::default() });
    let ids = [
        "a",
        "twenty-three-bytes-long",
        "twenty-four-bytes-long!!",
        "1234567890123456_1234567890123456",
        &"x".repeat(128),
    ];
    for (i, id) in ids.iter().enumerate() {
        let reactions = 100 + i as u64;
        assert_eq!(
            apply(&mut e, &snap(id, "2025-07-01T00:00:00Z", "2025-07-02T00:00:00Z", reactions)),
            Outcome::Applied
        );
    }
    let before = View::build(&e);
    let page = before.find_page("facebook", "pg").unwrap();
    let want: Vec<(String, u64)> =
        ids[2..].iter().rev().zip([104, 103, 102]).map(|(id, n)| (id.to_string(), n)).collect();
    let listed = |v: &View| v.top_posts(page).into_iter().map(|(id, n)| (id.to_owned(), n)).collect::<Vec<_>>();
    assert_eq!(listed(&before), want, "the three with the most interactions");
    let mut file = Vec::new();
    e.durable_snapshot().encode(&mut file).unwrap();
    let restored = Engine::decode(&file[..], e.limits).unwrap();
    assert_eq!(listed(&View::build(&restored)), want);
    // Restored with a smaller list, the posts with the most interactions stay.
    let smaller = Engine::decode(&file[..], Limits { top_posts: 1, ..e.limits }).unwrap();
    assert_eq!(listed(&View::build(&smaller)), want[..1]);
}

#[test]
fn pages_whose_events_come_from_several_partitions_are_counted_once() {
    let mut e = Engine::new(Limits::default());
    let cx =
        DecodeContext { message_time: None, now: ts("2030-01-01T00:00:00Z"), max_skew: 0, max_payload_bytes: 1 << 16 };
    let event = |page: &str, post: &str| {
        format!(
            r#"{{"page_id":"{page}","post_id":"{post}","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":1}}"#
        )
    };
    let apply_on = |e: &mut Engine, json: &[String], partitions: &[u32]| {
        let events: Vec<_> = json.iter().map(|j| decode(j.as_bytes(), &cx)).collect();
        let mut out = Vec::new();
        e.apply_decoded(&events, partitions, &mut out);
        assert!(out.iter().all(|o| *o == Ok(Outcome::Applied)), "{out:?}");
    };
    // Page a on one partition, b on two, c on three; partitions unknown
    // (empty) change nothing.
    let json = [event("a", "1"), event("a", "2"), event("b", "1"), event("b", "2"), event("c", "1"), event("c", "2")];
    apply_on(&mut e, &json, &[0, 0, 1, 2, 1, 2]);
    assert_eq!(e.usage().split_pages, 2);
    apply_on(&mut e, &[event("c", "3"), event("a", "3")], &[3, 0]);
    apply_on(&mut e, &[event("a", "4")], &[]);
    assert_eq!(e.usage().split_pages, 2, "c counted once; a still on one partition");
    apply_on(&mut e, &[event("a", "5")], &[70_000]);
    assert_eq!(e.usage().split_pages, 3);
    assert!(size_of::<super::pages::PageState>() <= 64, "the page state stays within one cache line");
}

#[test]
fn pages_of_a_partition_with_a_history_gap_are_marked_until_the_windows_pass_it() {
    let mut e = Engine::new(unguarded(Limits::default()));
    let cx =
        DecodeContext { message_time: None, now: ts("2030-01-01T00:00:00Z"), max_skew: 0, max_payload_bytes: 1 << 16 };
    let event = |page: &str, observed: &str| {
        format!(
            r#"{{"page_id":"{page}","post_id":"x","published_at":"2025-07-01T00:00:00Z","observed_at":"{observed}","reactions":1}}"#
        )
    };
    let apply_on = |e: &mut Engine, json: &[String], partitions: &[u32]| {
        let events: Vec<_> = json.iter().map(|j| decode(j.as_bytes(), &cx)).collect();
        let mut out = Vec::new();
        e.apply_decoded(&events, partitions, &mut out);
    };
    apply_on(&mut e, &[event("a", "2025-07-02T00:00:00Z"), event("b", "2025-07-02T00:00:00Z")], &[0, 1]);
    let complete = |e: &Engine| {
        let v = View::build(e);
        let of = |id: &str| v.find_page("facebook", id).map(|p| v.page(p).history_complete);
        (of("a"), of("b"), v.incomplete_pages())
    };
    assert_eq!(complete(&e), (Some(true), Some(true), 0));
    e.track_increments();
    e.note_gap(1);
    assert_eq!(complete(&e), (Some(true), Some(false), 1), "b's partition lost records");
    // Both a checkpoint and an increment carry the gap and the pages' partitions.
    let mut file = Vec::new();
    e.durable_snapshot().encode(&mut file).unwrap();
    let restored = Engine::decode(&file[..], e.limits).unwrap();
    assert_eq!(complete(&restored), (Some(true), Some(false), 1));
    e.close_gap(1);
    let mut inc = Vec::new();
    e.take_increment(&mut inc);
    let mut from_increment = Engine::decode(&file[..], e.limits).unwrap();
    from_increment.apply_increment(&inc).unwrap();
    assert_eq!(from_increment.gaps(), e.gaps());
    // Caught up at 2025-07-02: marked until the cutoff passes it.
    apply_on(&mut e, &[event("a", "2025-12-31T00:00:00Z")], &[0]);
    assert!(e.cutoff().unwrap() <= ts("2025-07-02T00:00:00Z"));
    assert_eq!(complete(&e).1, Some(false));
    apply_on(&mut e, &[event("a", "2027-06-02T00:00:00Z")], &[0]);
    assert!(e.cutoff().unwrap() > ts("2025-07-02T00:00:00Z"));
    assert!(e.gaps().is_empty(), "every window has moved past the gap");
    assert_eq!(complete(&e).2, 0);
    assert!(Engine::decode_version(&file[..], e.limits, OLDEST_STATE_VERSION - 1).is_err());
}

/// `limits` with any jump of the watermark taken at once.
fn unguarded(limits: Limits) -> Limits {
    Limits { max_watermark_jump: std::time::Duration::ZERO, ..limits }
}

#[test]
fn one_event_far_ahead_cannot_move_the_watermark_or_drop_a_quarter() {
    use super::jump::Notice;
    let mut e = Engine::new(Limits { watermark_jump_quorum: 3, ..Limits::default() });
    apply(&mut e, &snap("a", "2025-08-01T00:00:00Z", "2025-09-30T00:00:00Z", 10));
    e.take_notices();
    let before = (e.watermark(), totals(&e, "2025-Q3").reactions);
    // Fourteen months ahead (an event without observed_at, read at message time).
    let far = snap("b", "2026-12-01T00:00:00Z", "2026-12-06T00:00:00Z", 7);
    assert_eq!(apply(&mut e, &far), Outcome::Rejected(Bound::WatermarkJump));
    assert_eq!((e.watermark(), totals(&e, "2025-Q3").reactions), before, "nothing moved");
    let (notices, _) = e.take_notices();
    assert_eq!(
        notices,
        [Notice::JumpHeld { watermark: ts("2025-09-30T00:00:00Z"), observed: ts("2026-12-06T00:00:00Z"), quorum: 3 }]
    );
    // Six days ahead is within the default 31.
    assert_eq!(apply(&mut e, &snap("a", "2025-08-01T00:00:00Z", "2025-10-06T00:00:00Z", 11)), Outcome::Applied);
    // The stream corroborates: the third event past the jump is taken.
    assert_eq!(
        apply(&mut e, &snap("c", "2026-12-01T00:00:00Z", "2026-12-06T00:00:00Z", 1)),
        Outcome::Rejected(Bound::WatermarkJump)
    );
    assert_eq!(apply(&mut e, &snap("d", "2026-12-01T00:00:00Z", "2026-12-06T01:00:00Z", 1)), Outcome::Applied);
    assert_eq!(e.watermark(), Some(ts("2026-12-06T01:00:00Z")));
    let (notices, _) = e.take_notices();
    assert!(notices.contains(&Notice::JumpTaken {
        from: ts("2025-10-06T00:00:00Z"),
        to: ts("2026-12-06T01:00:00Z"),
        events: 3
    }));
    let dropped: Vec<String> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::PeriodDropped { period, .. } => Some(period.to_string()),
            _ => None,
        })
        .collect();
    assert!(dropped.contains(&"2025-Q3".to_string()), "retention dropped 2025-Q3, and said so: {notices:?}");
}

/// The posts of page `pg`'s top list of `quarter`, as (id, interactions).
fn top_of(e: &Engine, quarter: &str) -> Vec<(String, u64)> {
    let v = View::build(e);
    let page = v.find_page("facebook", "pg").expect("page known");
    v.top_posts_of(page, q(quarter)).into_iter().map(|(id, n)| (id.to_owned(), n)).collect()
}

#[test]
fn a_quarters_top_list_is_kept_once_the_next_begins_and_goes_with_its_quarter() {
    // The history jumps by quarters: no watermark guard.
    let limits = Limits { top_posts: 2, max_watermark_jump: std::time::Duration::ZERO, ..Limits::default() };
    let mut e = Engine::new(limits);
    let kept = limits.windows.retention(CalendarKind::Quarter).expect("quarters are configured");
    for (post, n) in [("q2-a", 5), ("q2-b", 9), ("q2-c", 1)] {
        assert_eq!(apply(&mut e, &snap(post, "2025-05-01T00:00:00Z", "2025-05-02T00:00:00Z", n)), Outcome::Applied);
    }
    assert_eq!(top_of(&e, "2025-Q2"), [("q2-b".into(), 9), ("q2-a".into(), 5)]);
    // The first post of Q3 begins its list; Q2's is kept, and late
    // observations of Q2's posts still change it, by the same rule.
    assert_eq!(apply(&mut e, &snap("q3-a", "2025-07-05T00:00:00Z", "2025-07-06T00:00:00Z", 3)), Outcome::Applied);
    assert_eq!(top_of(&e, "2025-Q3"), [("q3-a".into(), 3)]);
    assert_eq!(top_of(&e, "2025-Q2"), [("q2-b".into(), 9), ("q2-a".into(), 5)]);
    assert_eq!(apply(&mut e, &snap("q2-c", "2025-05-01T00:00:00Z", "2025-07-07T00:00:00Z", 20)), Outcome::Applied);
    assert_eq!(apply(&mut e, &snap("q2-d", "2025-06-30T00:00:00Z", "2025-07-07T00:00:00Z", 2)), Outcome::Applied);
    assert_eq!(top_of(&e, "2025-Q2"), [("q2-c".into(), 20), ("q2-b".into(), 9)]);
    assert_eq!(top_of(&e, "2025-Q3"), [("q3-a".into(), 3)], "the live list is untouched");
    // Once no window names Q2 any more, its list goes.
    let later = Quarter::from_index(q("2025-Q2").index() + kept as i32 + 1);
    let start = later.start();
    let at = crate::window::format_rfc3339(start + DAY_MS);
    assert_eq!(apply(&mut e, &snap("late", &at, &at, 1)), Outcome::Applied);
    assert!(top_of(&e, "2025-Q2").is_empty(), "Q2 is out of the windows");
}
