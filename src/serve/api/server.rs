//! The accept loop. Each connection is driven by hyper's HTTP/1 server
//! with a [`Watch`] for its header and idle timeouts. At most
//! `max_connections` are open: further ones are not accepted and wait in
//! the listen backlog until one closes, so a flood of idle sockets costs
//! the daemon no per-connection state. On `stop` the loop stops accepting,
//! asks every connection to finish its request in flight and close, and
//! returns once all have; the caller bounds that wait.
//!
//! Over TLS ([`Transport::Tls`], with the certificates of the web config
//! file's latest reading) a connection's handshake runs in its own
//! task, holding its slot, and must end within the header timeout: a
//! client that connects and stays silent cannot keep a slot longer than
//! one that sends half a request. The header and idle timeouts then watch
//! the decrypted bytes as they watch plain ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::watch::{Watch, Watched};
use super::web::Transport;
use crate::config::HttpLimits;
use crate::serve::metrics::labels::HandshakeFailure;
use prometheus::IntCounterVec;

/// Serves `app` over plain HTTP on `listener` until `stop` is cancelled,
/// then lets the requests in flight finish.
pub async fn serve(listener: TcpListener, app: Router, limits: HttpLimits, stop: CancellationToken) {
    serve_on(listener, app, limits, Transport::Plain, None, stop).await;
}

/// [`serve`] over `transport`, counting failed TLS handshakes by reason
/// in `failures` (`engagement_http_tls_handshake_failures_total`).
pub async fn serve_on(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    transport: Transport,
    failures: Option<IntCounterVec>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    while let Some((stream, peer, slot)) = accept(&listener, &slots, &stop).await {
        let (app, stop, transport, failures) = (app.clone(), stop.clone(), transport.clone(), failures.clone());
        connections.spawn(async move {
            let app = Peer { app, addr: peer };
            // The certificates of the web config file's latest reading.
            match transport.acceptor() {
                None => connection(stream, app, limits, stop).await,
                Some(acceptor) => match handshake(&acceptor, stream, limits.header_timeout, &stop).await {
                    Ok(tls) => connection(tls, app, limits, stop).await,
                    Err(Some(reason)) => {
                        failures.iter().for_each(|f| f.with_label_values(&[reason.as_str()]).inc());
                    }
                    Err(None) => {}
                },
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The next connection, once a slot is free; `None` once `stop` is cancelled.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = tokio::select! {
        () = stop.cancelled() => return None,
        slot = slots.clone().acquire_owned() => slot.ok()?,
    };
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Answers are written whole; do not hold their last segment back.
                let _ = stream.set_nodelay(true);
                return Some((stream, peer, slot));
            }
            Err(e) => {
                // Typically out of file descriptors: back off rather than spin.
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// The TLS handshake of `stream`, at most `timeout` long; else why not:
/// it failed (a plain HTTP request, an untrusted or missing client
/// certificate, a client that does not trust the server's: the client's
/// doing, so logged at DEBUG only and counted) or timed out, or `None`
/// when `stop` came first.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
    stop: &CancellationToken,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, Option<HandshakeFailure>> {
    let accepted = tokio::select! {
        () = stop.cancelled() => return Err(None),
        accepted = tokio::time::timeout(timeout, acceptor.accept(stream)) => accepted,
    };
    match accepted {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            Err(Some(HandshakeFailure::Failed))
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            Err(Some(HandshakeFailure::TimedOut))
        }
    }
}

/// The app and the address of the client it answers, which requests carry
/// as [`ConnectInfo`] (basic auth logs it).
#[derive(Clone)]
struct Peer {
    app: Router,
    addr: SocketAddr,
}

/// Serves one connection until the client closes it, a timeout of its
/// [`Watch`] expires (the socket is dropped), or `stop` is cancelled and
/// its request in flight is answered.
async fn connection<S>(stream: S, peer: Peer, limits: HttpLimits, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Watch::new(limits.header_timeout, limits.idle_timeout);
    let io = TokioIo::new(Watched::new(stream, watch.clone()));
    let observed = watch.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        observed.request_started();
        let (observed, Peer { app, addr }) = (observed.clone(), peer.clone());
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(addr));
            let response = app.oneshot(req).await;
            observed.request_answered();
            response
        }
    });
    // The Watch keeps the header timeout; hyper's would also cut idle
    // connections at the header timeout (see `watch`).
    let conn = http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    tokio::pin!(conn);
    let expired = watch.expired();
    tokio::pin!(expired);
    tokio::select! {
        done = conn.as_mut() => return report(done),
        () = &mut expired => return,
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        done = conn => report(done),
        () = expired => {}
    }
}

fn report(done: Result<(), hyper::Error>) {
    // Clients that vanish mid-request are routine, not the daemon's fault.
    if let Err(e) = done {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}
