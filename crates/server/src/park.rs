//! A connection with no task while it waits.
//!
//! Most connections are idle most of the time, and a task waiting costs its whole future — room
//! for everything the connection might do, in a cell tokio aligns to 128 bytes — for as long as
//! it waits. A [`Parker`] lets a connection's task end when it has nothing to do, its state
//! kept in the parker, and starts a new task for it at the next wake-up.
//!
//! The parker is the waker of everything the connection waits on (its task polls through
//! [`Parker::awake`], which hands the wake-ups on to the task while there is one). When the
//! connection has polled everything it waits on and found nothing, it gives its state to
//! [`Parker::park`] and the task ends; a wake-up then takes the state back out and spawns
//! `resume` with it. A wake-up that came after the poll began and before the state was parked
//! is not lost: `park` gives the state back, and the task polls again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::Handle;

/// See the module documentation.
pub struct Parker<T> {
    slot: Mutex<Slot<T>>,
    /// Where `resume` spawns: wake-ups come from any thread.
    runtime: Handle,
    /// Spawns a task that goes on with the parked state.
    resume: fn(T, &Handle),
}

struct Slot<T> {
    parked: Option<T>,
    /// The task, while there is one.
    task: Option<Waker>,
    /// Woken since the task's last poll began.
    woken: bool,
}

impl<T: Send + 'static> Parker<T> {
    /// A parker on the current runtime.
    pub fn new(resume: fn(T, &Handle)) -> Arc<Parker<T>> {
        Arc::new(Parker {
            slot: Mutex::new(Slot {
                parked: None,
                task: None,
                woken: false,
            }),
            runtime: Handle::current(),
            resume,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // Plain data under the lock, consistent after any panic.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `future`, polled with the parker as its waker: what it waits on wakes the parker, which
    /// wakes the task polling this.
    pub fn awake<F: Future>(self: &Arc<Self>, future: F) -> Awake<T, F> {
        Awake {
            waker: Waker::from(Arc::clone(self)),
            parker: Arc::clone(self),
            future,
        }
    }

    /// Keeps `state` until the next wake-up, which spawns `resume` with it: the caller's task
    /// may end. If a wake-up came since the last poll of [`Parker::awake`] began, gives `state`
    /// back instead, to poll again.
    pub fn park(&self, state: T) -> Option<T> {
        let mut slot = self.lock();
        if std::mem::take(&mut slot.woken) {
            return Some(state);
        }
        slot.parked = Some(state);
        slot.task = None;
        None
    }
}

impl<T: Send + 'static> Wake for Parker<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut slot = self.lock();
        if let Some(state) = slot.parked.take() {
            drop(slot);
            (self.resume)(state, &self.runtime);
            return;
        }
        slot.woken = true;
        let task = slot.task.clone();
        drop(slot);
        if let Some(task) = task {
            task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// See [`Parker::awake`].
    pub struct Awake<T, F> {
        waker: Waker,
        parker: Arc<Parker<T>>,
        #[pin]
        future: F,
    }
}

impl<T: Send + 'static, F: Future> Future for Awake<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        {
            let mut slot = this.parker.lock();
            slot.woken = false;
            match &slot.task {
                Some(task) if task.will_wake(cx.waker()) => {}
                _ => slot.task = Some(cx.waker().clone()),
            }
        }
        this.future.poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::mpsc;

    /// A connection's state in the tests: what it waits on, and how many wake-ups it took.
    struct Waiting {
        items: mpsc::UnboundedReceiver<u32>,
        seen: mpsc::UnboundedSender<u32>,
        parker: Arc<Parker<Waiting>>,
        tasks: Arc<AtomicUsize>,
    }

    fn resume(state: Waiting, runtime: &Handle) {
        runtime.spawn(run(state));
    }

    /// Takes every item there is, then parks; ends when the sender is gone.
    async fn run(mut state: Waiting) {
        state.tasks.fetch_add(1, Ordering::SeqCst);
        loop {
            let parker = Arc::clone(&state.parker);
            let next = parker
                .awake(std::future::poll_fn(|cx| match state.items.poll_recv(cx) {
                    Poll::Ready(item) => Poll::Ready(Some(item)),
                    Poll::Pending => Poll::Ready(None),
                }))
                .await;
            match next {
                Some(Some(item)) => {
                    let _ = state.seen.send(item);
                }
                Some(None) => return,
                None => match parker.park(state) {
                    None => return,
                    Some(back) => state = back,
                },
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parked_state_is_resumed_by_each_wake_up_and_nothing_sent_is_missed() {
        let (items, receiver) = mpsc::unbounded_channel();
        let (seen, mut seen_rx) = mpsc::unbounded_channel();
        let tasks = Arc::new(AtomicUsize::new(0));
        let state = Waiting {
            items: receiver,
            seen,
            parker: Parker::new(resume),
            tasks: Arc::clone(&tasks),
        };
        tokio::spawn(run(state));
        // Sent from another thread, racing the parking.
        let sender = std::thread::spawn(move || {
            for i in 0..2_000 {
                items.send(i).unwrap();
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 2_000 {
            let item = tokio::time::timeout(std::time::Duration::from_secs(10), seen_rx.recv())
                .await
                .expect("every item arrives")
                .unwrap();
            got.push(item);
        }
        sender.join().unwrap();
        assert_eq!(got, (0..2_000).collect::<Vec<_>>(), "every item, in order");
        assert!(
            tasks.load(Ordering::SeqCst) > 1,
            "the state was parked and resumed"
        );
    }

    #[tokio::test]
    async fn a_wake_up_between_the_poll_and_the_park_gives_the_state_back() {
        let parker: Arc<Parker<u32>> = Parker::new(|_, _| panic!("resumed"));
        parker.awake(std::future::ready(())).await;
        Waker::from(Arc::clone(&parker)).wake_by_ref();
        assert_eq!(parker.park(7), Some(7), "woken since the poll began");
        parker.awake(std::future::ready(())).await;
        assert_eq!(parker.park(8), None, "not woken since: parked");
    }
}
