//! What the web config file (`http.web_config_file`,
//! docs/operations.md#tls-and-authentication) asks of the HTTP layer: a
//! [`Transport`] for the accept loop (TLS or plain) and a [`Guard`] for
//! every request (basic auth and response headers).
//!
//! Read at start, where a bad file stops the daemon, and again whenever
//! the file or a certificate, key or CA file it names changes: each is
//! compared with what was last read every [`RELOAD_EVERY`]. A renewed
//! certificate or a changed user list serves the next connection or
//! request without a restart, as the exporter toolkit re-reads its file;
//! connections open already keep what they started with. A reading that
//! fails (and switching TLS on or off, which needs a restart) keeps the
//! last good one, logged and counted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::auth::{self, Gate, Users};
use crate::config::{HttpConfig, Pem, WebConfig};
use crate::serve::metrics::Metrics;
use crate::telemetry::events::{InternalEvent, WebConfigReloaded};

/// How often the file and the files it names are compared with the last
/// reading.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Why the web config file cannot be served: names the key and the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebError(pub(super) String);

/// What one reading of the web config file serves.
pub struct Served {
    acceptor: Option<TlsAcceptor>,
    users: Option<Arc<Users>>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The latest good reading.
pub type Current = watch::Receiver<Arc<Served>>;

/// How connections are spoken to.
#[derive(Clone)]
pub enum Transport {
    Plain,
    /// TLS first, with the certificates of the latest reading; the
    /// handshake is bounded by `http.header_timeout`.
    Tls(Current),
}

impl Transport {
    /// The acceptor a new connection is handshaken with.
    pub(super) fn acceptor(&self) -> Option<TlsAcceptor> {
        match self {
            Transport::Plain => None,
            Transport::Tls(current) => current.borrow().acceptor.clone(),
        }
    }
}

/// Basic auth and headers for every request, from the latest reading; the
/// default (no web config file) asks for nothing and adds no layer.
#[derive(Clone, Default)]
pub struct Guard {
    current: Option<Current>,
    open_probes: bool,
}

/// The transport, the guard, and what re-reads the file.
pub struct Web {
    pub transport: Transport,
    pub guard: Guard,
    reloader: Option<Reloader>,
}

impl Web {
    /// Reads the web config file `http` names, if any, and loads the
    /// certificates and keys it names: every error the parser could not see.
    pub fn new(http: &HttpConfig) -> Result<Web, WebError> {
        let Some(path) = &http.web_config_file else {
            return Ok(Web { transport: Transport::Plain, guard: Guard::default(), reloader: None });
        };
        let (config, files) = read(path).map_err(WebError)?;
        let served = serve(&config)?;
        let tls = served.acceptor.is_some();
        let (tx, current) = watch::channel(Arc::new(served));
        let transport = if tls { Transport::Tls(current.clone()) } else { Transport::Plain };
        let guard = Guard { current: Some(current), open_probes: http.probes_without_auth };
        let reloader = Reloader { path: path.clone(), tls, files, tx };
        Ok(Web { transport, guard, reloader: Some(reloader) })
    }

    /// What re-reads the file, for [`reload_until`]; `None` without a web
    /// config file (or once taken).
    pub fn reloader(&mut self) -> Option<Reloader> {
        self.reloader.take()
    }
}

/// Re-reads the web config file whenever it or a file it names changes,
/// until `stop`.
pub async fn reload_until(mut reloader: Reloader, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // The files are small, but reading them is blocking I/O.
        let Ok((outcome, back)) = tokio::task::spawn_blocking(move || (reloader.reload(), reloader)).await else {
            return;
        };
        reloader = back;
        if let Some(refused) = outcome {
            WebConfigReloaded { path: &reloader.path, refused: refused.as_deref() }.emit(&metrics);
        }
    }
}

/// The file, what was last read of it and of the files it names, and where
/// a good reading goes.
pub struct Reloader {
    path: PathBuf,
    /// Whether the daemon serves TLS: fixed at start.
    tls: bool,
    files: Files,
    tx: watch::Sender<Arc<Served>>,
}

/// The web config file and each file it names, with the SHA-256 digest of
/// its bytes as read (`None`: unreadable): a few bytes per file, however
/// large the files.
type Files = Vec<(PathBuf, Option<[u8; 32]>)>;

/// The digest of the file at `path` now.
fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|bytes| Sha256::digest(bytes).into())
}

impl Reloader {
    /// Reads again when anything changed: `None` when nothing did, else
    /// `Some(None)` for a reading now served or `Some(Some(why))` for one
    /// refused. A refused reading is not retried until a file changes
    /// again, so it is said once, not every second.
    fn reload(&mut self) -> Option<Option<String>> {
        let now = contents(&self.path, &self.files);
        if now == self.files {
            return None;
        }
        let (config, files) = match read(&self.path) {
            Ok(read) => read,
            Err(why) => {
                self.files = now;
                return Some(Some(why));
            }
        };
        self.files = files;
        if config.tls.is_some() != self.tls {
            let was = if self.tls { "on" } else { "off" };
            return Some(Some(format!(
                "tls_server_config: TLS is {was} since the start; switching it needs a restart"
            )));
        }
        match serve(&config) {
            Ok(served) => {
                self.tx.send_replace(Arc::new(served));
                Some(None)
            }
            Err(e) => Some(Some(e.0)),
        }
    }
}

/// The web config file at `path`, checked, and the digests of it and of
/// the files it names, as read for it.
fn read(path: &Path) -> Result<(WebConfig, Files), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let config = crate::config::web::parse(path, text)?;
    let mut files = vec![(path.to_path_buf(), Some(Sha256::digest(&bytes).into()))];
    files.extend(named(&config).into_iter().map(|p| {
        let digest = digest(&p);
        (p, digest)
    }));
    Ok((config, files))
}

/// The files `config` names: certificate, key, client CA.
fn named(config: &WebConfig) -> Vec<PathBuf> {
    let Some(tls) = &config.tls else { return Vec::new() };
    [Some(&tls.cert), Some(&tls.key), tls.client_ca.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|pem| match pem {
            Pem::File(p) => Some(p.clone()),
            Pem::Inline(_) => None,
        })
        .collect()
}

/// The digests of the files of `files` as they are now (the web config
/// file first), to compare with `files`.
fn contents(path: &Path, files: &Files) -> Files {
    let mut now: Files = vec![(path.to_path_buf(), digest(path))];
    now.extend(files.iter().skip(1).map(|(p, _)| (p.clone(), digest(p))));
    now
}

/// What `config` serves: its acceptor loaded, its headers checked.
fn serve(config: &WebConfig) -> Result<Served, WebError> {
    let acceptor = match &config.tls {
        Some(settings) => Some(super::tls::acceptor(settings).map_err(WebError)?),
        None => None,
    };
    let headers = config
        .headers
        .iter()
        .map(|(name, value)| {
            let bad = || WebError(format!("http_server_config.headers.{name}: not a valid header value"));
            Ok((
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?,
                HeaderValue::from_str(value).map_err(|_| bad())?,
            ))
        })
        .collect::<Result<_, WebError>>()?;
    let users = Users::new(&config.users).map(Arc::new);
    Ok(Served { acceptor, users, headers })
}

impl Guard {
    /// Puts basic auth of the latest reading around `app`: inside the
    /// layers that `layers::around` adds, so that the request deadline
    /// bounds the wait for a bcrypt turn. Without users in a reading, its
    /// requests pass.
    pub(super) fn authenticate(&self, app: Router, metrics: &Arc<Metrics>) -> Router {
        let Some(current) = self.current.clone() else { return app };
        let users = Arc::new(move || current.borrow().users.clone());
        let gate = Gate { users, metrics: metrics.clone(), open_probes: self.open_probes };
        app.layer(axum::middleware::from_fn_with_state(gate, auth::require))
    }

    /// Sets the headers of the latest reading on every response, errors
    /// and 401s too.
    pub(super) fn set_headers(&self, app: Router) -> Router {
        let Some(current) = &self.current else { return app };
        app.layer(axum::middleware::from_fn_with_state(current.clone(), headers))
    }
}

async fn headers(State(current): State<Current>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let served = current.borrow().clone();
    for (name, value) in &served.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}
