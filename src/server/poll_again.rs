//! Keeps a connection's request on the worker thread that is serving it.
//!
//! The handlers run inside the connection's task (hyper polls the service
//! future from its dispatcher). When a handler reads the request body,
//! hyper's body channel wakes the sender, which is the dispatcher: the task
//! that is running. Tokio treats a task woken during its own poll as a
//! yield: it goes to the back of the run queue and an idle worker is woken
//! (a futex wake) to steal it, so every request with a body woke the other
//! worker and often moved to it (`perf` on an empty policy: 1.8 futex calls
//! and 4.7 context switches per request; a bare hyper pass-through, whose
//! body is read by another task, makes none and 1.8).
//!
//! [`PollAgain`] polls the connection with a waker of its own. A wake that
//! arrives while the connection is being polled polls it again at once, up
//! to [`MAX_AGAIN`] times; a wake at any other time goes to the task as
//! before. Nothing is lost: a wake that races with the end of a poll either
//! sees the poll still running (and it polls again) or wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Immediate re-polls per task poll before falling back to a yield (which
/// keeps a connection that wakes itself forever, like hyper's own
/// `yield_now` after 16 pipelined requests, from starving other tasks).
pub const MAX_AGAIN: usize = 4;

/// A future polled again at once when it wakes itself.
pub struct PollAgain<F> {
    inner: Pin<Box<F>>,
    relay: Arc<Relay>,
    waker: Waker,
}

impl<F: Future> PollAgain<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        let relay = Arc::new(Relay::default());
        Self {
            inner: Box::pin(inner),
            waker: Waker::from(Arc::clone(&relay)),
            relay,
        }
    }
}

#[derive(Default)]
struct Relay {
    /// The waker of the task polling [`PollAgain`].
    task: AtomicWaker,
    /// The inner future is being polled.
    polling: AtomicBool,
    /// A wake arrived since the current poll began.
    again: AtomicBool,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Flag first, then look: if the poll has ended by now, the task
        // gets the wake; if not, the poll sees the flag when it ends.
        self.again.store(true, SeqCst);
        if !self.polling.load(SeqCst) {
            self.task.wake();
        }
    }
}

impl<F: Future> Future for PollAgain<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.relay.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(&this.waker);
        for _ in 0..=MAX_AGAIN {
            this.relay.polling.store(true, SeqCst);
            this.relay.again.store(false, SeqCst);
            let result = this.inner.as_mut().poll(&mut inner_cx);
            this.relay.polling.store(false, SeqCst);
            if result.is_ready() {
                return result;
            }
            if !this.relay.again.swap(false, SeqCst) {
                return Poll::Pending;
            }
        }
        // Still waking itself: yield to the scheduler, as without the wrapper.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself on each of its first `self_wakes` polls.
    struct SelfWaking {
        polls: Arc<AtomicUsize>,
        self_wakes: usize,
    }

    impl Future for SelfWaking {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let n = self.polls.fetch_add(1, SeqCst);
            if n < self.self_wakes {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn poll_once<F: Future>(
        future: &mut PollAgain<F>,
        task: &Arc<CountingWaker>,
    ) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(task));
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_self_wake_polls_again_without_waking_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut future = PollAgain::new(SelfWaking {
            polls: Arc::clone(&polls),
            self_wakes: 2,
        });
        let task = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut future, &task).is_ready());
        assert_eq!(polls.load(SeqCst), 3);
        assert_eq!(task.0.load(SeqCst), 0);
    }

    #[test]
    fn endless_self_wakes_yield_to_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut future = PollAgain::new(SelfWaking {
            polls: Arc::clone(&polls),
            self_wakes: usize::MAX,
        });
        let task = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut future, &task).is_pending());
        assert_eq!(polls.load(SeqCst), MAX_AGAIN + 1);
        assert_eq!(task.0.load(SeqCst), 1);
    }

    #[test]
    fn a_later_wake_goes_to_the_task() {
        let stash: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let mut future = PollAgain::new(std::future::poll_fn({
            let stash = Arc::clone(&stash);
            move |cx| {
                *stash.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }
        }));
        let task = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut future, &task).is_pending());
        assert_eq!(task.0.load(SeqCst), 0);
        stash.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_from_other_threads_are_not_lost() {
        for _ in 0..200 {
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let sender = tokio::spawn(async move {
                tokio::task::yield_now().await;
                let _ = tx.send(7);
            });
            assert_eq!(PollAgain::new(rx).await.ok(), Some(7));
            sender.await.unwrap();
        }
    }
}
