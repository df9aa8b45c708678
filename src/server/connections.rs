//! The accept loop: one hyper connection per client socket, with the
//! connection-level limits that `axum::serve` does not expose.
//!
//! * `header_read_timeout_secs`: hyper's HTTP/1 header read timeout. hyper
//!   (1.12, `proto/h1/conn.rs`) starts this timer whenever the connection
//!   waits for a request head: right after accept *and* again each time a
//!   keep-alive connection goes idle after a response. So it bounds a client
//!   that dribbles its headers, a client that connects and says nothing, and
//!   an idle keep-alive connection alike.
//! * `max_header_bytes`: hyper's read buffer limit while parsing the head;
//!   a larger request line + headers gets `431`.
//! * Protocol detection: `hyper_util`'s `auto::Builder` reads the first bytes
//!   to tell HTTP/1 from HTTP/2 with no timeout at all, so a silent
//!   connection would wait there forever, before any HTTP/1 timer runs. The
//!   sniffing here is bounded by the header timeout instead.
//! * HTTP/2 has no header read timer in hyper, and its keep-alive pings only
//!   find peers that stopped answering: an HTTP/2 connection with no
//!   request in flight for `header_read_timeout_secs` is closed by
//!   [`super::idle`].
//! * `client_write_timeout_secs`: hyper has no write timeout, so a client
//!   that stops reading would keep its connection and its buffered response
//!   forever; see [`super::write_timeout`].
//! * Graceful shutdown: every connection is watched by a
//!   [`GracefulShutdown`]; on the signal, idle connections close, busy ones
//!   finish their response (up to the grace period).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use super::idle::{self, Activity, IdleClose};
use super::poll_again::PollAgain;
use super::write_timeout::WriteTimeout;
use crate::config::Config;

/// The HTTP/2 connection preface a prior-knowledge (h2c) client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Connection-level limits taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a connection gets to send a complete request head (also the
    /// idle time allowed between keep-alive requests).
    pub header_read_timeout: Duration,
    /// Largest request head (request line + headers) in bytes.
    pub max_header_bytes: usize,
    /// Time a write to the client may make no progress (a client that
    /// stopped reading) before the connection is closed.
    pub client_write_timeout: Duration,
    /// Time in-flight requests get after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    /// The limits of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            max_header_bytes: config.max_header_bytes,
            client_write_timeout: Duration::from_secs(config.client_write_timeout_secs),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` resolves; then stops accepting and waits up to the grace
/// period for connections to finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streams are many small writes: without TCP_NODELAY each one after
        // the first waits for the client's delayed ACK (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a client connection");
        }
        // The handlers run in the connection's task; see `poll_again` for
        // why its self-wakes are polled at once instead of yielding.
        tokio::spawn(PollAgain::new(serve_connection(
            tcp,
            app.clone(),
            limits,
            graceful.watcher(),
        )));
    }
    drop(listener);
    match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => {}
        Err(_) => tracing::warn!(
            grace_secs = limits.shutdown_grace.as_secs(),
            "shutdown deadline reached; closing remaining connections"
        ),
    }
    Ok(())
}

/// Serves one client connection with the HTTP version it speaks.
async fn serve_connection(tcp: TcpStream, app: Router, limits: ConnectionLimits, watcher: Watcher) {
    let http2 = match tokio::time::timeout(limits.header_read_timeout, speaks_http2(&tcp)).await {
        Ok(Ok(Some(http2))) => http2,
        // Closed before sending anything, or a socket error: nothing to serve.
        Ok(Ok(None)) | Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!("client sent no request within header_read_timeout_secs; closing");
            return;
        }
    };
    let io = WriteTimeout::new(TokioIo::new(tcp), limits.client_write_timeout);
    let result = if http2 {
        let activity = Activity::new();
        let service = TowerToHyperService::new(tower::service_fn({
            let activity = Arc::clone(&activity);
            move |request: hyper::Request<Incoming>| {
                let app = app.clone();
                let activity = Arc::clone(&activity);
                async move {
                    let response = idle::track(activity, request.map(Body::new), |request| async {
                        match app.oneshot(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    });
                    Ok::<_, Infallible>(response.await)
                }
            }
        }));
        // Idle connections (no request in flight) close after the header
        // timeout, as HTTP/1 keep-alive connections do.
        let io = IdleClose::new(io, activity, limits.header_read_timeout);
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            // A peer that stops answering pings is gone; drop its connection.
            .keep_alive_interval(limits.header_read_timeout)
            .keep_alive_timeout(limits.header_read_timeout)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        watcher.watch(builder.serve_connection(io, service)).await
    } else {
        let service = TowerToHyperService::new(
            app.map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes);
        watcher.watch(builder.serve_connection(io, service)).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Peeks at the first bytes: `Some(true)` for the HTTP/2 preface,
/// `Some(false)` for anything else (HTTP/1), `None` if the client closed
/// without sending anything.
async fn speaks_http2(tcp: &TcpStream) -> std::io::Result<Option<bool>> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Ok(Some(false));
        }
        if n == H2_PREFACE.len() {
            return Ok(Some(true));
        }
        // A partial preface: peek does not consume, so wait a little for
        // the rest instead of spinning on the same bytes.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Accept errors: per-connection ones are ignored; resource exhaustion
/// (too many open files) backs off so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
