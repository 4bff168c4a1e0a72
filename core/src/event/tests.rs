use super::*;

const NOW: Millis = 1_800_000_000_000; // 2027-01-15

fn cx() -> DecodeContext {
    DecodeContext { message_time: Some(1_752_487_200_000), now: NOW, max_skew: 3_600_000, max_payload_bytes: 65_536 }
}

fn ok(json: &str) -> Event<'_> {
    decode(json.as_bytes(), &cx()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn err(json: &[u8]) -> &'static str {
    match decode(json, &cx()) {
        Ok(e) => panic!("accepted {:?}: {e:?}", String::from_utf8_lossy(json)),
        Err(Invalid(reason)) => reason,
    }
}

const BASE: &str = r#""page_id":"whitehouse","post_id":"p1","published_at":"2025-07-14T10:00:00Z""#;

fn with(extra: &str) -> String {
    format!("{{{BASE}{extra}}}")
}

#[test]
fn minimal_event_takes_the_spec_defaults() {
    let je = with("");
    let e = ok(&je);
    assert_eq!(e.platform, "facebook");
    assert_eq!(e.kind, Tracking::Snapshot);
    assert_eq!(e.counts, Counts::default());
    assert_eq!(e.followers, None);
    assert_eq!(e.page_name, None);
    assert_eq!(e.event_id, None);
    assert_eq!(e.observed_at, cx().message_time.unwrap(), "observed_at defaults to the message time");
}

#[test]
fn full_event_decodes_borrowed() {
    let json = with(
        r#","observed_at":1752490800000,"platform":"instagram","page_name":"وزارة الداخلية","kind":"delta",
           "reactions":1,"comments":2,"shares":3,"views":4,"followers":5,"event_id":"e-1","extra":{"x":[1,2]}"#,
    );
    let e = ok(&json);
    assert!(matches!(e.page_id, Cow::Borrowed(_)));
    assert!(matches!(e.page_name, Some(Cow::Borrowed("وزارة الداخلية"))));
    assert_eq!(e.observed_at, 1_752_490_800_000);
    assert_eq!(e.kind, Tracking::Delta);
    assert_eq!((e.counts.interactions(), e.counts.views, e.followers), (6, 4, Some(5)));
    assert_eq!(e.event_id.as_deref(), Some("e-1"));
}

#[test]
fn escaped_strings_are_decoded() {
    let e = ok(r#"{"page_id":"a\"b","post_id":"\u0645","published_at":"2025-07-14T10:00:00Z"}"#);
    assert_eq!((&*e.page_id, &*e.post_id), ("a\"b", "م"));
}

#[test]
fn null_optional_fields_mean_absent() {
    let je = with(r#","platform":null,"followers":null,"kind":null"#);
    let e = ok(&je);
    assert_eq!((e.platform.as_ref(), e.followers, e.kind), ("facebook", None, Tracking::Snapshot));
}

#[test]
fn both_timestamp_forms_agree() {
    let ja = with(r#","observed_at":"2025-07-15T02:00:00+02:00""#);
    let a = ok(&ja);
    let jb = with(r#","observed_at":1752537600000"#);
    let b = ok(&jb);
    assert_eq!(a.observed_at, b.observed_at);
}

#[test]
fn every_invalid_case_has_its_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty payload"),
        (b"[1,2]", "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"\"x\"", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"{\"page_id\":", "malformed JSON"),
        (b"{\"page_id\":\"\xff\"}", "invalid UTF-8"),
        (b"{} trailing", "malformed JSON"),
        (br#"{"post_id":"p","published_at":0}"#, "missing page_id"),
        (br#"{"page_id":null,"post_id":"p","published_at":0}"#, "missing page_id"),
        (br#"{"page_id":7,"post_id":"p","published_at":0}"#, "page_id has the wrong type"),
        (br#"{"page_id":"","post_id":"p","published_at":0}"#, "page_id out of range"),
        (br#"{"page_id":"a\nb","post_id":"p","published_at":0}"#, "page_id has control characters"),
        (br#"{"page_id":"a","published_at":0}"#, "missing post_id"),
        (br#"{"page_id":"a","post_id":"p"}"#, "missing published_at"),
        (br#"{"page_id":"a","post_id":"p","published_at":"soon"}"#, "published_at is not a timestamp"),
        (br#"{"page_id":"a","post_id":"p","published_at":-1}"#, "published_at out of range"),
        (br#"{"page_id":"a","post_id":"p","published_at":1.5}"#, "published_at has the wrong type"),
        (br#"{"page_id":"a","post_id":"p","published_at":0,"page_id":"b"}"#, "duplicate field"),
    ];
    for (json, reason) in cases {
        assert_eq!(err(json), *reason, "{}", String::from_utf8_lossy(json));
    }
}

#[test]
fn field_range_and_type_errors() {
    let cases = [
        (r#","reactions":-1"#, "reactions out of range"),
        (r#","comments":9007199254740992"#, "comments out of range"),
        (r#","shares":1e300"#, "shares out of range"),
        (r#","views":"12""#, "views has the wrong type"),
        (r#","followers":2.5"#, "followers has the wrong type"),
        (r#","reactions":true"#, "reactions has the wrong type"),
        (r#","platform":"Facebook""#, "platform has characters outside [a-z0-9_]"),
        (r#","platform":"""#, "platform out of range"),
        (r#","kind":"total""#, "kind is neither snapshot nor delta"),
        (r#","kind":1"#, "kind has the wrong type"),
        (r#","event_id":"""#, "event_id out of range"),
        (r#","page_name":["x"]"#, "page_name has the wrong type"),
        (r#","observed_at":"2025-07-14T09:59:59Z""#, "published_at after observed_at"),
        (r#","observed_at":1800003600001"#, "observed_at too far in the future"),
    ];
    for (extra, reason) in cases {
        assert_eq!(err(with(extra).as_bytes()), reason, "{extra}");
    }
}

#[test]
fn largest_valid_count_is_accepted() {
    assert_eq!(ok(&with(r#","reactions":9007199254740991"#)).counts.reactions, COUNT_LIMIT - 1);
}

#[test]
fn length_limits_are_in_bytes() {
    let long = "x".repeat(128);
    assert!(decode(with(&format!(r#","event_id":"{long}""#)).as_bytes(), &cx()).is_ok());
    assert_eq!(err(with(&format!(r#","event_id":"{long}x""#)).as_bytes()), "event_id out of range");
    let name = "م".repeat(129); // 258 bytes
    assert_eq!(err(with(&format!(r#","page_name":"{name}""#)).as_bytes()), "page_name out of range");
    assert_eq!(err(with(&format!(r#","platform":"{}""#, "a".repeat(33))).as_bytes()), "platform out of range");
}

#[test]
fn observed_at_needs_a_message_time_when_absent() {
    let mut c = cx();
    c.message_time = None;
    assert_eq!(decode(with("").as_bytes(), &c), Err(Invalid("missing observed_at")));
}

#[test]
fn deep_nesting_and_huge_payloads_are_refused() {
    let mut c = cx();
    c.max_payload_bytes = 1 << 20;
    let deep = format!("{{\"page_id\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(decode(deep.as_bytes(), &c), Err(Invalid("page_id has the wrong type")));
    let unclosed = format!("{{\"x\":{}", "{\"a\":".repeat(100_000));
    assert_eq!(decode(unclosed.as_bytes(), &c), Err(Invalid("malformed JSON")));
    c.max_payload_bytes = 16;
    assert_eq!(decode(with("").as_bytes(), &c), Err(Invalid("payload too large")));
}

#[test]
fn unknown_fields_of_any_shape_are_ignored() {
    let je = with(r#","x":null,"y":{"z":[{"a":1}]},"reactions ":5"#);
    let e = ok(&je);
    assert_eq!(e.counts.reactions, 0);
}

mod fast_path {
    use proptest::prelude::*;

    use super::*;

    /// A JSON value for any field: mostly what events carry, some of the
    /// corners the fast path must leave to the reference decoder.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            4 => "[a-z0-9_.]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => "[ -~]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            1 => prop_oneof![Just(r#""a\nb""#), Just(r#""\u00e9""#), Just(r#""\ud83d\ude00""#), Just("\"\u{7f}\u{85}x\"")]
                .prop_map(String::from),
            1 => Just("\"\u{1}\"".to_string()),
            4 => (0u64..100_000).prop_map(|n| n.to_string()),
            1 => prop_oneof![Just("9007199254740992"), Just("18446744073709551616"), Just("00"), Just("-0"), Just("-1"),
                Just("1.0"), Just("1.5"), Just("1e3"), Just("1E400"), Just("-2.50")]
                .prop_map(String::from),
            2 => prop_oneof![Just("2025-07-14T10:00:00Z"), Just("2025-07-15T12:00:00.5+02:00"), Just("2025-13-01T00:00:00Z"),
                Just("1752487200000"), Just("2025-07-14 10:00:00")]
                .prop_map(|t| if t.starts_with('1') { t.to_string() } else { format!("\"{t}\"") }),
            1 => prop_oneof![Just("null"), Just("true"), Just("false"), Just("nul")].prop_map(String::from),
            1 => prop_oneof![Just("\"snapshot\""), Just("\"delta\"")].prop_map(String::from),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..3).prop_map(|v| {
                    let members: Vec<String> = v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => proptest::sample::select(super::FIELD_NAMES).prop_map(String::from),
            1 => "[a-z_]{1,10}",
            1 => Just("page\\u005fid".to_string()),
        ]
    }

    /// Objects that are often valid events: the required fields first, then
    /// any others (possibly repeated), with random white space.
    fn object() -> impl Strategy<Value = String> {
        let ws = prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t")];
        let base = (0u32..3, 0u32..50, 0i64..2_000_000_000).prop_map(|(page, post, t)| {
            format!(r#""page_id":"p{page}","post_id":"x{post}","published_at":{}"#, 1_752_000_000_000 + t)
        });
        (base, proptest::collection::vec((key(), value(), ws.clone()), 0..6), ws, proptest::bool::ANY).prop_map(
            |(base, rest, ws, keep_base)| {
                let mut members: Vec<String> = if keep_base { vec![base] } else { Vec::new() };
                members.extend(rest.into_iter().map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}")));
                format!("{ws}{{{}}}{ws}", members.join(","))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever the fast path accepts, it decodes exactly as the
        /// reference decoder does; whatever it refuses, the reference decides.
        #[test]
        fn the_fast_path_agrees_with_the_reference(json in object()) {
            let via_decode = decode(json.as_bytes(), &cx());
            let reference = super::super::reference::decode(json.as_bytes(), &cx());
            prop_assert_eq!(via_decode, reference, "{}", json);
        }
    }

    #[test]
    fn typical_events_take_the_fast_path() {
        let typical = [
            with(""),
            with(
                r#","observed_at":1752490800000,"platform":"instagram","page_name":"وزارة الداخلية","kind":"delta","reactions":1,"comments":2,"shares":3,"views":4,"followers":5,"event_id":"e-1""#,
            ),
            with(r#","meta":{"source":"crawler","tags":["a","b"],"score":0.75,"ok":true,"note":"line\nbreak"}"#),
        ];
        for json in typical {
            assert!(super::super::scan::wire(json.as_bytes()).is_some(), "{json}");
        }
        let mut buf = Vec::new();
        let mut stream = crate::synth::RandomStream::new(100, 5, crate::synth::seed_quarter(), 1);
        for _ in 0..100 {
            stream.next_into(&mut buf);
            assert!(super::super::scan::wire(&buf).is_some(), "{}", String::from_utf8_lossy(&buf));
        }
    }
}
