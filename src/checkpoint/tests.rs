use super::*;
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::seed_events;
use engagement_core::view::View;

fn engine() -> Engine {
    let mut e = Engine::new(Limits::default());
    let cx = DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 };
    for json in seed_events().iter().take(500) {
        e.apply(&decode(json.as_bytes(), &cx).unwrap());
    }
    e
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("em-ckpt-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn summary(e: &Engine) -> Vec<(String, u64)> {
    let v = View::build(e);
    v.current().unwrap().rows.iter().map(|r| (v.page(r.page).id.to_string(), r.totals.interactions())).collect()
}

#[test]
fn written_checkpoints_restore_exactly() {
    let dir = tempdir("roundtrip");
    let e = engine();
    let offsets = vec![(0, 17), (1, 4), (2, 0)];
    let p = write(&dir, 1, "events", &offsets, &e.durable_snapshot()).unwrap().finish().unwrap();
    assert!(p.bytes > HEADER as u64);
    let (restored, report) = restore(&dir, Limits::default()).unwrap();
    let r = restored.expect("a checkpoint");
    assert!(report.discarded.is_empty());
    assert_eq!((r.seq, r.topic.as_str(), &r.offsets), (1, "events", &offsets));
    assert_eq!(summary(&r.engine), summary(&e));
}

#[test]
fn only_the_two_newest_are_kept_and_tmp_files_are_ignored() {
    let dir = tempdir("keep");
    let e = engine();
    for seq in 1..=4 {
        write(&dir, seq, "t", &vec![(0, seq as i64)], &e.durable_snapshot()).unwrap().finish().unwrap();
    }
    write(&dir, 5, "t", &vec![(0, 5)], &e.durable_snapshot()).unwrap(); // crashed before rename
    assert_eq!(list(&dir, "bin").unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), [4, 3]);
    let (r, _) = restore(&dir, Limits::default()).unwrap();
    assert_eq!(r.unwrap().offsets, vec![(0, 4)]);
    assert!(list(&dir, "tmp").unwrap().is_empty(), "leftover temporary files are removed");
}

type Damage = Box<dyn Fn(&mut Vec<u8>)>;

fn damaged(name: &str, damage: impl Fn(&mut Vec<u8>)) -> (Option<Restored>, RestoreReport) {
    let dir = tempdir(name);
    let e = engine();
    write(&dir, 1, "t", &vec![(0, 1)], &e.durable_snapshot()).unwrap().finish().unwrap();
    write(&dir, 2, "t", &vec![(0, 2)], &e.durable_snapshot()).unwrap().finish().unwrap();
    let newest = path(&dir, 2, "bin");
    let mut bytes = fs::read(&newest).unwrap();
    damage(&mut bytes);
    fs::write(&newest, bytes).unwrap();
    restore(&dir, Limits::default()).unwrap()
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous() {
    let cases: [(&str, Damage, &str); 5] = [
        ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2)), "truncated"),
        (
            "bitflip",
            Box::new(|b: &mut Vec<u8>| {
                let i = b.len() - 10;
                b[i] ^= 0x10;
            }),
            "checksum mismatch",
        ),
        ("version", Box::new(|b: &mut Vec<u8>| b[8] = 99), "version 99"),
        ("magic", Box::new(|b: &mut Vec<u8>| b[0] = b'X'), "bad magic"),
        ("empty", Box::new(|b: &mut Vec<u8>| b.clear()), "header"),
    ];
    for (name, damage, why) in cases {
        let (r, report) = damaged(name, damage);
        assert_eq!(r.expect("falls back to checkpoint 1").offsets, vec![(0, 1)], "{name}");
        assert_eq!(report.discarded.len(), 1, "{name}");
        assert!(report.discarded[0].1.contains(why), "{name}: {}", report.discarded[0].1);
        assert!(report.discarded[0].0.exists(), "{name}: moved aside, not deleted");
    }
}

#[test]
fn no_directory_or_no_valid_file_means_no_checkpoint() {
    let dir = tempdir("none");
    assert!(restore(&dir, Limits::default()).unwrap().0.is_none());
    fs::create_dir_all(&dir).unwrap();
    fs::write(path(&dir, 9, "bin"), b"garbage").unwrap();
    let (r, report) = restore(&dir, Limits::default()).unwrap();
    assert!(r.is_none() && report.discarded.len() == 1);
}
