use super::*;

fn long(n: u64) -> String {
    format!("{:016}_{n:016}", 4242)
}

fn posts(slab: &TopSlab, r: TopRef) -> Vec<(u64, u64, String)> {
    let list = TopList::new(Quarter::from_index(0), r, slab.blocks());
    list.posts().map(|p| (p.hash, p.interactions, p.id.to_owned())).collect()
}

fn push(slab: &mut TopSlab, r: TopRef, n: u64) -> TopRef {
    slab.push(r, n, n * 10, &format!("post-{n}"))
}

#[test]
fn classes_double_up_to_the_maximum() {
    let caps = |max| TopSlab::new(max).blocks.entries.classes.iter().map(|(c, _)| *c).collect::<Vec<_>>();
    assert_eq!(caps(10), [1, 2, 4, 8, 10]);
    assert_eq!(caps(8), [1, 2, 4, 8]);
    assert_eq!(caps(1), [1]);
    assert_eq!(caps(0), Vec::<usize>::new());
    assert_eq!(caps(1000).last(), Some(&TOP_MAX));
    assert_eq!(
        TopSlab::new(3).blocks.ids.classes.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        (3..=16).collect::<Vec<_>>()
    );
}

#[test]
fn blocks_never_straddle_a_chunk() {
    for cap in [1, 3, 10, 100] {
        for b in 0..5000u32 {
            let s = start(cap, b);
            assert_eq!(s / CHUNK, (s + cap - 1) / CHUNK, "cap {cap} block {b}");
            if b > 0 {
                assert!(s >= start(cap, b - 1) + cap, "blocks do not overlap");
            }
        }
    }
}

#[test]
fn a_growing_list_keeps_its_entries_and_frees_what_it_leaves() {
    let mut slab = TopSlab::new(10);
    let mut r = TopRef::default();
    for n in 0..10 {
        r = push(&mut slab, r, n);
        let want: Vec<_> = (0..=n).map(|n| (n, n * 10, format!("post-{n}"))).collect();
        assert_eq!(posts(&slab, r), want);
    }
    assert_eq!(usize::from(r.class), 4, "a full list is in the largest class");
    assert_eq!(slab.free_entries.free.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 1, 0]);
    // A second list grows into the blocks the first one left.
    let mut other = TopRef::default();
    for n in 0..9 {
        other = push(&mut slab, other, 100 + n);
    }
    assert_eq!(slab.free_entries.count, [1, 1, 1, 1, 2], "a new block only in the largest class");
    assert_eq!(posts(&slab, other).iter().map(|p| p.0).collect::<Vec<_>>(), (100..109).collect::<Vec<_>>());
    assert_eq!(posts(&slab, r).iter().map(|p| p.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    slab.release(r);
    assert_eq!(slab.free_entries.free[4], [(0, 0)]);
    assert!(slab.free_ids.count.iter().all(|n| *n == 0), "short ids are stored in the entries");
    let mut long_list = TopRef::default();
    for n in 0..3 {
        long_list = slab.push(long_list, n, n, &long(n));
    }
    assert_eq!(slab.free_ids.count[..4], [0, 0, 3, 0], "33-byte ids take 5 units, their own class");
    slab.release(long_list);
    assert_eq!(slab.free_ids.free[2].len(), 3, "the ids' blocks are freed with their list");
    assert!(slab.get(TopRef::default()).is_empty());
}

#[test]
fn a_snapshot_keeps_the_lists_it_was_taken_with() {
    let mut slab = TopSlab::new(4);
    let mut lists: Vec<TopRef> = (0..600).map(|n| push(&mut slab, TopRef::default(), n)).collect();
    let snapshot = slab.blocks().clone();
    let before = lists.clone();
    for (i, r) in lists.iter_mut().enumerate() {
        *r = push(&mut slab, *r, 1000 + i as u64);
        slab.set_interactions(*r, 0, 1);
        slab.set(*r, 1, 5, 5, &long(i as u64));
    }
    for (i, r) in before.iter().enumerate() {
        let list = TopList::new(Quarter::from_index(0), *r, &snapshot);
        let got: Vec<_> = list.posts().map(|p| (p.hash, p.interactions, p.id.to_owned())).collect();
        assert_eq!(got, [(i as u64, i as u64 * 10, format!("post-{i}"))]);
    }
    assert_eq!(posts(&slab, lists[7]), [(7, 1, "post-7".to_owned()), (5, 5, long(7))]);
}

#[test]
fn create_keeps_at_most_the_maximum() {
    let mut slab = TopSlab::new(3);
    let owned: Vec<OwnedTopPost> =
        (0..7).map(|n| OwnedTopPost { hash: n, interactions: n, id: format!("p{n}") }).collect();
    let r = slab.create(&owned);
    assert_eq!(posts(&slab, r).iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(TopSlab::new(0).create(&owned).is_empty());
}

#[test]
fn ids_of_every_length_come_back_whole() {
    let mut slab = TopSlab::new(4);
    let ids = ["", "a", "12345678", "123456789", &long(1), "é".repeat(64).as_str(), &"x".repeat(128)].map(String::from);
    let lists: Vec<TopRef> = ids.iter().map(|id| slab.push(TopRef::default(), 1, 1, id)).collect();
    for (r, id) in lists.iter().zip(&ids) {
        assert_eq!(&posts(&slab, *r)[0].2, id);
    }
    // Longer than any valid id: cut on a character boundary, never split.
    let r = slab.push(TopRef::default(), 1, 1, &"é".repeat(100));
    assert_eq!(posts(&slab, r)[0].2, "é".repeat(64));
}

#[test]
fn long_ids_allocate_nothing_once_blocks_are_free() {
    let mut slab = TopSlab::new(4);
    let mut heap = Vec::new();
    // Lists built, overwritten and released over and over: entries and
    // ids reuse freed blocks, so the heap stops growing.
    for round in 0..50u64 {
        let lists: Vec<TopRef> = (0..3u64)
            .map(|l| {
                let mut r = TopRef::default();
                for n in 0..4 {
                    r = slab.push(r, n, n, &long(round * 100 + l * 10 + n));
                }
                slab.set(r, 1, 7, 7, &long(round));
                assert_eq!(posts(&slab, r)[1].2, long(round));
                assert_eq!(posts(&slab, r)[3].2, long(round * 100 + l * 10 + 3));
                r
            })
            .collect();
        lists.into_iter().for_each(|r| slab.release(r));
        heap.push(slab.heap_bytes());
    }
    assert!(heap.iter().all(|h| *h == heap[0]), "no growth after the first round: {heap:?}");
}
