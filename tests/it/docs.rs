//! The docs name files that exist: every relative link of `docs/*.md`,
//! `README.md`, `deploy/README.md` and `CHANGELOG.md` leads to a file or folder of the
//! repository, and so does every repository path written in backquotes
//! (`src/...`, `core/src/...`, `tests/...`, `benches/...`, `scripts/...`,
//! `deploy/...`). Moving a file without its docs fails here.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.extend(["README.md", "deploy/README.md", "CHANGELOG.md"].map(|f| repo().join(f)));
    docs.sort();
    docs
}

/// The targets of `[text](target)` links that are not URLs or anchors.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or_default().trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") && !target.contains(' ') {
            out.push(target.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// Repository paths in backquotes.
fn paths(text: &str) -> Vec<String> {
    let roots = ["src/", "core/src/", "tests/", "benches/", "scripts/", "deploy/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| roots.iter().any(|r| s.starts_with(r)))
        .filter(|s| !s.contains(['*', '<', ' ', '{']))
        .map(|s| s.split(':').next().unwrap_or_default().trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn every_file_the_docs_name_exists() {
    let mut missing = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("a readable document");
        let dir = doc.parent().unwrap_or(Path::new("."));
        for target in links(&text) {
            if !dir.join(&target).exists() {
                missing.push(format!("{}: link {target}", doc.display()));
            }
        }
        for path in paths(&text) {
            if !repo().join(&path).exists() {
                missing.push(format!("{}: path {path}", doc.display()));
            }
        }
    }
    assert!(missing.is_empty(), "the docs name files that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn the_architecture_traces_both_modes_through_existing_files() {
    let text = std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap();
    for heading in ["### Replica mode", "### Shard mode", "### Where the two modes differ"] {
        assert!(text.contains(heading), "docs/architecture.md lacks {heading}");
    }
    let linked = links(&text);
    for file in ["src/pipeline/ingest/consume.rs", "src/pipeline/shard/owner.rs", "src/pipeline/shard/table.rs"] {
        assert!(linked.iter().any(|l| l.ends_with(file)), "the traces link {file}");
    }
}
