//! libFuzzer target: any bytes as page directory records (the first byte
//! says how much of the rest is the key; a record without a value is a
//! tombstone) through `Directory::apply`. Must never panic; a refused
//! record changes nothing.
#![no_main]

use engagement_core::directory::{Directory, DirectoryLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DirectoryLimits { max_groups_per_page: 4, max_values: 16, max_pages: 8 };
    let mut dir = Directory::new(limits);
    for record in data.split(|b| *b == 0xff) {
        let Some((&cut, rest)) = record.split_first() else { continue };
        let (key, value) = rest.split_at((cut as usize).min(rest.len()));
        let key = (cut & 0x80 == 0).then_some(key);
        let value = (!value.is_empty()).then_some(value);
        let (pages, groups) = (dir.len(), dir.group_count());
        if dir.apply(key, value).is_err() {
            assert_eq!((dir.len(), dir.group_count()), (pages, groups));
        }
        assert!(dir.len() <= 8 && dir.group_count() <= 16);
    }
});
