//! What the daemon writes to stderr: plain text when stderr is not a
//! terminal.

use std::time::Duration;

use crate::support::*;

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let topic = unique("plain-logs");
    create_topic(&topic, 1);
    let mut d = Daemon::start(&topic, &["--log-format", "text"], &[]);
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).0.success());
    let logs = d.logs().join("\n");
    assert!(!logs.contains('\u{1b}'), "an ESC byte reached a pipe:\n{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}
