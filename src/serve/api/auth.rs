//! Basic authentication against the bcrypt hashes of `basic_auth_users`
//! of the latest reading of the web config file, as a middleware around
//! every path (the probes too, unless `http.probes_without_auth`).
//!
//! bcrypt is slow by design (tens of milliseconds at cost 10), so it never
//! runs on the runtime's threads: at most one check per CPU runs on the
//! blocking pool, the rest wait for a turn within the request deadline.
//! A successful check is remembered by a SHA-256 digest of user, hash and
//! password, so a scraper sending the same credentials every few seconds
//! pays for bcrypt once; failures are never remembered, and the memory is
//! bounded ([`MAX_REMEMBERED`]). An unknown user is checked against a
//! configured hash too, so the answer takes as long as for a wrong password
//! and does not tell which user names exist.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::ApiError;
use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::AuthFailure;
use crate::telemetry::events::{AuthRefused, InternalEvent};

/// Successful checks remembered; the memory is cleared when it is full.
/// Far above any real number of (user, password) pairs.
pub(super) const MAX_REMEMBERED: usize = 1024;

/// The users, the checks remembered and the turns for bcrypt.
pub(super) struct Users {
    hashes: BTreeMap<String, String>,
    /// Checked for unknown users, to take the time a known one takes.
    decoy: String,
    remembered: Arc<Mutex<HashSet<[u8; 32]>>>,
    turns: Arc<Semaphore>,
}

impl Users {
    /// `None` without users: no authentication.
    pub(super) fn new(hashes: &BTreeMap<String, String>) -> Option<Users> {
        let decoy = hashes.values().next()?.clone();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Some(Users {
            hashes: hashes.clone(),
            decoy,
            remembered: Arc::new(Mutex::new(HashSet::new())),
            turns: Arc::new(Semaphore::new(cpus)),
        })
    }

    /// Whether `password` is `user`'s.
    pub(super) async fn check(&self, user: &str, password: &str) -> bool {
        let known = self.hashes.get(user);
        let hash = known.unwrap_or(&self.decoy).clone();
        let digest = digest(user, &hash, password);
        if known.is_some() && self.remembered().contains(&digest) {
            return true;
        }
        let Ok(turn) = self.turns.clone().acquire_owned().await else { return false };
        let (password, known, remembered) = (password.to_owned(), known.is_some(), self.remembered.clone());
        // The turn moves into the task, and a success is remembered there:
        // a request that gives up (its deadline passed, the client left)
        // neither frees the turn before bcrypt is done nor wastes its result.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let ok = bcrypt::verify(password, &hash).unwrap_or(false) && known;
            if ok {
                remember(&remembered, digest);
            }
            ok
        })
        .await
        .unwrap_or(false)
    }

    fn remembered(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        lock(&self.remembered)
    }
}

fn remember(remembered: &Mutex<HashSet<[u8; 32]>>, digest: [u8; 32]) {
    let mut remembered = lock(remembered);
    if remembered.len() >= MAX_REMEMBERED {
        remembered.clear();
    }
    remembered.insert(digest);
}

fn lock(remembered: &Mutex<HashSet<[u8; 32]>>) -> MutexGuard<'_, HashSet<[u8; 32]>> {
    // A set of digests cannot be left half-changed by a panic.
    remembered.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Length-prefixed, so no two (user, hash, password) triples share a digest input.
fn digest(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, hash, password] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// What the middleware needs.
#[derive(Clone)]
pub(super) struct Gate {
    /// The users of the latest reading of the web config file, if any.
    pub users: Arc<dyn Fn() -> Option<Arc<Users>> + Send + Sync>,
    pub metrics: Arc<Metrics>,
    pub open_probes: bool,
}

/// The middleware: the request goes on with valid credentials (or to an
/// open probe), else 401 with `WWW-Authenticate: Basic`.
pub(super) async fn require(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let Some(users) = (gate.users)() else { return next.run(req).await };
    if gate.open_probes && (path == "/healthz" || path == "/readyz") {
        return next.run(req).await;
    }
    let refused = match credentials(req.headers()) {
        Ok((user, password)) if users.check(&user, &password).await => None,
        Ok(_) => Some(AuthFailure::Wrong),
        Err(failure) => Some(failure),
    };
    match refused {
        None => next.run(req).await,
        Some(reason) => {
            let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
            AuthRefused { reason, peer }.emit(&gate.metrics);
            unauthorized()
        }
    }
}

/// User and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Result<(String, String), AuthFailure> {
    let value = headers.get(header::AUTHORIZATION).ok_or(AuthFailure::Missing)?;
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, encoded) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::Malformed);
    }
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| AuthFailure::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
    Ok((user.to_owned(), password.to_owned()))
}

fn unauthorized() -> Response {
    let mut resp = ApiError(StatusCode::UNAUTHORIZED, "unauthorized".into()).into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"engagement-monitor\""));
    resp
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn basic(text: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        h
    }

    #[test]
    fn credentials_are_read_from_a_basic_header_only() {
        assert_eq!(credentials(&basic("alice:pa:ss")), Ok(("alice".into(), "pa:ss".into())));
        assert_eq!(credentials(&HeaderMap::new()), Err(AuthFailure::Missing));
        assert_eq!(credentials(&basic("no-colon")), Err(AuthFailure::Malformed));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(credentials(&bearer), Err(AuthFailure::Malformed));
        let mut junk = HeaderMap::new();
        junk.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(credentials(&junk), Err(AuthFailure::Malformed));
    }

    #[tokio::test]
    async fn a_right_password_is_remembered_and_a_wrong_one_never() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = Users::new(&BTreeMap::from([("alice".to_owned(), hash.clone())])).unwrap();
        assert!(!users.check("alice", "wrong").await);
        assert!(users.remembered().is_empty(), "a failure is not remembered");
        assert!(!users.check("bob", "s3cret").await, "an unknown user fails even with a user's password");
        assert!(users.check("alice", "s3cret").await);
        assert!(users.remembered().contains(&digest("alice", &hash, "s3cret")));
        assert!(!users.check("alice", "s3cret ").await, "the memory is exact");
        {
            let mut full = users.remembered();
            full.clear();
            full.extend((0..MAX_REMEMBERED).map(|i| digest("x", "y", &i.to_string())));
        }
        assert!(users.check("alice", "s3cret").await, "right, checked again");
        assert_eq!(users.remembered().len(), 1, "a full memory is cleared, not grown");
    }

    #[tokio::test]
    async fn a_success_is_remembered_even_when_the_request_gave_up() {
        let hash = bcrypt::hash("s3cret", 10).unwrap();
        let users = Users::new(&BTreeMap::from([("alice".to_owned(), hash.clone())])).unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(1), users.check("alice", "s3cret")).await;
        assert!(gave_up.is_err(), "bcrypt at cost 10 outlasts 1 ms");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !users.remembered().contains(&digest("alice", &hash, "s3cret")) {
            assert!(Instant::now() < deadline, "the check's result was lost with its request");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn no_users_means_no_authentication() {
        assert!(Users::new(&BTreeMap::new()).is_none());
    }
}
