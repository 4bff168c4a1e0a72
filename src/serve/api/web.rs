//! What the web config file (`http.web_config_file`,
//! docs/operations.md#tls-and-authentication) asks of the HTTP layer: a
//! [`Transport`] for the accept loop (TLS or plain) and a [`Guard`] for
//! every request (basic auth and response headers). Built once at start;
//! the file is not re-read while the daemon runs.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use tokio_rustls::TlsAcceptor;
use tower_http::set_header::SetResponseHeaderLayer;

use super::auth::{self, Gate, Users};
use crate::config::HttpConfig;
use crate::serve::metrics::Metrics;

/// Why the web config file cannot be served: names the key and the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebError(pub(super) String);

/// How connections are spoken to.
#[derive(Clone)]
pub enum Transport {
    Plain,
    /// TLS first; the handshake is bounded by `http.header_timeout`.
    Tls(TlsAcceptor),
}

/// Basic auth and headers for every request; the default asks for nothing.
#[derive(Clone, Default)]
pub struct Guard {
    users: Option<Arc<Users>>,
    open_probes: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The transport and the guard of a web config.
pub struct Web {
    pub transport: Transport,
    pub guard: Guard,
}

impl Web {
    /// Loads certificates and keys, and checks the headers: every error of
    /// the web config the parser could not see.
    pub fn new(http: &HttpConfig) -> Result<Web, WebError> {
        let transport = match &http.web.tls {
            Some(settings) => Transport::Tls(super::tls::acceptor(settings).map_err(WebError)?),
            None => Transport::Plain,
        };
        let headers = http
            .web
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
        let users = Users::new(&http.web.users).map(Arc::new);
        Ok(Web { transport, guard: Guard { users, open_probes: http.probes_without_auth, headers } })
    }
}

impl Guard {
    /// Puts basic auth, when users are configured, around `app`: inside
    /// the layers that `layers::around` adds, so that the request deadline
    /// bounds the wait for a bcrypt turn.
    pub(super) fn authenticate(&self, app: Router, metrics: &Arc<Metrics>) -> Router {
        let Some(users) = &self.users else { return app };
        let gate = Gate { users: users.clone(), metrics: metrics.clone(), open_probes: self.open_probes };
        app.layer(axum::middleware::from_fn_with_state(gate, auth::require))
    }

    /// Sets the configured headers on every response, errors and 401s too.
    pub(super) fn set_headers(&self, mut app: Router) -> Router {
        for (name, value) in &self.headers {
            app = app.layer(SetResponseHeaderLayer::overriding(name.clone(), value.clone()));
        }
        app
    }
}
