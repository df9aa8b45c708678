//! A bare HTTP pass-through for the load benchmark: the least any proxy in
//! front of the mock model can cost on this machine. It forwards every
//! request to one upstream with hyper's pooled client and streams the body
//! both ways untouched: no JSON parsing, no policy, no logging, no metrics.
//! `scripts/load.sh` measures it beside Palisade so the table separates the
//! price of a second HTTP hop (which no proxy avoids) from Palisade's own.
//!
//! Run: `cargo run --release --example passthrough -- --upstream
//! http://127.0.0.1:PORT [--port N] [--threads N]`. `--port 0` (the
//! default) picks a free port; the first line on stdout is
//! `listening on http://127.0.0.1:PORT/v1`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

struct Options {
    port: u16,
    upstream: String,
    threads: Option<usize>,
}

fn options() -> Options {
    let mut options = Options {
        port: 0,
        upstream: String::new(),
        threads: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> String {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--port" => options.port = value("--port").parse().expect("a port"),
            "--upstream" => options.upstream = value("--upstream"),
            "--threads" => options.threads = Some(value("--threads").parse().expect("a number")),
            "-h" | "--help" => {
                println!("usage: passthrough --upstream http://HOST:PORT [--port N] [--threads N]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
    }
    assert!(
        !options.upstream.is_empty(),
        "--upstream http://HOST:PORT is required"
    );
    options
}

/// The upstream's scheme and authority, to which each request's path is
/// appended.
fn upstream_uri(upstream: &str, path_and_query: &str) -> Uri {
    format!("{}{path_and_query}", upstream.trim_end_matches('/'))
        .parse()
        .expect("upstream URL and request path form a URI")
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream: &'static str,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = upstream_uri(upstream, &path);
    request.headers_mut().remove(hyper::header::HOST);
    match client.request(request).await {
        Ok(response) => Ok(response.map(|body| body.boxed())),
        Err(error) => {
            let mut response = Response::new(
                Full::new(Bytes::from(format!("upstream: {error}")))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

fn main() {
    let options = options();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    let upstream: &'static str = Box::leak(options.upstream.into_boxed_str());
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build(connector);
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port)))
                .await
                .unwrap_or_else(|e| panic!("cannot listen on port {}: {e}", options.port));
        println!("listening on http://{}/v1", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).ok();
            let client = client.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| forward(client.clone(), upstream, request));
                // A client that goes away mid-request is not this benchmark's concern.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}
