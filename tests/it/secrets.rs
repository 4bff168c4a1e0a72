//! Credentials stay out of what the daemon prints: its logs and its
//! errors.

use std::time::Duration;

use crate::support::*;

#[test]
fn the_start_up_line_shows_brokers_without_credentials() {
    let brokers = format!("alice:Pa55-s3cret@127.0.0.1:{}", unused_port());
    let mut d = Daemon::launch(&brokers, &unique("creds"), &[], &[]);
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(15));
    let logs = d.logs();
    let started = logs.iter().find(|l| l.contains("engagement-monitor started")).expect("a start-up line");
    let line: serde_json::Value = serde_json::from_str(started).unwrap();
    assert!(line["brokers"].as_str().unwrap().contains("127.0.0.1"), "{started}");
    for l in &logs {
        assert!(!l.contains("Pa55-s3cret"), "a credential was logged: {l}");
    }
}

#[test]
fn a_misspelt_property_is_named_without_its_secret_value() {
    let brokers = brokers();
    let args =
        ["run", "--brokers", &brokers, "--listen", "127.0.0.1:0", "--kafka-property", "sasl.pasword=hunter2-s3cret"];
    let out = run_to_exit(&args, &[], Duration::from_secs(20));
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("sasl.pasword"), "the property is named: {}", out.stderr);
    assert!(out.stderr.contains("(from flag --kafka-property)"), "and where it came from: {}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "the value is not: {}", out.stderr);
    // check-config refuses it as run does, without printing it.
    let file = std::env::temp_dir().join(unique("misspelt.toml"));
    std::fs::write(&file, "[kafka.properties]\n\"sasl.pasword\" = \"hunter2-s3cret\"\n").unwrap();
    let out = run_to_exit(&["check-config", file.to_str().unwrap()], &[], Duration::from_secs(20));
    assert!(!out.status.success(), "check-config accepts what run refuses");
    assert!(out.stderr.contains("sasl.pasword") && !out.stderr.contains("hunter2"), "{}", out.stderr);
}
