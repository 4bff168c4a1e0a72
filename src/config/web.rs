//! The web config file (`http.web_config_file`, flag `--web.config.file`):
//! TLS, response headers and basic authentication, in the YAML format of
//! the Prometheus exporter toolkit, so that one file can serve the daemon
//! and the exporters beside it (docs/operations.md#tls-and-authentication).
//!
//! Parsing is pure ([`parse`]): text in, a checked [`WebConfig`] out, or a
//! message naming the key. Files it names are read later, by the HTTP
//! layer, which loads the certificates and keys. Every key of the format is
//! known: the ones the daemon does not implement are refused by name
//! rather than ignored, so a file never promises what is not done.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The web config file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebConfig {
    /// `tls_server_config`; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `http_server_config.headers`: (name, value), set on every response.
    pub headers: Vec<(&'static str, String)>,
    /// `basic_auth_users`: user name → bcrypt hash; empty = no auth.
    pub users: BTreeMap<String, String>,
}

/// PEM text: a file (relative paths are taken from the web config file's
/// directory, as the exporter toolkit does) or given inline.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl fmt::Debug for Pem {
    /// Inline PEM may be a private key: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "File({})", path.display()),
            Pem::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

/// Whether clients are asked for a certificate and whether it is checked
/// against `client_ca_file`, named as in Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ClientAuth {
    #[default]
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Not required; verified when given.
    VerifyClientCertIfGiven,
    /// Required and verified.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Whether a certificate given is checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert)
    }

    /// Whether a client without a certificate is refused.
    pub fn requires(self) -> bool {
        matches!(self, ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// `tls_server_config`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    pub client_ca: Option<Pem>,
    /// Both TLS 1.2 or 1.3, `min <= max`.
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// `prefer_server_cipher_suites` (default true): the server's order of
    /// cipher suites wins over the client's.
    pub prefer_server_order: bool,
}

// The file as written. Keys the daemon does not implement are read as
// `IgnoredAny` only to be refused by name in `check`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<ClientAuth>,
    client_ca_file: Option<PathBuf>,
    client_allowed_sans: Option<IgnoredAny>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    cipher_suites: Option<IgnoredAny>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<Headers>,
}

/// The headers the format allows, and no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Headers {
    #[serde(rename = "Content-Security-Policy")]
    content_security_policy: Option<String>,
    #[serde(rename = "X-Frame-Options")]
    x_frame_options: Option<String>,
    #[serde(rename = "X-Content-Type-Options")]
    x_content_type_options: Option<String>,
    #[serde(rename = "X-XSS-Protection")]
    x_xss_protection: Option<String>,
    #[serde(rename = "Strict-Transport-Security")]
    strict_transport_security: Option<String>,
}

/// Parses and checks the web config file `path` holding `text`. The
/// error names the key and, for YAML errors, the line; it never quotes a
/// password hash or an inline key.
pub fn parse(path: &Path, text: &str) -> Result<WebConfig, String> {
    // An empty file (or one of comments) is an empty mapping: no TLS, no auth.
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(WebConfig::default());
    }
    let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new(""));
    if file.rate_limit.is_some() {
        return Err(unsupported("rate_limit", "put a rate-limiting proxy in front if one is needed"));
    }
    let tls = file.tls_server_config.map(|t| tls(t, dir)).transpose()?;
    let headers = match file.http_server_config {
        Some(h) => http(h)?,
        None => Vec::new(),
    };
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        check_user(user, hash)?;
    }
    Ok(WebConfig { tls, headers, users })
}

fn unsupported(key: &str, instead: &str) -> String {
    format!("{key} is not supported by engagement-monitor: remove it ({instead})")
}

fn tls(t: TlsFile, dir: &Path) -> Result<TlsSettings, String> {
    let refused = [
        ("client_allowed_sans", t.client_allowed_sans.is_some(), "restrict clients through the client CA"),
        ("cipher_suites", t.cipher_suites.is_some(), "rustls offers only suites without known weaknesses"),
        ("curve_preferences", t.curve_preferences.is_some(), "rustls chooses among safe key exchange groups"),
    ];
    if let Some((key, _, instead)) = refused.iter().find(|(_, set, _)| *set) {
        return Err(unsupported(&format!("tls_server_config.{key}"), instead));
    }
    let cert = pem("cert", t.cert, t.cert_file, dir)?.ok_or("tls_server_config needs cert_file (or cert)")?;
    let key = pem("key", t.key, t.key_file, dir)?.ok_or("tls_server_config needs key_file (or key)")?;
    let client_ca = pem("client_ca", t.client_ca, t.client_ca_file, dir)?;
    let client_auth = t.client_auth_type.unwrap_or_default();
    match (client_auth.verifies(), &client_ca) {
        (true, None) => {
            return Err(format!(
                "tls_server_config.client_auth_type {client_auth:?} needs client_ca_file (or client_ca)"
            ));
        }
        (false, Some(_)) => {
            return Err(format!(
                "tls_server_config.client_ca_file is set but client_auth_type {client_auth:?} does not verify client \
                 certificates: use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
        _ => {}
    }
    let min_version = version("min_version", t.min_version.unwrap_or(TlsVersion::TLS12))?;
    let max_version = version("max_version", t.max_version.unwrap_or(TlsVersion::TLS13))?;
    if min_version > max_version {
        return Err("tls_server_config.min_version is above max_version".into());
    }
    let prefer_server_order = t.prefer_server_cipher_suites.unwrap_or(true);
    Ok(TlsSettings { cert, key, client_auth, client_ca, min_version, max_version, prefer_server_order })
}

/// One PEM given inline (`key`) or as a file (`key_file`), not both.
fn pem(key: &str, inline: Option<String>, file: Option<PathBuf>, dir: &Path) -> Result<Option<Pem>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("tls_server_config: set {key} or {key}_file, not both")),
        (Some(text), None) => Ok(Some(Pem::Inline(text))),
        (None, Some(path)) if path.as_os_str().is_empty() => Ok(None),
        (None, Some(path)) => Ok(Some(Pem::File(dir.join(path)))),
        (None, None) => Ok(None),
    }
}

fn version(key: &str, v: TlsVersion) -> Result<TlsVersion, String> {
    match v {
        TlsVersion::TLS10 | TlsVersion::TLS11 => {
            Err(format!("tls_server_config.{key} {v:?} is refused: only TLS12 and TLS13 are served"))
        }
        v => Ok(v),
    }
}

fn http(h: HttpFile) -> Result<Vec<(&'static str, String)>, String> {
    if h.http2 == Some(true) {
        return Err("http_server_config.http2: true is not supported: the daemon serves HTTP/1.1 only; set it to \
                    false or remove it"
            .into());
    }
    let Some(h) = h.headers else { return Ok(Vec::new()) };
    let given = [
        ("Content-Security-Policy", h.content_security_policy),
        ("X-Frame-Options", h.x_frame_options),
        ("X-Content-Type-Options", h.x_content_type_options),
        ("X-XSS-Protection", h.x_xss_protection),
        ("Strict-Transport-Security", h.strict_transport_security),
    ];
    let mut headers = Vec::new();
    // A blank value leaves the header unset, as in the format.
    for (name, value) in given.into_iter().filter_map(|(n, v)| Some((n, v?))).filter(|(_, v)| !v.is_empty()) {
        check_header(name, &value)?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let key = format!("http_server_config.headers.{name}");
    let printable = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if !printable {
        return Err(format!("{key} must be printable ASCII"));
    }
    let allowed: &[&str] = match name {
        "X-Frame-Options" => &["deny", "sameorigin"],
        "X-Content-Type-Options" => &["nosniff"],
        _ => return Ok(()),
    };
    match allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        true => Ok(()),
        false => Err(format!("{key} must be one of {}", allowed.join(", "))),
    }
}

/// A user name usable in basic auth and a well-formed bcrypt hash
/// (`$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost of 4 to 31, 53 characters of
/// salt and hash). The hash is not quoted in the error.
fn check_user(user: &str, hash: &str) -> Result<(), String> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(format!(
            "basic_auth_users: {user:?} is not a usable user name (empty, or with ':' or a control character)"
        ));
    }
    let well_formed = hash.len() == 60
        && hash.is_ascii()
        && ["$2a$", "$2b$", "$2x$", "$2y$"].iter().any(|p| hash.starts_with(p))
        && hash[4..6].parse::<u32>().is_ok_and(|cost| (4..=31).contains(&cost))
        && hash.as_bytes()[6] == b'$'
        && hash[7..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    match well_formed {
        true => Ok(()),
        false => Err(format!(
            "basic_auth_users.{user} is not a bcrypt hash (expected $2y$10$ and 53 more characters, as \
             `htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints)"
        )),
    }
}

#[cfg(test)]
mod tests;
