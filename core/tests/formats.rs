//! A state written by the previous format (4, before pages carried their
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
