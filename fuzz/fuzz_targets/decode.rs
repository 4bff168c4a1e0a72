//! libFuzzer target: any bytes through `event::decode`, and what decodes
//! through `Engine::apply`. Must never panic; refusals carry a short reason.
#![no_main]

use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cx = DecodeContext { message_time: Some(1_752_487_200_000), now: 1_800_000_000_000, max_skew: 3_600_000, max_payload_bytes: 1 << 16 };
    match decode(data, &cx) {
        Ok(ev) => {
            let mut engine = Engine::new(Limits::default());
            engine.apply(&ev);
        }
        Err(e) => assert!(!e.0.is_empty() && e.0.len() <= 64),
    }
});
