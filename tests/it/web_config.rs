//! The web config file (`--web.config.file`, exporter-toolkit format)
//! against real clients: a CA, server and client certificates made by
//! `openssl` at test time, bcrypt hashes by `htpasswd` (apache2-utils),
//! and requests by `curl` and by Python's `urllib`/`ssl`; then a real
//! Prometheus scraping `/metrics` over TLS with basic auth.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::stack;
use crate::support::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-horse";
const WRONG: &str = "not-the-password-42";

/// A CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate, and a second CA that signed nothing of the server's.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("pki");
        let pki = Pki { dir };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
        pki.leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
        pki.leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth\n");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A self-signed CA: `{name}.crt`, `{name}.key`.
    fn ca(&self, name: &str) {
        let dir = self.dir.0.display();
        openssl(&format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-{name} \
             -keyout {dir}/{name}.key -out {dir}/{name}.crt \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ));
    }

    /// A certificate signed by `ca` with `extensions`: `{name}.crt`, `{name}.key`.
    fn leaf(&self, name: &str, ca: &str, extensions: &str) {
        let dir = self.dir.0.display();
        let ext = format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}");
        std::fs::write(self.path(&format!("{name}.ext")), ext).unwrap();
        openssl(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN={name} \
             -keyout {dir}/{name}.key -out {dir}/{name}.csr"
        ));
        openssl(&format!(
            "x509 -req -in {dir}/{name}.csr -CA {dir}/{ca}.crt -CAkey {dir}/{ca}.key -set_serial 2 -days 2 \
             -extfile {dir}/{name}.ext -out {dir}/{name}.crt"
        ));
    }

    /// Writes a web config file naming the server's certificate and key
    /// relative to its own directory, with `rest` appended.
    fn web_config(&self, tls_extra: &str, rest: &str) -> PathBuf {
        let path = self.path(&format!("{}.yml", unique("web")));
        let text = format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{tls_extra}{rest}");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Runs `openssl` with the words of `args` (temporary paths have no spaces).
fn openssl(args: &str) {
    let out = Command::new("openssl").args(args.split_whitespace()).output().expect("openssl runs (Debian's openssl)");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `basic_auth_users` with USER's bcrypt hash (cost 10) made by htpasswd.
fn users() -> String {
    users_with(PASSWORD)
}

/// `basic_auth_users` with a bcrypt hash of `password` for USER.
fn users_with(password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-nbBC", "10", USER, password])
        .output()
        .expect("htpasswd runs (apache2-utils; scripts/install-deps.sh installs it)");
    assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    let (user, hash) = line.trim().split_once(':').expect("user:hash");
    assert!(hash.starts_with("$2y$10$"), "{hash}");
    format!("basic_auth_users:\n  {user}: '{hash}'\n")
}

/// What curl got: the status and headers, or how it failed.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `curl -sS -i` with `args`; `Err` with curl's exit code and message when
/// it got no HTTP answer (a refused handshake, say).
fn curl(args: &[&str]) -> Result<Answer, String> {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs (scripts/install-deps.sh installs it)");
    if !out.status.success() {
        return Err(format!("curl exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok(Answer { status, head: head.to_owned(), body: body.to_owned() })
}

/// curl over https to `path` of `addr`, trusting `ca`, with `extra` args.
fn https(addr: &str, path: &str, ca: &Path, extra: &[&str]) -> Result<Answer, String> {
    let url = format!("https://{addr}{path}");
    let ca = ca.display().to_string();
    curl(&[&["--cacert", ca.as_str(), url.as_str()], extra].concat())
}

fn with_password(password: &str) -> String {
    format!("{USER}:{password}")
}

const PYTHON_CLIENT: &str = r#"
import base64, json, ssl, sys, urllib.error, urllib.request
url, ca, user, password, cert, key = sys.argv[1:7]
out = {"status": None, "www_authenticate": None, "error": None}
try:
    ctx = ssl.create_default_context(cafile=ca or None)
    if cert:
        ctx.load_cert_chain(cert, key)
    req = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
        out["status"] = resp.status
except urllib.error.HTTPError as e:
    out["status"] = e.code
    out["www_authenticate"] = e.headers.get("WWW-Authenticate")
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"#;

/// Python's urllib with an `ssl` context trusting `ca` (empty: the
/// system's), basic auth when `user` is not empty, a client certificate
/// when `cert` is: `{"status", "www_authenticate", "error"}`.
fn python(url: &str, ca: &str, user: &str, password: &str, cert: &str, key: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", PYTHON_CLIENT, url, ca, user, password, cert, key])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn start(topic: &str, web_config: &Path, env: &[(&str, &str)]) -> Daemon {
    create_topic(topic, 1);
    Daemon::start(topic, &["--web.config.file", &web_config.display().to_string()], env)
}

/// The value of `sample` in `/metrics`, read with the right password.
fn metric(addr: &str, ca: &Path, sample: &str) -> Option<f64> {
    let answer = https(addr, "/metrics", ca, &["-u", &with_password(PASSWORD)]).expect("metrics over TLS");
    answer.body.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

#[test]
fn plain_http_still_works_without_a_web_config_file() {
    let topic = unique("plain");
    create_topic(&topic, 1);
    let d = Daemon::start(&topic, &[], &[]);
    assert_eq!(d.get("/v1/windows").0, 200);
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("engagement_http_auth_failures_total{reason=\"missing\"} 0"), "{metrics}");
    assert_eq!(d.get("/healthz").0, 200);
    let tls = curl(&["--insecure", &format!("https://{}/healthz", d.addr)]);
    assert!(tls.is_err(), "no TLS without a web config file: {tls:?}");
}

#[test]
fn tls_and_basic_auth_let_in_the_right_password_only() {
    let pki = Pki::new();
    let headers = "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n";
    let config = pki.web_config("", &format!("{headers}{}", users()));
    let topic = unique("tls-auth");
    let d = start(&topic, &config, &[]);
    let (addr, ca) = (d.addr.as_str(), pki.path("ca.crt"));
    let right = with_password(PASSWORD);

    for path in ["/v1/windows", "/metrics", "/healthz", "/"] {
        let ok = https(addr, path, &ca, &["-u", &right]).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(ok.status, 200, "{path}: {ok:?}");
        assert!(ok.head.to_ascii_lowercase().contains("x-frame-options: deny"), "{path}: {}", ok.head);
    }
    let url = format!("https://{addr}/v1/windows");
    let ok = python(&url, &pki.s("ca.crt"), USER, PASSWORD, "", "");
    assert_eq!(ok["status"], 200, "{ok}");

    // Refused: no password, a wrong one, an unknown user; the probes too,
    // by default. Each is one count of its reason.
    let missing = https(addr, "/v1/windows", &ca, &[]).unwrap();
    assert_eq!(missing.status, 401, "{missing:?}");
    assert!(missing.head.to_ascii_lowercase().contains("\nwww-authenticate: basic"), "{}", missing.head);
    assert!(missing.head.to_ascii_lowercase().contains("x-frame-options: deny"), "headers on refusals too");
    assert_eq!(https(addr, "/metrics", &ca, &["-u", &with_password(WRONG)]).unwrap().status, 401);
    assert_eq!(https(addr, "/healthz", &ca, &[]).unwrap().status, 401, "probes are closed by default");
    assert_eq!(https(addr, "/v1/windows", &ca, &["-u", &format!("mallory:{PASSWORD}")]).unwrap().status, 401);
    let no_password = python(&url, &pki.s("ca.crt"), "", "", "", "");
    assert_eq!(no_password["status"], 401, "{no_password}");
    assert!(no_password["www_authenticate"].as_str().is_some_and(|v| v.starts_with("Basic")), "{no_password}");
    let wrong = python(&format!("https://{addr}/metrics"), &pki.s("ca.crt"), USER, WRONG, "", "");
    assert_eq!(wrong["status"], 401, "{wrong}");
    assert_eq!(metric(addr, &ca, "engagement_http_auth_failures_total{reason=\"missing\"}"), Some(3.0));
    assert_eq!(metric(addr, &ca, "engagement_http_auth_failures_total{reason=\"wrong\"}"), Some(3.0));
    assert_eq!(metric(addr, &ca, "engagement_http_auth_failures_total{reason=\"malformed\"}"), Some(0.0));
    let logs = d.logs();
    assert!(
        logs.iter().any(|l| l.contains("HTTP request refused by basic auth") && l.contains("127.0.0.1")),
        "{logs:#?}"
    );
    assert!(!logs.iter().any(|l| l.contains(WRONG) || l.contains(PASSWORD)), "no password is logged");

    // Not TLS, or not trusting the server's CA: no answer at all.
    let plain = curl(&[&format!("http://{addr}/v1/windows"), "-u", &right]);
    assert!(plain.is_err(), "plain HTTP to the TLS port: {plain:?}");
    let plain = python(&format!("http://{addr}/v1/windows"), "", USER, PASSWORD, "", "");
    assert!(plain["status"].is_null() && plain["error"].is_string(), "{plain}");
    let untrusted = https(addr, "/v1/windows", &pki.path("other-ca.crt"), &["-u", &right]);
    assert!(untrusted.as_ref().is_err_and(|e| e.contains("exit Some(60)")), "{untrusted:?}");
    let untrusted = python(&url, &pki.s("other-ca.crt"), USER, PASSWORD, "", "");
    assert!(untrusted["error"].as_str().is_some_and(|e| e.contains("CERTIFICATE_VERIFY_FAILED")), "{untrusted}");
    // Each of those four is a failed handshake, counted once its
    // connection is done.
    let failed = r#"engagement_http_tls_handshake_failures_total{reason="failed"}"#;
    wait_until("four failed handshakes counted", Duration::from_secs(10), || {
        (metric(addr, &ca, failed)? >= 4.0).then_some(())
    });
    assert_eq!(metric(addr, &ca, failed), Some(4.0));
    let timed_out = r#"engagement_http_tls_handshake_failures_total{reason="timed_out"}"#;
    assert_eq!(metric(addr, &ca, timed_out), Some(0.0));
}

/// Replaces `path` with `text` at once (as Kubernetes swaps a mounted
/// Secret): written beside it, then renamed over it.
fn replace(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

#[test]
fn a_changed_web_config_is_served_without_a_restart_and_a_bad_change_is_refused() {
    let pki = Pki::new();
    pki.ca("next-ca");
    pki.leaf("renewed", "next-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    let config = pki.web_config("", &users());
    let d = start(&unique("reload"), &config, &[]);
    let addr = d.addr.as_str();
    let (ca, next_ca) = (pki.path("ca.crt"), pki.path("next-ca.crt"));
    let reloads = |ca: &Path, result: &str| {
        metric(addr, ca, &format!("engagement_http_web_config_reloads_total{{result=\"{result}\"}}"))
    };
    let successful = "engagement_http_web_config_last_reload_successful";
    assert_eq!(https(addr, "/v1/windows", &ca, &["-u", &with_password(PASSWORD)]).unwrap().status, 200);
    assert_eq!((reloads(&ca, "ok"), reloads(&ca, "failed")), (Some(0.0), Some(0.0)));
    assert_eq!(metric(addr, &ca, successful), Some(1.0));

    // A renewed certificate (of another CA, so that the test can tell) and
    // another password: the next connection has both, without a restart.
    let renewed = "tls_server_config:\n  cert_file: renewed.crt\n  key_file: renewed.key\n";
    let good = format!("{renewed}{}", users_with(WRONG));
    replace(&config, &good);
    wait_until("the renewed certificate to be served", Duration::from_secs(15), || {
        https(addr, "/healthz", &next_ca, &["-u", &with_password(WRONG)]).ok().filter(|a| a.status == 200)
    });
    let old_ca = https(addr, "/healthz", &ca, &["-u", &with_password(WRONG)]);
    assert!(old_ca.as_ref().is_err_and(|e| e.contains("exit Some(60)")), "the old certificate is gone: {old_ca:?}");
    let old_password = https(addr, "/v1/windows", &next_ca, &["-u", &with_password(PASSWORD)]).unwrap();
    assert_eq!(old_password.status, 401, "the old password is refused: {old_password:?}");
    let now = |sample: &str| {
        let answer = https(addr, "/metrics", &next_ca, &["-u", &with_password(WRONG)]).expect("metrics over TLS");
        answer.body.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok())
    };
    let ok = r#"engagement_http_web_config_reloads_total{result="ok"}"#;
    let failed = r#"engagement_http_web_config_reloads_total{result="failed"}"#;
    assert_eq!((now(ok), now(failed), now(successful)), (Some(1.0), Some(0.0), Some(1.0)));
    let served = d.logs().iter().filter(|l| l.contains("web config file changed: read again and served")).count();
    assert_eq!(served, 1, "said once");

    // A change that cannot be served is refused, said once, and counted;
    // what was served stays served. Switching TLS off is one such change.
    for (n, (bad, why)) in [
        (
            "tls_server_config:\n  cert_file: renewed.crt\n  key_file: key-that-is-not-there.key\n".to_string(),
            "cannot read",
        ),
        (users_with(WRONG), "switching it needs a restart"),
    ]
    .into_iter()
    .enumerate()
    {
        replace(&config, &bad);
        let n = n as f64 + 1.0;
        wait_until(&format!("refusal {n} to be counted"), Duration::from_secs(15), || {
            (now(failed)? == n).then_some(())
        });
        assert_eq!(now(successful), Some(0.0));
        let said: Vec<String> =
            d.logs().into_iter().filter(|l| l.contains("cannot be served") && l.contains(why)).collect();
        assert_eq!(said.len(), 1, "{why}: said once, naming the reason: {said:#?}");
        assert!(said[0].contains("ERROR") && said[0].contains(&config.display().to_string()), "{}", said[0]);
        let still = https(addr, "/v1/windows", &next_ca, &["-u", &with_password(WRONG)]).unwrap();
        assert_eq!(still.status, 200, "the reading before is still served: {still:?}");
    }
    // Two reload periods with no change: nothing is read or said again.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(now(failed), Some(2.0), "an unchanged refused file is not read again every second");

    // Put right, it is served again.
    replace(&config, &good);
    wait_until("the mended file to be served", Duration::from_secs(15), || (now(successful)? == 1.0).then_some(()));
    assert_eq!((now(ok), now(failed)), (Some(2.0), Some(2.0)));
}

#[test]
fn probes_can_answer_without_credentials() {
    let pki = Pki::new();
    let config = pki.web_config("", &users());
    let d = start(&unique("open-probes"), &config, &[("ENGAGEMENT_MONITOR_HTTP_PROBES_WITHOUT_AUTH", "true")]);
    let (addr, ca) = (d.addr.as_str(), pki.path("ca.crt"));
    assert_eq!(https(addr, "/healthz", &ca, &[]).unwrap().status, 200);
    let ready = https(addr, "/readyz", &ca, &[]).unwrap().status;
    assert!(ready == 200 || ready == 503, "/readyz answers, ready or not: {ready}");
    assert_eq!(https(addr, "/v1/windows", &ca, &[]).unwrap().status, 401, "the API stays closed");
    assert_eq!(https(addr, "/metrics", &ca, &[]).unwrap().status, 401, "and /metrics");
    assert_eq!(https(addr, "/healthz/", &ca, &[]).unwrap().status, 401, "only the probes' exact paths are open");
}

#[test]
fn client_certificates_are_required_and_verified() {
    let pki = Pki::new();
    let tls = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
    let config = pki.web_config(tls, "");
    let d = start(&unique("mtls"), &config, &[]);
    let (addr, ca) = (d.addr.as_str(), pki.path("ca.crt"));
    let (cert, key) = (pki.s("client.crt"), pki.s("client.key"));

    let ok = https(addr, "/v1/windows", &ca, &["--cert", &cert, "--key", &key]).expect("with a client certificate");
    assert_eq!(ok.status, 200, "{ok:?}");
    let url = format!("https://{addr}/v1/windows");
    let ok = python(&url, &pki.s("ca.crt"), "", "", &cert, &key);
    assert_eq!(ok["status"], 200, "{ok}");

    let none = https(addr, "/v1/windows", &ca, &[]);
    assert!(none.is_err(), "without a client certificate: {none:?}");
    let none = python(&url, &pki.s("ca.crt"), "", "", "", "");
    assert!(none["status"].is_null() && none["error"].is_string(), "{none}");
    let (stranger, stranger_key) = (pki.s("stranger.crt"), pki.s("stranger.key"));
    let foreign = https(addr, "/v1/windows", &ca, &["--cert", &stranger, "--key", &stranger_key]);
    assert!(foreign.is_err(), "a certificate of another CA: {foreign:?}");
}

#[test]
fn the_other_client_auth_types_and_min_version_do_what_they_say() {
    let pki = Pki::new();
    let (cert, key) = (pki.s("client.crt"), pki.s("client.key"));
    let (stranger, stranger_key) = (pki.s("stranger.crt"), pki.s("stranger.key"));
    let ca = pki.path("ca.crt");

    // RequireAnyClientCert: some certificate, whoever signed it.
    let any = start(&unique("any-cert"), &pki.web_config("  client_auth_type: RequireAnyClientCert\n", ""), &[]);
    let foreign = https(&any.addr, "/v1/windows", &ca, &["--cert", &stranger, "--key", &stranger_key]);
    assert_eq!(foreign.map(|a| a.status), Ok(200), "any certificate will do");
    assert!(https(&any.addr, "/v1/windows", &ca, &[]).is_err(), "but one is required");

    // VerifyClientCertIfGiven, TLS 1.3 only: none is fine, a foreign one is not.
    let tls = "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  min_version: TLS13\n";
    let given = start(&unique("if-given"), &pki.web_config(tls, ""), &[]);
    assert_eq!(https(&given.addr, "/v1/windows", &ca, &[]).map(|a| a.status), Ok(200), "no certificate");
    let ok = https(&given.addr, "/v1/windows", &ca, &["--cert", &cert, "--key", &key]);
    assert_eq!(ok.map(|a| a.status), Ok(200), "the CA's certificate");
    let foreign = https(&given.addr, "/v1/windows", &ca, &["--cert", &stranger, "--key", &stranger_key]);
    assert!(foreign.is_err(), "a certificate given is verified: {foreign:?}");
    let old = https(&given.addr, "/v1/windows", &ca, &["--tls-max", "1.2"]);
    assert!(old.is_err(), "TLS 1.2 is below min_version: {old:?}");
    assert_eq!(
        https(&any.addr, "/v1/windows", &ca, &["--tls-max", "1.2", "--cert", &cert, "--key", &key]).map(|a| a.status),
        Ok(200),
        "TLS 1.2 by default"
    );
}

#[test]
fn a_silent_client_loses_its_slot_at_the_header_timeout() {
    let pki = Pki::new();
    let config = pki.web_config("", "");
    let env = [("ENGAGEMENT_MONITOR_HTTP_HEADER_TIMEOUT", "1s"), ("ENGAGEMENT_MONITOR_HTTP_MAX_CONNECTIONS", "1")];
    let d = start(&unique("silent"), &config, &env);
    let (addr, ca) = (d.addr.as_str(), pki.path("ca.crt"));
    assert_eq!(https(addr, "/healthz", &ca, &[]).unwrap().status, 200);

    // The only slot, taken by a client that never starts its handshake.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let opened = Instant::now();
    let mut byte = [0u8; 1];
    let closed = silent.read(&mut byte);
    let held = opened.elapsed();
    let by_server = match &closed {
        Ok(n) => *n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(by_server && held < Duration::from_secs(8), "closed by the daemon: {closed:?} after {held:?}");
    assert!(held >= Duration::from_millis(900), "closed at the header timeout, not before: {held:?}");
    assert_eq!(https(addr, "/healthz", &ca, &[]).unwrap().status, 200, "the slot is free again");
    let sample = r#"engagement_http_tls_handshake_failures_total{reason="timed_out"}"#;
    let (_, text) = https(addr, "/metrics", &ca, &[]).map(|a| (a.status, a.body)).unwrap();
    let timed_out = text.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok());
    assert_eq!(timed_out, Some(1.0), "the silent client's handshake is counted as timed out");
}

#[test]
fn a_bad_web_config_stops_the_start_and_check_config_says_why() {
    let pki = Pki::new();
    let cases = [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suite: [x]\n",
            "unknown field `cipher_suite`",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [x]\n",
            "tls_server_config.cipher_suites is not supported",
        ),
        ("basic_auth_users:\n  alice: hunter2\n", "basic_auth_users.alice is not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: server.csr\n  key_file: server.key\n", "tls_server_config.cert_file"),
        ("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n", "cannot be used together"),
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n", "cannot read"),
    ];
    let brokers = brokers();
    for (text, expected) in cases {
        let web = pki.path(&format!("{}.yml", unique("bad")));
        std::fs::write(&web, text).unwrap();
        let web = web.display().to_string();
        let args = ["run", "--brokers", &brokers, "--listen", "127.0.0.1:0", "--web.config.file", &web];
        let run = run_to_exit(&args, &[], Duration::from_secs(20));
        assert!(!run.status.success(), "{text}");
        assert!(run.stderr.contains(expected) && run.stderr.contains(&web), "{expected}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked") && !run.stderr.contains("hunter2"), "{}", run.stderr);

        let toml = pki.path(&format!("{}.toml", unique("em")));
        std::fs::write(&toml, format!("[http]\nweb_config_file = {web:?}\n")).unwrap();
        let check = run_to_exit(&["check-config", &toml.display().to_string()], &[], Duration::from_secs(20));
        assert!(!check.status.success(), "check-config refuses it as run does: {text}");
        assert!(check.stderr.contains(expected), "{expected}: {}", check.stderr);
    }
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let pki = Pki::new();
    let config = pki.web_config("", &users());
    let d = start(&unique("scraped"), &config, &[]);
    let prometheus = stack::prometheus_tls(&d.addr, &pki.path("ca.crt"), USER, PASSWORD);
    let up = stack::wait_for_value(&prometheus, "up{job=\"engagement-monitor\"}", 1.0, Duration::from_secs(30));
    assert_eq!(up, Some(1.0), "the scrape succeeds: {}", stack::target_error(&prometheus));
    let build = stack::wait_for_value(&prometheus, "engagement_build_info", 1.0, Duration::from_secs(30));
    assert_eq!(build, Some(1.0), "a daemon metric came through the scrape");
    assert_eq!(
        metric(&d.addr, &pki.path("ca.crt"), "engagement_http_auth_failures_total{reason=\"wrong\"}"),
        Some(0.0),
        "Prometheus never failed to authenticate"
    );
}
