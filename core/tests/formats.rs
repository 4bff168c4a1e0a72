//! Formats of older releases still read. A state written by the previous format (4, before pages carried their
//! partition and engines their history gaps) reads into an engine that
//! answers as one built from the same events today, so an upgrade keeps
//! its checkpoints and state topics. The fixture is the first 600 events
//! of the seed data set over three partitions (`i % 3`), encoded by the
//! build of format 4.

use engagement_core::engine::{Engine, Limits, OLDEST_STATE_VERSION};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::view::View;

#[allow(dead_code)] // the shared helpers; this test uses `rankings` only
mod common;

const V4: &[u8] = include_bytes!("fixtures/state-v4.bin");

#[test]
fn a_format_4_state_answers_as_the_events_it_was_built_from() {
    assert_eq!(OLDEST_STATE_VERSION, 4);
    let limits = Limits { max_watermark_jump: std::time::Duration::ZERO, ..Limits::default() };
    let cx = DecodeContext { message_time: None, now: 4_000_000_000_000, max_skew: 0, max_payload_bytes: 1 << 16 };
    let events = engagement_core::synth::seed_events();
    let decoded: Vec<_> = events.iter().take(600).map(|j| decode(j.as_bytes(), &cx)).collect();
    let partitions: Vec<u32> = (0..decoded.len() as u32).map(|i| i % 3).collect();
    let mut built = Engine::new(limits);
    built.apply_decoded(&decoded, &partitions, &mut Vec::new());

    let read = Engine::decode_version(V4, limits, 4).expect("a format 4 state reads");
    assert_eq!(common::rankings(&View::build(&read)), common::rankings(&View::build(&built)));
    // Format 4 has no figures per day: they are rebuilt from the posts.
    assert_eq!(common::series(&View::build(&read)), common::series(&View::build(&built)));
    assert_eq!(read.usage().posts, built.usage().posts);
    assert!(read.gaps().is_empty());
    // Read as the current format, the same bytes are refused, never misread.
    assert!(Engine::decode(V4, limits).is_err());
    // Written again, it is the current format, and reads back the same.
    let mut bytes = Vec::new();
    read.durable_snapshot().encode(&mut bytes).unwrap();
    let again = Engine::decode(&bytes[..], limits).unwrap();
    assert_eq!(common::rankings(&View::build(&again)), common::rankings(&View::build(&built)));
}

/// Page records of format 2 (fixed-width numbers, before varints) still
/// read: a compacted page-totals topic keeps an older release's records
/// until their pages change. The fixture holds the five pages of the whole
/// seed data set on one partition, each record after its length (u32),
/// encoded by the build of format 2.
#[test]
fn format_2_page_records_read_as_the_records_of_today() {
    use engagement_core::global::PageRecord;
    const V2: &[u8] = include_bytes!("fixtures/page-records-v2.bin");
    let limits = Limits { max_watermark_jump: std::time::Duration::ZERO, ..Limits::default() };
    let cx = DecodeContext { message_time: None, now: 4_000_000_000_000, max_skew: 0, max_payload_bytes: 1 << 16 };
    let events = engagement_core::synth::seed_events();
    let decoded: Vec<_> = events.iter().map(|j| decode(j.as_bytes(), &cx)).collect();
    let mut built = Engine::new(limits);
    built.apply_decoded(&decoded, &vec![0; decoded.len()], &mut Vec::new());
    let snap = built.snapshot();
    let today: Vec<PageRecord> = (0..snap.page_bound()).filter_map(|p| PageRecord::of(&snap, p, 0)).collect();

    let mut old = Vec::new();
    let mut rest = V2;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (record, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        assert_eq!(record[0], 2, "the fixture is of format 2");
        old.push(PageRecord::decode(record).expect("a format 2 record reads"));
        rest = tail;
    }
    assert_eq!(old.len(), 5);
    // Format 2 has no figures per day: a page's series is empty until its
    // next record.
    assert!(old.iter().all(|r| r.days.is_empty()));
    assert!(today.iter().all(|r| !r.days.is_empty()));
    // Nor lists kept for earlier quarters (the seed's posts are all of one
    // quarter, so today's have none either).
    assert!(old.iter().all(|r| r.kept.is_empty()));
    let without_days: Vec<PageRecord> =
        today.iter().map(|r| PageRecord { days: Vec::new(), kept: Vec::new(), ..r.clone() }).collect();
    assert_eq!(old, without_days);
    assert!(old.iter().any(|r| r.top.is_some() && !r.periods.is_empty() && !r.since.is_empty()));
    // Today's encoding reads back the same; without the days (format 3's
    // fields) in fewer than half the bytes of format 2.
    let (v2_bytes, mut v3_bytes) = (V2.len() - 4 * old.len(), 0);
    for (r, bare) in today.iter().zip(&without_days) {
        assert_eq!(&PageRecord::decode(&r.encode()).unwrap(), r);
        // Format 4 is format 5 without the trailing count of kept lists,
        // and format 3 is format 4 without the trailing day count.
        let mut v4 = bare.encode();
        assert_eq!((v4[0], v4.pop()), (5, Some(0)));
        v4[0] = 4;
        assert_eq!(&PageRecord::decode(&v4).expect("a format 4 record reads"), bare);
        let mut v3 = v4;
        assert_eq!(v3.pop(), Some(0));
        v3[0] = 3;
        v3_bytes += v3.len();
        assert_eq!(&PageRecord::decode(&v3).expect("a format 3 record reads"), bare);
    }
    assert!(v3_bytes * 2 < v2_bytes, "format 3 takes {v3_bytes} bytes, format 2 {v2_bytes}");
}
