use super::*;
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::seed_events;
use engagement_core::view::View;
use proptest::prelude::*;
use proptest::sample::Index;

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
    v.rows(v.current().unwrap()).iter().map(|r| (v.page(r.page).id.to_string(), r.totals.interactions())).collect()
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
    assert!(report.skipped.is_empty());
    assert!(report.discarded.is_empty());
    assert_eq!((r.seq, r.topic.as_str(), &r.offsets), (1, "events", &offsets));
    assert_eq!(summary(&r.engine), summary(&e));
}

#[test]
fn a_checkpoint_of_other_windows_is_set_aside_not_used() {
    let dir = tempdir("windows");
    let e = engine();
    write(&dir, 1, "events", &vec![(0, 9)], &e.durable_snapshot()).unwrap().finish().unwrap();
    let weeks = engagement_core::window::Windows::new(&[("quarter", None), ("week", None)], &["90d"]).unwrap();
    let (restored, report) = restore(&dir, Limits { windows: weeks, ..Limits::default() }).unwrap();
    assert!(restored.is_none(), "its tables are not the configured ones: the topic is replayed");
    assert_eq!(report.other_windows.len(), 1);
    let (aside, why) = &report.other_windows[0];
    assert!(aside.extension().is_some_and(|x| x == "other-windows") && aside.exists(), "{}", aside.display());
    assert!(why.contains("quarter (5 kept), month (13 kept), rolling 90d, rolling 7d"), "{why}");
    assert!(why.contains("quarter (5 kept), week (9 kept), rolling 90d"), "{why}");
    assert!(list(&dir, "bin").unwrap().is_empty());
    fs::rename(aside, aside.with_extension("bin")).unwrap();
    let (restored, _) = restore(&dir, Limits::default()).unwrap();
    assert_eq!(summary(&restored.expect("moved back under its windows").engine), summary(&e));
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
        ("older version", Box::new(|b: &mut Vec<u8>| b[8..12].copy_from_slice(&0u32.to_le_bytes())), "version 0"),
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

// Newer versions (item 6 of the review): a rollback must not lose state.

#[test]
fn a_checkpoint_from_a_newer_version_stops_the_restore_and_stays() {
    let dir = tempdir("newer");
    let e = engine();
    write(&dir, 1, "t", &vec![(0, 1)], &e.durable_snapshot()).unwrap().finish().unwrap();
    write(&dir, 2, "t", &vec![(0, 2)], &e.durable_snapshot()).unwrap().finish().unwrap();
    let newest = path(&dir, 2, "bin");
    let mut bytes = fs::read(&newest).unwrap();
    bytes[8..12].copy_from_slice(&(STATE_VERSION + 1).to_le_bytes());
    fs::write(&newest, &bytes).unwrap();
    let message = restore(&dir, Limits::default()).err().expect("a newer checkpoint stops the restore").to_string();
    assert!(message.contains(&newest.display().to_string()), "{message}");
    assert!(message.contains(&format!("version {}", STATE_VERSION + 1)) && message.contains("newer"), "{message}");
    assert_eq!(fs::read(&newest).unwrap(), bytes, "the file stays where it is, unchanged");
    assert!(path(&dir, 1, "bin").exists(), "and so does the older one");
}

#[test]
fn only_the_two_newest_corrupt_files_are_kept() {
    let dir = tempdir("corrupt-pruned");
    fs::create_dir_all(&dir).unwrap();
    for seq in 1..=5 {
        fs::write(path(&dir, seq, "bin"), b"garbage").unwrap();
        restore(&dir, Limits::default()).unwrap();
    }
    assert_eq!(list(&dir, "corrupt").unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), [5, 4]);
}

// File safety (item 8 of the review).

#[test]
fn the_temporary_file_is_never_written_through_a_symlink() {
    let dir = tempdir("planted-link");
    fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, path(&dir, 1, "tmp")).unwrap();
    let refused =
        write(&dir, 1, "t", &vec![(0, 1)], &engine().durable_snapshot()).err().expect("a planted name is refused");
    assert!(refused.to_string().contains(&path(&dir, 1, "tmp").display().to_string()), "names the path: {refused}");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn checkpoints_are_private_to_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("private").join("state");
    write(&dir, 1, "t", &vec![(0, 1)], &engine().durable_snapshot()).unwrap().finish().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path(&dir, 1, "bin")), 0o600);
    assert_eq!(mode(&dir), 0o700, "a state directory the daemon creates");
}

#[test]
fn restore_skips_what_is_not_a_regular_file() {
    let dir = tempdir("not-regular");
    write(&dir, 1, "t", &vec![(0, 1)], &engine().durable_snapshot()).unwrap().finish().unwrap();
    let elsewhere = tempdir("not-regular-elsewhere");
    write(&elsewhere, 9, "other", &vec![(0, 9)], &engine().durable_snapshot()).unwrap().finish().unwrap();
    let fifo = path(&dir, 2, "bin");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::os::unix::fs::symlink(path(&elsewhere, 9, "bin"), path(&dir, 3, "bin")).unwrap();
    fs::create_dir(path(&dir, 4, "bin")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.clone();
    std::thread::spawn(move || {
        let _ = tx.send(restore(&d, Limits::default()).map_err(|e| e.to_string()));
    });
    let (r, report) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("restore does not hang").unwrap();
    assert_eq!(r.expect("the regular file").offsets, vec![(0, 1)]);
    let skipped: Vec<u64> = report.skipped.iter().map(|(p, _)| seq_of(p)).collect();
    assert_eq!(skipped, [4, 3, 2], "{:?}", report.skipped);
    assert!(report.skipped.iter().all(|(_, why)| why.contains("not a regular file")), "{:?}", report.skipped);
    assert!(report.discarded.is_empty() && fifo.exists(), "what is not ours to judge stays");
}

fn seq_of(p: &Path) -> u64 {
    let name = p.file_name().unwrap().to_str().unwrap();
    name.trim_start_matches("checkpoint-").split('.').next().unwrap().parse().unwrap()
}

// Corrupt files (item 3 of the review): the checksum is verified before
// anything is decoded, and nothing is allocated from a count in the file.

/// One way of corrupting a checkpoint file.
#[derive(Debug, Clone)]
enum Corruption {
    /// Flips bits (index into the file, bit number).
    Flips(Vec<(Index, u8)>),
    /// Keeps only a prefix (shorter than the file).
    Truncate(Index),
    /// Sets a length or count field to the largest value the configured
    /// bounds accept (the header's body length: u64::MAX).
    Max(Index),
    /// Overwrites bytes with arbitrary ones.
    Garbage(Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        prop::collection::vec((any::<Index>(), 0u8..8), 1..4).prop_map(Corruption::Flips),
        any::<Index>().prop_map(Corruption::Truncate),
        any::<Index>().prop_map(Corruption::Max),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(at, b)| Corruption::Garbage(at, b)),
    ]
}

/// Offsets of the length and count fields of a file (width 4 or 8): the
/// header's body length, the topic's length, and every 8-byte word of the
/// body that holds one of the state's counts.
fn count_fields(file: &[u8], counts: &[u64]) -> Vec<(usize, usize)> {
    let mut fields = vec![(12, 8), (HEADER + 8, 4)];
    for at in HEADER..file.len().saturating_sub(8) {
        let word = u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
        if counts.contains(&word) {
            fields.push((at, 8));
        }
    }
    fields
}

fn apply(d: &Corruption, file: &mut Vec<u8>, fields: &[(usize, usize)]) {
    match d {
        Corruption::Flips(flips) => {
            for (at, bit) in flips {
                let i = at.index(file.len());
                file[i] ^= 1 << bit;
            }
        }
        Corruption::Truncate(at) => file.truncate(at.index(file.len())),
        Corruption::Max(which) => {
            let (at, width) = fields[which.index(fields.len())];
            let max = if at == 12 { u64::MAX } else { u64::from(u32::MAX) };
            file[at..at + width].copy_from_slice(&max.to_le_bytes()[..width]);
        }
        Corruption::Garbage(at, bytes) => {
            let i = at.index(file.len());
            let n = bytes.len().min(file.len() - i);
            file[i..i + n].copy_from_slice(&bytes[..n]);
        }
    }
}

/// The format version in a file's header, if it has one.
fn version(file: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(file.get(8..12)?.try_into().ok()?))
}

/// A field of /proc/self/status in KiB (VmRSS: now, VmHWM: the peak).
fn memory_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    let value = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'));
    value.and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok()).expect(field)
}

/// Runs in a child process of its own (see the test below): an abort
/// there fails the parent instead of killing every test, and the peak RSS
/// measured is this decode's alone.
#[test]
#[ignore = "run in a child process by a_thousand_corrupt_checkpoints_fall_back_cleanly_in_bounded_memory"]
fn corrupt_checkpoints_child() {
    // Bounds as large as check-config accepts: a count in a corrupt file
    // must not be believed up to them.
    let limits = Limits {
        max_posts: engagement_core::engine::MAX_POSTS,
        max_event_ids: engagement_core::engine::MAX_EVENT_IDS,
        ..Limits::default()
    };
    let dir = tempdir("fuzz");
    let e = engine();
    let u = e.usage();
    write(&dir, 1, "t", &vec![(0, 1)], &e.durable_snapshot()).unwrap().finish().unwrap();
    let original = fs::read(path(&dir, 1, "bin")).unwrap();
    let counts = [1, u.posts as u64, u.pages as u64, u.platforms as u64, u.event_ids as u64];
    let fields = count_fields(&original, &counts);
    drop(e);
    let held = restore(&dir, limits).unwrap().0.expect("the intact checkpoint");
    let steady = memory_kib("VmRSS");
    let resettable = fs::write("/proc/self/clear_refs", "5").is_ok();
    let config = ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let highest = std::cell::Cell::new(0);
    let result = runner.run(&damage(), |d| {
        let mut bytes = original.clone();
        apply(&d, &mut bytes, &fields);
        fs::write(path(&dir, 2, "bin"), &bytes).unwrap();
        if resettable {
            fs::write("/proc/self/clear_refs", "5").unwrap();
        }
        let restored = restore(&dir, limits);
        let peak = memory_kib("VmHWM");
        highest.set(highest.get().max(peak));
        prop_assert!(peak <= 2 * steady, "{d:?}: peak RSS {peak} KiB, steady state {steady} KiB");
        // A version field made larger reads as a newer format: refused,
        // and the file stays (indistinguishable from a real newer file).
        let (r, report) = match restored {
            Err(RestoreError::Newer { .. }) if version(&bytes) > Some(STATE_VERSION) => {
                prop_assert!(path(&dir, 2, "bin").exists());
                return Ok(());
            }
            other => other.map_err(|e| TestCaseError::fail(e.to_string()))?,
        };
        if bytes != original {
            prop_assert_eq!(r.map(|r| r.seq), Some(1), "{:?} falls back to the older checkpoint", d);
            prop_assert_eq!(report.discarded.len(), 1);
        }
        Ok(())
    });
    drop(held);
    result.unwrap();
    println!("steady state {steady} KiB, highest peak {} KiB (peak reset per file: {resettable})", highest.get());
}

#[test]
fn a_thousand_corrupt_checkpoints_fall_back_cleanly_in_bounded_memory() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "pipeline::checkpoint::tests::corrupt_checkpoints_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tail: String = text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(out.status.success() && text.contains("1 passed"), "the child ended {}:\n{tail}", out.status);
}
