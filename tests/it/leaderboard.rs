//! The leaderboard page (`/`, `src/serve/leaderboard.html`) in a real browser:
//! headless Chromium (Debian's `chromium`, installed by
//! `scripts/install-deps.sh`) against the daemon and the project's Kafka
//! broker. Checks the rendered DOM after the page's script ran, that the
//! page logged no console message and recorded no error, that names and ids
//! from input stay text, and writes a screenshot to
//! `target/artifacts/leaderboard.png` for people to look at.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const READY: Duration = Duration::from_secs(60);
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// What one Chromium run printed.
struct BrowserRun {
    stdout: String,
    stderr: String,
}

impl BrowserRun {
    /// Console messages of the page (`--enable-logging=stderr --v=0` prints
    /// them as `...:CONSOLE:<line>] "message", source: ...`) and uncaught
    /// exceptions. The page itself logs nothing, so any is a failure.
    fn console_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught")).collect()
    }
}

/// Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`), a fresh
/// profile, console logging to stderr and a 3 s virtual-time budget (less
/// than the page's 5 s refresh: one refresh per run, whose marks of moved
/// rows a second refresh would clear), and
/// kills it (with its child processes) after [`BROWSER_TIMEOUT`].
fn chromium(args: &[&str], url: &str) -> BrowserRun {
    let dir = TempDir::new("leaderboard-profile");
    chromium_in(&dir.0, args, url)
}

/// [`chromium`] with the browser profile in `profile`: a second run sees
/// what the first left in local storage.
fn chromium_in(profile: &Path, args: &[&str], url: &str) -> BrowserRun {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("leaderboard-chromium");
    let (out_path, err_path) = (dir.0.join("stdout"), dir.0.join("stderr"));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--lang=en-US",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `chromium` ({e}): install the test dependencies with scripts/install-deps.sh")
        });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BROWSER_TIMEOUT {
            // The browser's renderer, GPU and zygote processes share its group.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?} on {url} (an alert() dialog, e.g. from injected \
                 markup, blocks headless Chromium); stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = BrowserRun {
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    };
    assert!(status.success(), "chromium exited with {status} on {url}; stderr:\n{}", run.stderr);
    run
}

/// The DOM of `url` after the page's script ran, with the console checked.
fn dump_dom(url: &str) -> String {
    let dir = TempDir::new("leaderboard-profile");
    dump_dom_in(&dir.0, url)
}

fn dump_dom_in(profile: &Path, url: &str) -> String {
    let run = chromium_in(profile, &["--dump-dom"], url);
    assert!(run.stdout.contains("</html>"), "no DOM dumped for {url}; stderr:\n{}", run.stderr);
    assert_eq!(run.console_lines(), Vec::<&str>::new(), "console output of {url}");
    assert!(
        run.stdout.contains(r#"<div id="errors" data-count="0""#),
        "the page recorded errors: {}",
        errors_of(&run.stdout)
    );
    run.stdout
}

fn errors_of(dom: &str) -> &str {
    dom.find(r#"<div id="errors""#).map_or("(no #errors element)", |i| &dom[i..dom.len().min(i + 2000)])
}

/// Undoes the escaping of the HTML serializer.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of the first element after `marker` (up to the next tag).
fn text_after<'d>(html: &'d str, marker: &str) -> Option<&'d str> {
    let at = html.find(marker)? + marker.len();
    let open_end = at + html[at..].find('>')? + 1;
    let close = open_end + html[open_end..].find('<')?;
    Some(&html[open_end..close])
}

fn attr<'d>(tag: &'d str, name: &str) -> Option<&'d str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// A rendered row of the leaderboard table.
#[derive(Debug)]
struct Row {
    rank: String,
    page_id: String,
    platform: String,
    name: String,
    name_dir: Option<String>,
    movement: String,
    value: String,
    bar_percent: f64,
}

fn rows(dom: &str) -> Vec<Row> {
    let body = dom.split(r#"<tbody id="rows">"#).nth(1).expect("the table body").split("</tbody>").next().unwrap();
    body.split("<tr ")
        .skip(1)
        .map(|tr| {
            let tag = &format!(" {}", &tr[..tr.find('>').unwrap()]);
            let name_tag = &tr[tr.find(r#"<a class="name""#).expect("a name link")..];
            let name_tag = &name_tag[..name_tag.find('>').unwrap()];
            let width = tr.split(r#"class="fill" style="width: "#).nth(1).expect("a bar");
            Row {
                rank: unescape(attr(tag, "data-rank").expect("data-rank")),
                page_id: unescape(attr(tag, "data-page-id").expect("data-page-id")),
                platform: unescape(attr(tag, "data-platform").expect("data-platform")),
                name: unescape(text_after(tr, r#"<a class="name""#).unwrap()),
                name_dir: attr(name_tag, "dir").map(String::from),
                movement: unescape(text_after(tr, r#"<span class="mv"#).unwrap()),
                value: unescape(text_after(tr, r#"<td class="val"#).unwrap()),
                bar_percent: width[..width.find('%').unwrap()].parse().unwrap(),
            }
        })
        .collect()
}

/// `26243488` as `26,243,488`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn start_with(events: &[String], pages: usize) -> Daemon {
    let topic = unique("leaderboard");
    create_topic(&topic, 3);
    produce_strings(&topic, 3, events);
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    wait_until("every page in the view", READY, || {
        (d.json("/v1/rankings?window=2025-Q3")["total_pages"] == pages).then_some(())
    });
    d
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("artifacts")
}

#[test]
fn the_page_shows_the_spec_table_in_a_real_browser() {
    let d = start_with(&seed_events(), SEED_TABLE.len());
    let base = format!("http://{}/", d.addr);

    // A screenshot for people to look at.
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("leaderboard.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium(
        &[&format!("--screenshot={}", png.display()), "--window-size=1280,900"],
        &format!("{base}?window=2025-Q3"),
    );
    assert_eq!(shot.console_lines(), Vec::<&str>::new(), "console output while taking the screenshot");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", png.display());
    assert!(bytes.len() > 20_000, "the screenshot is suspiciously small: {} bytes", bytes.len());
    let (w, h) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1280, 900), "screenshot size");

    // The rendered table is the reference table, formatted for people.
    let dom = dump_dom(&format!("{base}?window=2025-Q3"));
    let got = rows(&dom);
    assert_eq!(got.len(), SEED_TABLE.len(), "{got:#?}");
    let leader = SEED_TABLE[0].interactions as f64;
    for (i, (row, want)) in got.iter().zip(&SEED_TABLE).enumerate() {
        assert_eq!(row.rank, (i + 1).to_string());
        assert_eq!((row.page_id.as_str(), row.platform.as_str()), (want.id, "facebook"));
        assert_eq!(row.name, want.name);
        assert_eq!(row.name_dir.as_deref(), Some("auto"), "names take their direction from their text");
        assert_eq!(row.value, thousands(want.interactions));
        assert_eq!(row.movement, "new", "2025-Q2 has no pages, so every page is new");
        let scaled = 100.0 * want.interactions as f64 / leader;
        assert!((row.bar_percent - scaled).abs() < 0.02, "bar of {}: {} vs {scaled}", want.id, row.bar_percent);
    }
    assert_eq!(got[0].value, "26,243,488");
    assert_eq!(got[1].name, "وزارة الداخلية - Egypt, Ministry of Interior");
    assert_eq!(text_after(&dom, r#"id="s-window""#), Some("2025-Q3"));
    assert_eq!(text_after(&dom, r#"id="s-pages""#), Some("5"));
    assert_eq!(text_after(&dom, r#"id="s-period""#), Some("1 Jul 2025 – 30 Sep 2025"));
    let watermark = d.json("/v1/rankings?window=2025-Q3")["watermark"].as_str().unwrap().to_string();
    let (date, time) = watermark.trim_end_matches('Z').split_once('T').unwrap();
    assert!(date.starts_with("2025-09-30"), "{watermark}");
    assert_eq!(text_after(&dom, r#"id="s-watermark""#), Some(format!("30 Sep 2025, {}", &time[..8]).as_str()));
    assert!(dom.contains(r#"data-state="live""#), "status: {:?}", text_after(&dom, r#"id="state-text""#));
    assert!(dom.contains(r#"<option value="2025-Q3" selected="">"#), "the URL's window is selected");
    for link in [
        r#"href="/v1/rankings?window=2025-Q3&amp;metric=interactions&amp;limit=10""#,
        r#"href="/v1/windows""#,
        r#"href="/metrics""#,
        r#"href="/readyz""#,
    ] {
        assert!(dom.contains(link), "missing link {link}");
    }

    // "Download CSV" answers the rows on screen, as the API ranks them.
    let csv_href = r#"href="/v1/rankings?window=2025-Q3&amp;metric=interactions&amp;limit=10&amp;format=csv""#;
    assert!(dom.contains(csv_href) && dom.contains(">Download CSV</a>"), "the CSV link follows the view");
    let (code, csv) = d.get("/v1/rankings?window=2025-Q3&metric=interactions&limit=10&format=csv");
    assert_eq!(code, 200, "{csv}");
    let csv_rows: Vec<&str> = csv.split("\r\n").skip(1).filter(|l| !l.is_empty()).collect();
    assert_eq!(csv_rows.len(), got.len(), "{csv}");
    for (line, row) in csv_rows.iter().zip(&got) {
        let id = format!(",{},{},", row.platform, row.page_id);
        let interactions = row.value.replace(',', "");
        assert!(line.starts_with(&format!("{}{id}", row.rank)), "{line} is row {} ({})", row.rank, row.page_id);
        assert!(line.contains(&format!(",{interactions},")), "{line} holds {interactions}");
    }

    // Another metric, chosen by URL: the per-follower ratio, 2 decimals, "—" without followers.
    let dom = dump_dom(&format!("{base}?window=2025-Q3&metric=interactions_per_1k_followers"));
    let got: Vec<(String, String)> = rows(&dom).into_iter().map(|r| (r.page_id, r.value)).collect();
    let want = [("pmcambodia", "3,853.23"), ("whitehouse", "2,101.87"), ("moi.egy", "2,016.77")];
    assert_eq!(&got[..3], want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(got[3..].iter().all(|(_, v)| v == "—"), "no followers, no ratio: {got:?}");
    assert!(dom.contains(r#"<option value="interactions_per_1k_followers" selected="">"#));
    assert_eq!(text_after(&dom, r#"id="metric-head""#), Some("Interactions per 1k followers"));

    // A month and the 7-day window (kept by default): the table is what the
    // API ranks there, and the picker and the summary name the window.
    for (window, shown, note) in [("2025-09", "2025-09", "current month"), ("rolling-7d", "Rolling", "last 7 days")] {
        let dom = dump_dom(&format!("{base}?window={window}"));
        let api = d.json(&format!("/v1/rankings?window={window}&limit=10"));
        let want: Vec<(String, String)> = api["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["page_id"].as_str().unwrap().to_string(), thousands(e["interactions"].as_u64().unwrap())))
            .collect();
        let got: Vec<(String, String)> = rows(&dom).into_iter().map(|r| (r.page_id, r.value)).collect();
        assert!(!want.is_empty(), "{window} holds posts");
        assert_eq!(got, want, "{window}");
        assert!(dom.contains(&format!(r#"<option value="{window}" selected="">"#)), "{window} is selected");
        assert_eq!(text_after(&dom, r#"id="s-window""#), Some(shown));
        assert!(dom.contains(note), "{window}: the summary says {note:?}");
        assert!(dom.contains("Current month · 2025-09") && dom.contains("Rolling 7 days"), "the picker lists both");
    }
}

#[test]
fn names_and_ids_from_input_stay_text() {
    let event = |page_id: &str, name: Option<&str>, reactions: u64| {
        let mut e = serde_json::json!({
            "page_id": page_id, "post_id": "p1", "published_at": "2025-08-01T00:00:00Z",
            "observed_at": "2025-08-02T00:00:00Z", "reactions": reactions,
        });
        if let Some(n) = name {
            e["page_name"] = n.into();
        }
        e.to_string()
    };
    let evil_name = "<img src=x onerror=alert(1)>";
    let arabic = "مرحبا \"بالعالم\" <b>x</b> & co";
    let events = vec![
        event("evil\"id", Some(evil_name), 500),
        event("ar\"quote", Some(arabic), 400),
        event("nameless", None, 300),
    ];
    let d = start_with(&events, 3);
    let dom = dump_dom(&format!("http://{}/?window=2025-Q3", d.addr));
    let got: Vec<(String, String, String)> = rows(&dom).into_iter().map(|r| (r.page_id, r.name, r.value)).collect();
    let want = [("evil\"id", evil_name, "500"), ("ar\"quote", arabic, "400"), ("nameless", "nameless", "300")];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "the name is escaped text");
    assert!(!dom.contains("<img"), "no element was created from a name");
    assert!(!dom.contains("<b>"), "no element was created from a name");
    assert!(dom.contains(r#"data-page-id="evil&quot;id""#));
    assert!(
        dom.contains(r#"href="?window=2025-Q3&amp;metric=interactions&amp;page=facebook%2Fevil%22id""#),
        "page links are URL-encoded"
    );
    // The page view of that page shows its name as text too.
    let dom = dump_dom(&format!("http://{}/?window=2025-Q3&page=facebook%2Fevil%22id", d.addr));
    assert_eq!(text_after(&dom, r#"id="pv-title""#).map(unescape).as_deref(), Some(evil_name));
    assert!(!dom.contains("<img"), "no element was created from a name");
}

#[test]
fn a_page_opens_in_its_own_view_and_pages_are_found_by_name() {
    let d = start_with(&seed_events(), SEED_TABLE.len());
    let base = format!("http://{}/", d.addr);
    // Opened by its row's link (the URL it writes): the MoI in every window.
    let dom = dump_dom(&format!("{base}?window=2025-Q3"));
    let link = r#"href="?window=2025-Q3&amp;metric=interactions&amp;page=facebook%2Fmoi.egy""#;
    assert!(dom.contains(link), "the row links to the page's view");
    let dom = dump_dom(&format!("{base}?window=2025-Q3&metric=interactions&page=facebook%2Fmoi.egy"));
    assert!(dom.contains(r#"<section class="card pageview" id="pageview" aria-labelledby="pv-title">"#), "shown");
    assert_eq!(text_after(&dom, r#"id="pv-title""#), Some("وزارة الداخلية - Egypt, Ministry of Interior"));
    assert_eq!(text_after(&dom, r#"id="pv-id""#), Some("facebook/moi.egy"));
    let api = d.json("/v1/pages/facebook/moi.egy");
    for w in api["windows"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        let rank = w["rank"].as_u64().map_or("—".to_string(), |r| format!("#{r}"));
        let row = format!(
            r#"<tr><th scope="row">{id}</th><td class="num">{}</td><td class="num">{}</td><td class="num">{rank}</td></tr>"#,
            thousands(w["interactions"].as_u64().unwrap()),
            thousands(w["posts"].as_u64().unwrap())
        );
        assert!(dom.contains(&row), "window {id}: {row}");
    }
    assert!(dom.contains(r#"<td class="num">24,370,680</td>"#), "the 2025-Q3 figure of the seed table");
    let top = api["top_posts"].as_array().unwrap();
    assert!(!top.is_empty());
    assert_eq!(dom.matches(r#"<li><span class="pid" dir="auto">"#).count(), top.len(), "every top post listed");
    assert!(dom.contains(r#"id="pv-close" href="?window=2025-Q3&amp;metric=interactions""#), "close keeps the view");
    // Found by a word of its name, whatever the case; the URL keeps the search.
    let dom = dump_dom(&format!("{base}?window=2025-Q3&find=MINISTRY"));
    assert!(dom.contains(r#"type="search" placeholder="name or id" autocomplete="off" spellcheck="false" maxlength="64" aria-controls="found" value="MINISTRY""#), "the search box holds the URL's search");
    assert_eq!(text_after(&dom, r#"id="found-note""#), Some("1 page found"));
    assert!(
        dom.contains(r#"href="?window=2025-Q3&amp;metric=interactions&amp;find=MINISTRY&amp;page=facebook%2Fmoi.egy""#)
    );
    // An unknown page says so in its view, and the table stays.
    let dom = dump_dom(&format!("{base}?window=2025-Q3&page=facebook%2Fnobody"));
    assert_eq!(text_after(&dom, r#"id="pv-note""#), Some("unknown page"));
    assert_eq!(rows(&dom).len(), SEED_TABLE.len());
}

/// The post ids a page view lists as its top posts, in order.
fn listed_posts(dom: &str) -> Vec<String> {
    let list = dom.split(r#"id="pv-top""#).nth(1).unwrap_or("").split("</ol>").next().unwrap_or("");
    list.split(r#"<span class="pid" dir="auto">"#)
        .skip(1)
        .map(|s| unescape(s.split('<').next().unwrap_or("")))
        .collect()
}

#[test]
fn the_page_view_lists_the_top_posts_of_the_quarter_on_screen() {
    // The seed's quarter, then two posts of the MoI in the next: 2025-Q3's
    // list is kept when 2025-Q4's begins.
    let mut events = seed_events();
    for (post, reactions) in [("moi-q4-a", 7_000_000), ("moi-q4-b", 9_000_000)] {
        let extra = format!(r#","reactions":{reactions}"#);
        events.push(crate::daemon::event("moi.egy", post, "2025-10-01T08:00:00Z", "2025-10-01T09:00:00Z", &extra));
    }
    let d = start_with(&events, SEED_TABLE.len());
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|t| t["post_id"].as_str().unwrap().to_string()).collect()
    };
    let api = wait_until("the MoI's posts of 2025-Q4 in its current list", READY, || {
        let api = d.json("/v1/pages/facebook/moi.egy");
        (ids(&api["top_posts"]) == ["moi-q4-b", "moi-q4-a"]).then_some(api)
    });
    let q3 = api["windows"].as_array().unwrap().iter().find(|w| w["id"] == "2025-Q3").expect("2025-Q3 is named");
    let q3_posts = ids(&q3["top_posts"]);
    assert!(!q3_posts.is_empty() && q3_posts.iter().all(|p| p.starts_with("moi.egy-")), "2025-Q3's list: {q3_posts:?}");
    let base = format!("http://{}/?metric=interactions&page=facebook%2Fmoi.egy", d.addr);
    let dom = dump_dom(&format!("{base}&window=2025-Q3"));
    assert_eq!(text_after(&dom, r#"id="pv-top-title""#), Some("Top posts of 2025-Q3"));
    assert_eq!(listed_posts(&dom), q3_posts, "the kept list of the quarter on screen");
    let dom = dump_dom(&format!("{base}&window=current"));
    assert_eq!(text_after(&dom, r#"id="pv-top-title""#), Some("Top posts of 2025-Q4"));
    assert_eq!(listed_posts(&dom), ["moi-q4-b", "moi-q4-a"], "the live list of the current quarter");
}

#[test]
fn without_data_the_page_shows_the_api_error() {
    let d = Daemon::launch("127.0.0.1:1", "nowhere", &[], &[]);
    let dom = dump_dom(&format!("http://{}/", d.addr));
    let status = text_after(&dom, r#"id="state-text""#).unwrap();
    let readiness = status.strip_prefix("no events consumed yet · ").unwrap_or_else(|| panic!("status {status:?}"));
    assert!(["catching up", "restoring"].iter().any(|p| readiness.starts_with(p)), "readiness shown: {status:?}");
    assert!(dom.contains(r#"data-state="warn""#));
    assert_eq!(text_after(&dom, r#"id="empty-text""#), Some("no events consumed yet"));
    assert!(rows(&dom).is_empty());
}

/// Whether any file under `dir` contains `needle` (local storage keys are
/// stored as plain bytes in the profile's LevelDB files).
fn profile_holds(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            profile_holds(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        }
    })
}

/// Rows that moved since the previous refresh are marked, and the rank
/// changes of the watched rankings are listed under the table. Two browser
/// runs share a profile: the second compares with what the first showed.
#[test]
fn rows_that_moved_since_the_last_refresh_are_marked_and_changes_listed() {
    let event = |page_id: &str, reactions: u64, minute: u32| {
        serde_json::json!({
            "page_id": page_id, "page_name": format!("Page {page_id}"), "post_id": "p1",
            "published_at": "2025-08-01T00:00:00Z", "observed_at": format!("2025-08-02T00:{minute:02}:00Z"),
            "reactions": reactions,
        })
        .to_string()
    };
    let events = vec![event("a", 500, 1), event("b", 400, 1), event("c", 300, 1)];
    let d = start_with(&events, 3);
    let profile = TempDir::new("leaderboard-profile");
    let url = format!("http://{}/?window=2025-Q3", d.addr);
    let first = dump_dom_in(&profile.0, &url);
    // The second run can only compare with what the first one stored.
    assert!(profile_holds(&profile.0, b"engagement-monitor:last-ranks"), "the ranks shown were never stored");
    let body = first.split(r#"<tbody id="rows">"#).nth(1).expect("the table body");
    assert!(!body.split("</tbody>").next().unwrap_or_default().contains("data-moved"), "nothing moved yet");
    assert!(first.contains(r#"<li id="changes-none">none yet</li>"#), "no change yet");

    let topic = d
        .logs()
        .iter()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["topic"].as_str().map(String::from));
    produce_strings(&topic.expect("the topic in the start line"), 3, &[event("c", 900, 2)]);
    wait_until("c to lead", READY, || {
        (d.json("/v1/rankings?window=2025-Q3&limit=1")["entries"][0]["page_id"] == "c").then_some(())
    });
    wait_until("the leader change listed", READY, || {
        let changes = d.json("/v1/rank-changes");
        changes["changes"].as_array()?.iter().any(|c| c["kind"] == "leader" && c["page_id"] == "c").then_some(())
    });
    let second = dump_dom_in(&profile.0, &url);
    let moved: Vec<(String, Option<String>)> = second
        .split(r#"<tbody id="rows">"#)
        .nth(1)
        .expect("the table body")
        .split("<tr ")
        .skip(1)
        .map(|tr| {
            let tag = format!(" {}", &tr[..tr.find('>').unwrap_or(0)]);
            (unescape(attr(&tag, "data-page-id").unwrap_or_default()), attr(&tag, "data-moved").map(String::from))
        })
        .collect();
    let want = [("c", Some("up")), ("a", Some("down")), ("b", Some("down"))];
    assert_eq!(moved, want.map(|(p, m)| (p.to_string(), m.map(String::from))));
    assert!(second.contains(r#"<li data-kind="leader" data-page-id="c">"#), "the leader change is listed");
}

/// The text of each row's groups tag (`None` for a row without groups).
fn row_groups(dom: &str) -> Vec<Option<String>> {
    let body = dom.split(r#"<tbody id="rows">"#).nth(1).expect("the table body").split("</tbody>").next().unwrap();
    body.split("<tr ")
        .skip(1)
        .map(|tr| {
            let tag = &tr[tr.find(r#"<span class="groups""#)?..];
            let tag = &tag[..tag.find('>')?];
            if tag.contains(" hidden=") {
                return None;
            }
            text_after(tr, r#"groups: </span"#).map(|t| unescape(t.trim_start_matches('>')))
        })
        .collect()
}

/// Pages of a group: with the seed pages in `category:government` and a
/// tail of larger media and celebrity pages on the same topic, the page
/// opens on the daemon's configured group (`ranking.groups`) and shows the
/// reference table; `group=all` shows every page, the tail first; a group
/// no page is in falls back to all pages with a note.
#[test]
fn the_page_opens_on_the_configured_group_and_picks_all_pages() {
    use engagement_core::synth::groups::{TAIL_PAGES, seed_directory, tail_events};

    let (topic, directory) = (unique("leaderboard-groups"), unique("leaderboard-directory"));
    create_topic(&topic, 3);
    let mut events = seed_events();
    events.extend(tail_events());
    produce_strings(&topic, 3, &events);
    create_compacted_topic(&directory);
    produce_records(&directory, &seed_directory());
    let d = Daemon::start(
        &topic,
        &["--directory-topic", &directory],
        &[("ENGAGEMENT_MONITOR_RANKING_GROUPS", "category:government")],
    );
    d.wait_ready(READY);
    let all_pages = SEED_TABLE.len() + TAIL_PAGES.len();
    wait_until("every page and the directory in the view", READY, || {
        let all = d.json("/v1/rankings?window=2025-Q3")["total_pages"] == all_pages;
        let (code, body) = d.get("/v1/rankings?window=2025-Q3&group=category:government");
        let group =
            code == 200 && serde_json::from_str::<serde_json::Value>(&body).ok()?["total_pages"] == SEED_TABLE.len();
        (all && group).then_some(())
    });
    assert_eq!(d.json("/v1/groups")["configured"], serde_json::json!(["category:government"]));
    let base = format!("http://{}/", d.addr);

    // A screenshot of the group view.
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("leaderboard-group.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium(&[&format!("--screenshot={}", png.display()), "--window-size=1280,900"], &base);
    assert_eq!(shot.console_lines(), Vec::<&str>::new(), "console output while taking the screenshot");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000, "{} is not a screenshot", png.display());

    // (a) No group in the URL: the configured group, the reference table.
    let dom = dump_dom(&base);
    assert!(
        dom.contains(r#"<option value="category:government" selected="">category: government (5)</option>"#),
        "the picker is on the configured group: {}",
        dom.split(r#"<select id="group""#).nth(1).map_or("(no picker)", |s| &s[..s.len().min(1500)])
    );
    assert!(dom.contains(r#"<option value="all">All pages</option>"#), "All pages is offered");
    assert!(dom.contains(r#"<option value="category:media">category: media ("#), "every group is offered");
    assert!(dom.contains(r#"<label class="scope">Group <select id="group" name="group""#), "the picker is labelled");
    let got = rows(&dom);
    let ids: Vec<&str> = got.iter().map(|r| r.page_id.as_str()).collect();
    let seed: Vec<&str> = SEED_TABLE.iter().map(|p| p.id).collect();
    assert_eq!(ids, seed, "the reference table, and no tail page");
    for (i, (row, want)) in got.iter().zip(&SEED_TABLE).enumerate() {
        assert_eq!(row.rank, (i + 1).to_string());
        assert_eq!(row.name, want.name);
        assert_eq!(row.value, thousands(want.interactions));
    }
    let groups = row_groups(&dom);
    assert_eq!(groups[0].as_deref(), Some("government · US · g20-gov"), "{groups:?}");
    assert_eq!(groups[2].as_deref(), Some("government · KH"), "{groups:?}");
    assert_eq!(text_after(&dom, r#"id="s-window""#), Some("2025-Q3"), "the current quarter");
    assert_eq!(text_after(&dom, r#"id="s-pages""#), Some("5"));
    assert!(
        dom.contains(
            r#"href="/v1/rankings?window=current&amp;metric=interactions&amp;group=category:government&amp;limit=10""#
        ),
        "the JSON link names the group"
    );
    assert!(dom.contains(r#"<p class="notice" id="group-note" role="status" hidden="">"#), "no note");

    // (b) All pages, explicitly: the tail leads.
    let dom = dump_dom(&format!("{base}?group=all&window=2025-Q3"));
    assert!(dom.contains(r#"<option value="all" selected="">All pages</option>"#), "the picker is on All pages");
    let got = rows(&dom);
    assert_eq!(got[0].page_id, TAIL_PAGES[0].0, "a tail page leads all pages");
    assert!(got.iter().all(|r| r.page_id != "whitehouse"), "the White House is not in the top 10 of all pages");
    assert_eq!(row_groups(&dom)[0].as_deref(), Some("media · US"));
    assert_eq!(text_after(&dom, r#"id="s-pages""#), Some(all_pages.to_string().as_str()));
    assert!(dom.contains(r#"href="/v1/rankings?window=2025-Q3&amp;metric=interactions&amp;limit=10""#));

    // (d) Groups the URL selects: both, ranked among their pages.
    let dom = dump_dom(&format!("{base}?group=category:government&group=country:US&window=2025-Q3"));
    let ids: Vec<String> = rows(&dom).into_iter().map(|r| format!("{} {}", r.rank, r.page_id)).collect();
    assert_eq!(ids, ["1 whitehouse", "2 ice.gov"], "the government pages of the US");
    assert_eq!(text_after(&dom, r#"id="s-pages""#), Some("2"));

    // (c) A group no page is in: all pages, with a visible note.
    let dom = dump_dom(&format!("{base}?group=category:vanished&window=2025-Q3"));
    assert!(dom.contains(r#"<option value="all" selected="">All pages</option>"#), "fell back to All pages");
    assert_eq!(rows(&dom)[0].page_id, TAIL_PAGES[0].0);
    assert!(dom.contains(r#"<p class="notice" id="group-note" role="status">"#), "the note is shown");
    assert_eq!(
        text_after(&dom, r#"id="group-note-text""#),
        Some("No page is in category: vanished any more, so all pages are shown.")
    );
}

/// Counts, in a PNG screenshot, the pixels near each colour given as `rrggbb`
/// (every channel within 24, for antialiased edges) and prints
/// `width height count...`. Python's zlib inflates the image data, as no PNG
/// decoder is a dependency of the tests; Chromium writes 8-bit RGB(A) PNGs
/// without interlacing.
const PNG_COLOURS: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
bpp = 3 if ctype == 2 else 4
raw, stride, prev = zlib.decompress(idat), w * bpp, bytearray(w * bpp)
want = [tuple(int(c[i:i + 2], 16) for i in (0, 2, 4)) for c in sys.argv[2:]]
counts = [0] * len(want)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, stride, bpp):
        for k, (r, g, b) in enumerate(want):
            if abs(line[x] - r) <= 24 and abs(line[x + 1] - g) <= 24 and abs(line[x + 2] - b) <= 24:
                counts[k] += 1
print(w, h, *counts)
"#;

/// How many pixels of `png` are near each of `colours` (`#rrggbb`).
fn colour_counts(png: &Path, colours: &[&str]) -> Vec<u64> {
    let out = Command::new("python3")
        .args(["-c", PNG_COLOURS])
        .arg(png)
        .args(colours.iter().map(|c| c.trim_start_matches('#')))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "reading {}: {}", png.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().skip(2).map(|n| n.parse().unwrap()).collect()
}

/// A screenshot of `url` at 1280×900 in `artifacts_dir()/name`, with the
/// console checked.
fn screenshot(url: &str, name: &str) -> PathBuf {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(name);
    let _ = std::fs::remove_file(&png);
    let shot = chromium(&[&format!("--screenshot={}", png.display()), "--window-size=1280,900"], url);
    assert_eq!(shot.console_lines(), Vec::<&str>::new(), "console output while taking the screenshot of {url}");
    assert!(png.exists(), "no screenshot at {}", png.display());
    png
}

/// The light-mode value of a CSS custom property of the page, e.g. `--c0`.
fn css_colour(dom: &str, name: &str) -> String {
    let at =
        dom.find(&format!("{name}: #")).unwrap_or_else(|| panic!("{name} is not in the page's style")) + name.len() + 2;
    dom[at..at + 7].to_string()
}

/// The chart of the page view: its `<svg>` element.
fn chart_svg(dom: &str) -> &str {
    let at = dom.find(r#"<svg id="ch-svg""#).expect("the chart's svg in the page view");
    &dom[at..at + dom[at..].find("</svg>").expect("the end of the chart")]
}

/// The running-total lines of a chart: each page with its points, y
/// growing downwards as in SVG.
fn chart_lines(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    svg.split("<polyline")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find('>').unwrap()];
            let points = attr(tag, "points").expect("points").split(' ').map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().unwrap(), y.parse().unwrap())
            });
            (unescape(attr(tag, "data-page").expect("data-page")), points.collect())
        })
        .collect()
}

/// The page view charts the page's days in the selected window and, with
/// `compare=` pages, every page's running total: the Ministry of Interior
/// starts below the White House and ends above it, and the view says when
/// it passed. The screenshot shows both lines in their colours.
#[test]
fn the_page_view_charts_a_comparison_and_names_its_overtakes() {
    let mut events = seed_events();
    events.push(viral_post_of_the_ministry());
    let d = start_with(&events, SEED_TABLE.len());
    wait_until("the viral post in the view", READY, || {
        (d.json("/v1/rankings?window=2025-Q3&limit=1")["entries"][0]["page_id"] == "moi.egy").then_some(())
    });
    let base = format!("http://{}/", d.addr);
    let (moi, wh) = (&SEED_TABLE[1], &SEED_TABLE[0]);
    let compared = format!("{base}?page=facebook/moi.egy&compare=facebook/whitehouse&window=2025-Q3");

    // Two running totals that cross: the MoI from below to above.
    let dom = dump_dom(&compared);
    let svg = chart_svg(&dom);
    assert!(svg.contains(r#"role="img""#) && svg.contains(r#"aria-labelledby="ch-title""#), "the chart has a name");
    assert!(svg.contains(r#"<title id="ch-title">Running total of interactions, 2025-Q3</title>"#), "{svg}");
    let lines = chart_lines(svg);
    let pages: Vec<&str> = lines.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pages, ["facebook/moi.egy", "facebook/whitehouse"], "one line per page, in the URL's order");
    let (moi_line, wh_line) = (&lines[0].1, &lines[1].1);
    assert_eq!((moi_line.len(), wh_line.len()), (92, 92), "a point per day of 2025-Q3");
    assert!(moi_line[0].1 > wh_line[0].1, "the MoI starts below: {:?} vs {:?}", moi_line[0], wh_line[0]);
    let (moi_end, wh_end) = (moi_line.last().unwrap(), wh_line.last().unwrap());
    assert!(moi_end.1 < wh_end.1, "the MoI ends above: {moi_end:?} vs {wh_end:?}");
    let overtakes = dom.split(r#"<ol id="ch-overtakes" aria-label="Overtakes">"#).nth(1).expect("the overtakes");
    let passed = format!(
        r#"<li><bdi>{}</bdi> passed <bdi>{}</bdi> on <time datetime="2025-09-28">2025-09-28</time></li></ol>"#,
        moi.name, wh.name
    );
    assert!(overtakes.starts_with(&passed), "the overtake is named: {}", &overtakes[..overtakes.len().min(600)]);
    assert!(dom.contains(r#"aria-label="Remove The White House from the comparison">Remove</button>"#));
    assert!(
        dom.contains(r#"id="pv-close" href="?window=2025-Q3&amp;metric=interactions""#),
        "close ends the comparison"
    );

    // Both CSV links answer a day per row.
    for (id, want) in [
        ("ch-csv", "/v1/pages/facebook/moi.egy/series?window=2025-Q3&bucket=day&format=csv"),
        (
            "cmp-csv",
            "/v1/compare?page=facebook/moi.egy&page=facebook/whitehouse&window=2025-Q3&bucket=day&metric=interactions&format=csv",
        ),
    ] {
        let tag = &dom[dom.find(&format!(r#"id="{id}""#)).expect(id)..];
        let href = unescape(attr(&tag[..tag.find('>').unwrap()], "href").expect("href"));
        assert_eq!(href, want, "{id}");
        let (code, csv) = d.get(&href);
        assert_eq!(code, 200, "{href}: {csv}");
        assert!(csv.lines().filter(|l| !l.is_empty()).count() > 92 && csv.contains("2025-09-28"), "{href}: {csv}");
    }

    // One page alone: its days as bars, its running total, its rank.
    let dom = dump_dom(&format!("{base}?page=facebook/moi.egy&window=2025-Q3"));
    let svg = chart_svg(&dom);
    assert!(svg.contains(r#"<title id="ch-title">Interactions per day, 2025-Q3</title>"#), "{svg}");
    assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 92, "a bar per day");
    assert_eq!(chart_lines(svg).len(), 1, "the running total");
    let rank = d.json("/v1/pages/facebook/moi.egy/series?window=2025-Q3&bucket=day")["rank"].as_u64().expect("a rank");
    assert_eq!(rank, 1, "the viral post puts the MoI first");
    assert_eq!(text_after(&dom, r#"id="ch-rank""#), Some("rank #1 in 2025-Q3 by interactions"));
    assert!(dom.contains(r#"id="cmp-csv" href="/v1/rankings" download="" hidden="">"#), "no comparison, no link");

    // In the screenshot, the pixels of each page's line colour: a line
    // across the chart has a thousand; the leaderboard alone has none.
    let colours = [css_colour(&dom, "--c0"), css_colour(&dom, "--c1")];
    let colours: Vec<&str> = colours.iter().map(String::as_str).collect();
    let with_chart = colour_counts(&screenshot(&compared, "leaderboard-compare.png"), &colours);
    assert!(
        with_chart.iter().all(|&n| n >= 400),
        "both lines in the screenshot, pixels of {colours:?}: {with_chart:?}"
    );
    let without = colour_counts(&screenshot(&format!("{base}?window=2025-Q3"), "leaderboard-no-chart.png"), &colours);
    assert!(without.iter().all(|&n| n < 40), "the colours are the chart's alone, pixels of {colours:?}: {without:?}");
}
