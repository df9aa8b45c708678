//! The client side: one pooled HTTP client per upstream, header allowlists in
//! both directions, and the mapping of transport failures to 502 / 504.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;

use crate::config::Upstream;
use crate::error::ApiError;

/// Client headers worth passing on; everything else (cookies, hop-by-hop,
/// the proxy's own auth) stays here.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "user-agent",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-retry-count",
];

/// Upstream response headers passed back to the client (`retry-after` and
/// `retry-after-ms` tell OpenAI clients how long to back off after a 429).
const FORWARDED_RESPONSE_PREFIXES: &[&str] = &[
    "x-ratelimit-",
    "openai-",
    "anthropic-",
    "x-upstream-",
    "retry-after",
];

/// The paths of the endpoints Palisade scans, which every scanned request
/// goes to.
const SCANNED_PATHS: &[&str] = &["/chat/completions", "/completions", "/embeddings"];

/// A configured upstream with its pooled client.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    /// Name for logs and errors.
    pub name: String,
    base_url: String,
    /// [`SCANNED_PATHS`] joined to the base URL, parsed once: parsing (with
    /// IDNA) on every request was 3% of the proxy's CPU.
    scanned_urls: Vec<(&'static str, reqwest::Url)>,
    api_key: Option<String>,
    read_timeout: Duration,
    client: reqwest::Client,
}

impl UpstreamClient {
    /// Builds the pooled client; rustls only.
    pub fn new(config: &Upstream) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.read_timeout_secs))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                ApiError::Internal(format!(
                    "cannot build HTTP client for `{}`: {e}",
                    config.name
                ))
            })?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        // A base URL that does not parse fails each request as before, with
        // reqwest's error.
        let scanned_urls = SCANNED_PATHS
            .iter()
            .filter_map(|path| {
                reqwest::Url::parse(&format!("{base_url}{path}"))
                    .ok()
                    .map(|url| (*path, url))
            })
            .collect();
        Ok(Self {
            name: config.name.clone(),
            base_url,
            scanned_urls,
            api_key: config.api_key.clone(),
            read_timeout: Duration::from_secs(config.read_timeout_secs),
            client,
        })
    }

    /// Sends a request to `path` (relative to the base URL, e.g. `/chat/completions`).
    /// Non-streamed calls get an overall deadline of the read timeout;
    /// streamed calls only a per-read one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        client_headers: &HeaderMap,
        forward_client_auth: bool,
        streaming: bool,
    ) -> Result<reqwest::Response, ApiError> {
        let mut request = match self.scanned_urls.iter().find(|(p, _)| *p == path) {
            Some((_, url)) => self.client.request(method, url.clone()),
            None => self
                .client
                .request(method, format!("{}{}", self.base_url, path)),
        };
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = client_headers.get(*name) {
                request = request.header(*name, value);
            }
        }
        if let Some(id) = client_headers.get("x-request-id") {
            request = request.header("x-request-id", id);
        }
        request = match (
            forward_client_auth,
            client_headers.get("authorization"),
            &self.api_key,
        ) {
            (true, Some(auth), _) => request.header("authorization", auth),
            (_, _, Some(key)) => request.bearer_auth(key),
            _ => request,
        };
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        if !streaming {
            request = request.timeout(self.read_timeout);
        }
        request.send().await.map_err(|e| self.transport_error(e))
    }

    /// Maps a transport error to the client-facing error.
    pub fn transport_error(&self, err: reqwest::Error) -> ApiError {
        if err.is_timeout() {
            ApiError::UpstreamTimeout {
                upstream: self.name.clone(),
            }
        } else if err.is_decode() || err.is_body() || not_http(&err) {
            ApiError::UpstreamInvalid {
                upstream: self.name.clone(),
                detail: error_chain(&err),
            }
        } else {
            ApiError::UpstreamUnavailable {
                upstream: self.name.clone(),
                detail: error_chain(&err),
            }
        }
    }

    /// Reads a whole upstream body, at most `limit` bytes: a declared
    /// `Content-Length` beyond it fails before reading anything, and an
    /// undeclared one as soon as the limit is crossed (the connection is
    /// dropped, not drained).
    pub async fn read_body(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, ApiError> {
        let too_large = || ApiError::UpstreamTooLarge {
            upstream: self.name.clone(),
            limit,
        };
        let mut response = response;
        let declared = response.content_length().unwrap_or(0);
        if usize::try_from(declared).map_or(true, |n| n > limit) {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if out.len() + chunk.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    /// Reads a whole upstream body that must be a JSON object (an answer
    /// forwarded without being parsed otherwise, such as embeddings).
    pub async fn read_object(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, ApiError> {
        let raw = self.read_body(response, limit).await?;
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw).map_err(
            |e| ApiError::UpstreamInvalid {
                upstream: self.name.clone(),
                detail: format!("answer is not a JSON object: {e}"),
            },
        )?;
        Ok(raw)
    }
}

/// The upstream answered, but not with HTTP (reqwest reports hyper's parse
/// errors as request errors, which would otherwise read "unreachable").
fn not_http(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_status();
        }
        source = s.source();
    }
    false
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Headers of an upstream response that the client should see.
pub fn response_headers(upstream: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        let forwarded =
            n == "content-type" || FORWARDED_RESPONSE_PREFIXES.iter().any(|p| n.starts_with(p));
        if forwarded
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.insert(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base_url: &str) -> Upstream {
        serde_json::from_value(serde_json::json!({"name": "m", "base_url": base_url}))
            .expect("upstream config")
    }

    #[test]
    fn scanned_paths_are_parsed_once_below_the_base_path() {
        let client = UpstreamClient::new(&upstream("http://127.0.0.1:9/v1/")).expect("client");
        let urls: Vec<String> = client
            .scanned_urls
            .iter()
            .map(|(_, u)| u.to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9/v1/chat/completions",
                "http://127.0.0.1:9/v1/completions",
                "http://127.0.0.1:9/v1/embeddings",
            ]
        );
    }

    #[test]
    fn an_unparsable_base_url_builds_and_fails_per_request_instead() {
        let client = UpstreamClient::new(&upstream("not a url")).expect("client");
        assert!(client.scanned_urls.is_empty());
    }
}
