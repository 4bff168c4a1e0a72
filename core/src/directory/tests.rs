use super::*;

fn dir() -> Directory {
    Directory::new(DirectoryLimits { max_groups_per_page: 4, max_values: 8, max_pages: 4 })
}

fn put(d: &mut Directory, key: &str, value: &str) -> Result<Change, Refused> {
    d.apply(Some(key.as_bytes()), Some(value.as_bytes()))
}

const MOI: &str = r#"{"platform":"facebook","page_id":"moi.egy","groups":{"category":"government","country":"EG","list":["mena-security","g20-gov"]}}"#;

#[test]
fn a_record_sets_groups_a_later_one_replaces_them_a_tombstone_removes_them() {
    let mut d = dir();
    assert_eq!(put(&mut d, "facebook/moi.egy", MOI), Ok(Change::Put));
    assert_eq!(
        d.groups_of("facebook", "moi.egy"),
        vec![("category", "government"), ("country", "EG"), ("list", "g20-gov"), ("list", "mena-security")]
    );
    let (gov, eg) = (d.group("category:government").unwrap(), d.group("country:EG").unwrap());
    assert!(d.has_all("facebook", "moi.egy", &[gov, eg]));
    let ids = [gov, eg];
    assert_eq!(d.pages_in(&ids).collect::<Vec<_>>(), vec![("facebook", "moi.egy")]);

    put(&mut d, "facebook/moi.egy", r#"{"page_id":"moi.egy","groups":{"category":"media"},"page_name":"MoI"}"#)
        .unwrap();
    assert_eq!(d.groups_of("facebook", "moi.egy"), vec![("category", "media")]);
    assert_eq!(d.group("category:government"), None, "a group no page holds is freed");
    assert_eq!(d.name_of("facebook", "moi.egy"), Some("MoI"));

    assert_eq!(d.apply(Some(b"facebook/moi.egy"), None), Ok(Change::Removed));
    assert!(d.is_empty());
    assert!(d.groups_of("facebook", "moi.egy").is_empty());
    assert!(d.listing().is_empty());
    assert_eq!(d.group("category:media"), None);
}

#[test]
fn listing_counts_pages_per_value_and_shared_sets_are_interned_once() {
    let mut d = dir();
    for id in ["a", "b", "c"] {
        let v = format!(r#"{{"page_id":"{id}","groups":{{"category":"government","country":"EG"}}}}"#);
        put(&mut d, &format!("facebook/{id}"), &v).unwrap();
    }
    put(&mut d, "x/d", r#"{"platform":"x","page_id":"d","groups":{"category":"government"}}"#).unwrap();
    let listing = d.listing();
    assert_eq!(listing["category"], vec![("government", 4)]);
    assert_eq!(listing["country"], vec![("EG", 3)]);
    let (gov, eg) = (d.group("category:government").unwrap(), d.group("country:EG").unwrap());
    let ids = [eg, gov];
    let mut both: Vec<_> = d.pages_in(&ids).collect();
    both.sort_unstable();
    assert_eq!(both, vec![("facebook", "a"), ("facebook", "b"), ("facebook", "c")]);
    assert_eq!(d.pages_in(&[gov]).count(), 4);
    assert_eq!(d.group_pages(gov), 4);
    d.remove("facebook", "a");
    assert_eq!(d.listing()["country"], vec![("EG", 2)]);
}

#[test]
fn a_file_line_needs_no_key_and_a_key_must_name_the_page() {
    let mut d = dir();
    assert_eq!(d.apply(None, Some(MOI.as_bytes())), Ok(Change::Put));
    assert_eq!(put(&mut d, "facebook/other", MOI), Err(Refused::KeyMismatch));
    assert_eq!(put(&mut d, "x/moi.egy", MOI), Err(Refused::KeyMismatch));
    assert_eq!(d.len(), 1);
}

/// A bad record: key, value, and the reason it is refused for.
type Bad = (Option<&'static [u8]>, Option<String>, Refused);

/// Each kind of bad record with the reason it is counted under; none
/// changes what the directory held.
#[test]
fn hostile_records_are_refused_by_reason_and_change_nothing() {
    let long_value = "v".repeat(65);
    let long_id = "p".repeat(129);
    let huge = format!(r#"{{"page_id":"a","pad":"{}"}}"#, "x".repeat(MAX_RECORD_BYTES));
    let five = r#"{"page_id":"a","groups":{"a":["1","2","3"],"b":["4","5"]}}"#;
    let corpus: Vec<Bad> = vec![
        (Some(b"facebook/a"), Some(huge), Refused::TooLarge),
        (Some(b"facebook/a"), Some("{".into()), Refused::NotJson),
        (Some(b"facebook/a"), Some("\u{0}garbage".into()), Refused::NotJson),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a"} trailing"#.into()), Refused::NotJson),
        (Some(b"facebook/a"), Some("[1,2]".into()), Refused::NotObject),
        (Some(b"facebook/a"), Some(r#""a string""#.into()), Refused::NotObject),
        (Some(b"facebook/a"), Some("null".into()), Refused::NotObject),
        (Some(b"\xff\xfe"), Some(r#"{"page_id":"a"}"#.into()), Refused::BadKey),
        (Some(b"no-slash"), Some(r#"{"page_id":"a"}"#.into()), Refused::BadKey),
        (None, None, Refused::BadKey),
        (Some(b"Face Book/a"), None, Refused::BadKey),
        (Some(b"facebook/b"), Some(r#"{"page_id":"a"}"#.into()), Refused::KeyMismatch),
        (Some(b"facebook/a"), Some(r#"{"groups":{}}"#.into()), Refused::BadPageId),
        (Some(b"facebook/a"), Some(r#"{"page_id":7}"#.into()), Refused::BadPageId),
        (Some(b"facebook/a"), Some(r#"{"page_id":""}"#.into()), Refused::BadPageId),
        (None, Some(format!(r#"{{"page_id":"{long_id}"}}"#)), Refused::BadPageId),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a\u0007"}"#.into()), Refused::BadPageId),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","platform":"Face Book"}"#.into()), Refused::BadPlatform),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","platform":3}"#.into()), Refused::BadPlatform),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","page_name":["x"]}"#.into()), Refused::BadPageName),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","page_name":""}"#.into()), Refused::BadPageName),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":["category"]}"#.into()), Refused::BadGroups),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":"government"}"#.into()), Refused::BadGroups),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"Category":"x"}}"#.into()), Refused::BadDimension),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"9lives":"x"}}"#.into()), Refused::BadDimension),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"":"x"}}"#.into()), Refused::BadDimension),
        (
            Some(b"facebook/a"),
            Some(format!(r#"{{"page_id":"a","groups":{{"{}":"x"}}}}"#, "d".repeat(33))),
            Refused::BadDimension,
        ),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"category":5}}"#.into()), Refused::BadValueType),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"category":{"a":"b"}}}"#.into()), Refused::BadValueType),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"list":["a",1]}}"#.into()), Refused::BadValueType),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"list":[["nested"]]}}"#.into()), Refused::BadValueType),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"category":""}}"#.into()), Refused::BadValue),
        (Some(b"facebook/a"), Some(format!(r#"{{"page_id":"a","groups":{{"c":"{long_value}"}}}}"#)), Refused::BadValue),
        (Some(b"facebook/a"), Some(r#"{"page_id":"a","groups":{"c":"tab\there"}}"#.into()), Refused::BadValue),
        (Some(b"facebook/a"), Some(five.into()), Refused::TooManyGroups),
    ];
    assert!(corpus.len() >= 20);
    let mut d = dir();
    put(&mut d, "facebook/kept", r#"{"page_id":"kept","groups":{"category":"government"}}"#).unwrap();
    let snapshot = |d: &Directory| (format!("{:?}", d.groups_of("facebook", "kept")), d.len(), d.listing().len());
    let before = snapshot(&d);
    for (key, value, reason) in &corpus {
        let got = d.apply(*key, value.as_deref().map(str::as_bytes));
        assert_eq!(got, Err(*reason), "{key:?} {value:?}");
    }
    assert_eq!(snapshot(&d), before);
}

#[test]
fn distinct_groups_and_pages_are_bounded_and_a_refusal_keeps_the_page_as_it_was() {
    let mut d = dir();
    for i in 0..4 {
        let v = format!(r#"{{"page_id":"p{i}","groups":{{"a":"{i}","b":"{i}"}}}}"#);
        put(&mut d, &format!("facebook/p{i}"), &v).unwrap();
    }
    assert_eq!(d.group_ids.len(), 8);
    let over = r#"{"page_id":"p0","groups":{"a":"new"}}"#;
    assert_eq!(put(&mut d, "facebook/p0", over), Err(Refused::TooManyValues));
    assert_eq!(d.groups_of("facebook", "p0"), vec![("a", "0"), ("b", "0")]);
    assert_eq!(put(&mut d, "facebook/p9", r#"{"page_id":"p9"}"#), Err(Refused::DirectoryFull));
    // Replacing p0's groups frees its two values, so p0 may take new ones.
    put(&mut d, "facebook/p0", r#"{"page_id":"p0","groups":{"a":"1","b":"1"}}"#).unwrap();
    put(&mut d, "facebook/p0", r#"{"page_id":"p0","groups":{"a":"new"}}"#).unwrap();
    assert_eq!(d.listing()["a"], vec![("1", 1), ("2", 1), ("3", 1), ("new", 1)]);
}

#[test]
fn groups_parse_as_queries_name_them() {
    assert_eq!(parse_group("category:government"), Some(("category", "government")));
    assert_eq!(parse_group("list:a:b"), Some(("list", "a:b")));
    for bad in ["category", ":x", "Category:x", "category:", "c:\u{1}"] {
        assert_eq!(parse_group(bad), None, "{bad}");
    }
}

#[test]
fn membership_costs_a_set_id_per_page_when_pages_share_sets() {
    let mut d = Directory::new(DirectoryLimits { max_pages: 100_000, ..DirectoryLimits::default() });
    for i in 0..100_000 {
        let country = ["EG", "US", "KH", "FR"][i % 4];
        let v = format!(
            r#"{{"page_id":"p{i}","groups":{{"category":"government","country":"{country}","list":["a","b"]}}}}"#
        );
        d.apply(None, Some(v.as_bytes())).unwrap();
    }
    let per_page = d.membership_bytes() as f64 / d.len() as f64;
    assert!(per_page <= 16.0, "{per_page} bytes per page");
}
