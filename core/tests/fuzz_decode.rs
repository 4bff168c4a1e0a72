//! Fuzzing the decoder with proptest (the CI-sized stand-in for the
//! cargo-fuzz target in `fuzz/`): arbitrary bytes and JSON-shaped objects
//! with the known fields and random values never panic, always get a short
//! static reason when refused, and decode the same way twice; what decodes
//! is applied to an engine without panicking.

use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, FIELD_NAMES, decode};
use proptest::prelude::*;

fn cx() -> DecodeContext {
    DecodeContext {
        message_time: Some(1_752_487_200_000),
        now: 1_800_000_000_000,
        max_skew: 3_600_000,
        max_payload_bytes: 1 << 16,
    }
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z0-9_ \"\\\\\u{0}-\u{1f}é م🚀]{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("\"2025-07-14T10:00:00Z\"".to_string()),
        Just("\"2025-07-14T12:00:00+02:00\"".to_string()),
        Just("\"delta\"".to_string()),
        Just("\"snapshot\"".to_string()),
        (0i64..2_000_000_000_000).prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(("[a-z]{1,6}", inner), 0..3).prop_map(|v| format!(
                "{{{}}}",
                v.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
            )),
        ]
    })
}

fn object() -> impl Strategy<Value = String> {
    let names: Vec<&str> = FIELD_NAMES.iter().copied().chain(["extra"]).collect();
    proptest::collection::vec((proptest::sample::select(names), value()), 0..14).prop_map(|fields| {
        format!("{{{}}}", fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","))
    })
}

fn check(bytes: &[u8], engine: &mut Engine) -> Result<(), TestCaseError> {
    let first = decode(bytes, &cx());
    let again = decode(bytes, &cx());
    prop_assert_eq!(&first, &again, "decoding is deterministic");
    match first {
        Ok(ev) => {
            engine.apply(&ev);
        }
        Err(e) => {
            prop_assert!(!e.0.is_empty() && e.0.len() <= 64, "reason {:?}", e.0);
            prop_assert!(e.0.bytes().all(|b| b.is_ascii_alphanumeric() || b" _.[]-".contains(&b)), "{:?}", e.0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut engine = Engine::new(Limits::default());
        check(&bytes, &mut engine)?;
    }

    #[test]
    fn json_shaped_objects_never_panic(objects in proptest::collection::vec(object(), 1..8)) {
        let mut engine = Engine::new(Limits::default());
        for o in &objects {
            check(o.as_bytes(), &mut engine)?;
        }
        let view = engagement_core::view::View::build(&engine);
        prop_assert!(view.usage.posts <= objects.len());
    }
}
