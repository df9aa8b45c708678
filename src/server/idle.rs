//! An idle timeout for HTTP/2 client connections.
//!
//! HTTP/1 connections are bounded by hyper's header read timeout, which also
//! runs while a keep-alive connection waits for its next request. hyper's
//! HTTP/2 server has no such timer: its keep-alive pings only detect a peer
//! that stopped answering, so a client that answers pings but never sends a
//! request held its connection forever. Here each HTTP/2 connection counts
//! its requests in flight ([`Activity`], kept by [`track`]), and its socket
//! ([`IdleClose`]) reports end of input once no request has been in flight
//! for the timeout, which ends the connection. A request, streamed answers
//! included, is never cut by this: the count covers the answer body until
//! it is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::time::{Instant, Sleep};

/// Requests in flight on one connection, and since when none is.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    /// A connection that has just opened (idle from now).
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// When the connection may be closed as idle: `None` while a request is
    /// in flight.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = match self.idle_since.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        Some(since + timeout)
    }

    fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// One request in flight; dropping it (the answer's body finished, or the
/// request was abandoned) ends it.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // Set the time before the count reaches zero, so a reader that sees
        // zero also sees when it happened.
        match self.0.idle_since.lock() {
            Ok(mut guard) => *guard = Instant::now(),
            Err(poisoned) => *poisoned.into_inner() = Instant::now(),
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `handle` for `request`, counting it in `activity` until its answer's
/// body is dropped.
pub async fn track<F, Fut>(
    activity: Arc<Activity>,
    request: Request<Body>,
    handle: F,
) -> Response<Body>
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let in_flight = activity.enter();
    let response = handle(request).await;
    response.map(|body| {
        Body::new(TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })
    })
}

/// An answer body that keeps its request counted as in flight.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's IO that reads end of input once the connection has been
/// idle (no request in flight) for `timeout`.
pub struct IdleClose<T> {
    inner: T,
    activity: Arc<Activity>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleClose<T> {
    /// Wraps `inner`, whose requests are counted in `activity`.
    pub fn new(inner: T, activity: Arc<Activity>, timeout: Duration) -> Self {
        Self {
            inner,
            activity,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// `Ready` once the connection has been idle for the timeout; otherwise
    /// `Pending` with the timer armed for the next time that could be true.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            match self.activity.idle_deadline(self.timeout) {
                Some(deadline) if deadline <= now => return Poll::Ready(()),
                Some(deadline) => self.timer.as_mut().reset(deadline),
                None => self.timer.as_mut().reset(now + self.timeout),
            }
        }
    }
}

impl<T: Read + Unpin> Read for IdleClose<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => match self.poll_idle(cx) {
                // Nothing written to `buf`: end of input.
                Poll::Ready(()) => {
                    tracing::debug!("HTTP/2 connection idle for header_read_timeout_secs; closing");
                    Poll::Ready(Ok(()))
                }
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }
}

impl<T: Write + Unpin> Write for IdleClose<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_deadline_waits_for_the_last_request_to_end() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(5);
        let within_timeout = |deadline: Option<Instant>| {
            let now = Instant::now();
            deadline.is_some_and(|d| d > now && d <= now + timeout)
        };
        assert!(within_timeout(activity.idle_deadline(timeout)));
        let first = activity.enter();
        let second = activity.enter();
        assert_eq!(activity.idle_deadline(timeout), None);
        drop(first);
        assert_eq!(activity.idle_deadline(timeout), None, "one still in flight");
        drop(second);
        assert!(within_timeout(activity.idle_deadline(timeout)));
    }

    #[tokio::test]
    async fn the_answer_body_keeps_the_request_in_flight() {
        let activity = Activity::new();
        let response = track(
            Arc::clone(&activity),
            Request::new(Body::empty()),
            |_| async { Response::new(Body::from("hello")) },
        )
        .await;
        assert_eq!(activity.in_flight.load(Ordering::Acquire), 1);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(activity.in_flight.load(Ordering::Acquire), 0);
    }
}
