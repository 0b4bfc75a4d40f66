//! A write waiting in a backend's writer queue.

use tokio::sync::oneshot;

use crate::StoreError;

/// A write in the writer's queue; resolves to its result once its transaction has committed.
#[derive(Debug)]
pub struct Queued<T> {
    pub(crate) answer: Answer<T>,
}

/// Where a queued write's result comes from.
#[derive(Debug)]
pub(crate) enum Answer<T> {
    /// Straight from the writer.
    Direct(oneshot::Receiver<Result<T, StoreError>>),
    /// From a blocking-pool task waiting for the writer thread (`StoreOptions::paused_clock`).
    Blocking(tokio::task::JoinHandle<Result<T, StoreError>>),
}

impl<T> std::future::Future for Queued<T> {
    type Output = Result<T, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.answer {
            Answer::Direct(answer) => std::pin::Pin::new(answer)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(StoreError::WriterGone))),
            Answer::Blocking(answer) => std::pin::Pin::new(answer)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(StoreError::WriterGone))),
        }
    }
}
