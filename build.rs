//! Stamps the binary with the git revision it was built from, for
//! `--version`, the start-up log line and `engagement_build_info`.
//!
//! `ENGAGEMENT_BUILD_REVISION` in the build's environment wins: a build
//! without `.git`, such as the container image's, passes it in. Else `git
//! rev-parse` of the checkout, with `-dirty` when the binary's sources
//! differ from it; else `unknown`. (Not `ENGAGEMENT_MONITOR_…`: cargo hands a
//! build script's variables to the processes `cargo test` and `cargo run`
//! start, and the daemon refuses variables of its own prefix that name no
//! setting.)

use std::path::Path;
use std::process::Command;

/// What the binary is built from; `-dirty` says one of them differs from
/// HEAD (tests/it/first_run.rs asks git the same of the same paths).
const SOURCES: [&str; 5] = ["src", "core/src", "Cargo.toml", "Cargo.lock", "build.rs"];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ENGAGEMENT_BUILD_REVISION");
    let given = std::env::var("ENGAGEMENT_BUILD_REVISION").ok().filter(|r| !r.is_empty());
    let revision = given.or_else(|| {
        let head = git(&["rev-parse", "--short=12", "HEAD"])?;
        // Rerun when HEAD moves (a commit, a checkout) and when a source
        // file changes (the tree may become dirty or clean again).
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            let dir = Path::new(&dir);
            // Only files that exist: a missing one would rerun this every build.
            for f in ["HEAD", "index", "packed-refs"].map(|f| dir.join(f)).iter().filter(|f| f.exists()) {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
        for p in SOURCES {
            println!("cargo:rerun-if-changed={p}");
        }
        // Dirty means the binary's own sources differ from HEAD: a changed
        // test or document does not make the binary another build.
        let status = [&["status", "--porcelain", "--untracked-files=no", "--"][..], &SOURCES].concat();
        let dirty = git(&status).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head}-dirty") } else { head })
    });
    println!("cargo:rustc-env=ENGAGEMENT_BUILD_REVISION={}", revision.as_deref().unwrap_or("unknown"));
}
