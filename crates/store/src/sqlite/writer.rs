//! The writer: one thread owning the only read-write connection, committing writes in groups.
//!
//! With `synchronous=FULL` every COMMIT is an fsync, and an fsync per message would cap the server
//! at a few hundred messages a second. So writes queue on a bounded channel and the thread takes
//! one (blocking), drains whatever else is already queued (up to `max_batch`), and runs them all in
//! ONE `BEGIN IMMEDIATE … COMMIT`: one fsync for the batch. Each write runs inside its own
//! SAVEPOINT, so a write that fails (a constraint, a missing row) is rolled back alone and never
//! takes the rest of its batch down with it.
//!
//! Nothing is acknowledged before it is durable: only after COMMIT succeeds does the thread, in
//! job order, run each write's after-commit hook and then send its reply. If COMMIT fails, every
//! write of the batch gets the error.
//!
//! Checkpoints (copying the WAL back into the database file, then an fsync of it) do not run on
//! the writer: SQLite's automatic checkpoint would run inside whichever COMMIT crosses the
//! threshold and hold every write queued behind it for tens of milliseconds. A second thread with
//! its own connection checkpoints instead (`PASSIVE`: it never blocks the writer or a reader),
//! nudged after commits and at most every [`CHECKPOINT_EVERY`].

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot, watch};

use crate::queued::{Answer, Queued};
use crate::{Commits, StoreError};

/// How many writes may wait for the writer before callers are made to wait in `send`.
const QUEUE_DEPTH: usize = 4096;
/// The checkpointer runs at most this often (and only after commits).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// One queued write, type-erased so writes of any result type share the queue.
trait Task: Send {
    /// Runs the write inside its own savepoint of the open transaction.
    fn run(&mut self, conn: &Connection);
    /// The write's own failure, if it failed, for handing on when it aborted the transaction.
    fn failure(&self) -> Option<StoreError>;
    /// Completes the write once its transaction is over: `Ok` if it committed, else the reason.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

type Job = Box<dyn Task>;

struct Write<T, F, H> {
    work: Option<F>,
    hook: Option<H>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F, H> Task for Write<T, F, H>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    H: FnOnce(&T) + Send + 'static,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            self.result = Some(in_savepoint(conn, work));
        }
    }

    fn failure(&self) -> Option<StoreError> {
        match &self.result {
            Some(Err(err)) => Some(err.replicate()),
            _ => None,
        }
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Write {
            hook,
            result,
            reply,
            ..
        } = *self;
        let result = match (outcome, result) {
            // A write's own error is the most precise answer whatever happened to the batch.
            (_, Some(Err(err))) => Err(err),
            (Err(err), _) => Err(err),
            (Ok(()), Some(Ok(value))) => {
                if let Some(hook) = hook {
                    // The hook is the caller's code; a panic in it must not kill the writer.
                    if catch_unwind(AssertUnwindSafe(|| hook(&value))).is_err() {
                        tracing::error!("an after-commit hook panicked");
                    }
                }
                Ok(value)
            }
            // Committed without having run cannot happen: every job of a batch is run first.
            (Ok(()), None) => Err(StoreError::WriterGone),
        };
        // The caller may have stopped waiting; the write stands regardless.
        let _ = reply.send(result);
    }
}

/// The handle through which writes reach the writer thread.
pub(crate) struct Writer {
    /// `None` once closed. Taken under the lock but never held across an await.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// Becomes `true` when the thread has finished.
    stopped: watch::Receiver<bool>,
    commits: Arc<Commits>,
    /// Writes in the queue: counted once their send has completed (a send that has only
    /// reserved its place may not be received yet), uncounted as the thread takes them. Briefly
    /// negative when the thread is quicker than the count.
    in_queue: Arc<AtomicIsize>,
    /// `StoreOptions::paused_clock`.
    paused_clock: bool,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of `conn`, and the checkpointer thread
    /// with a connection of its own to `path`.
    pub(crate) fn spawn(
        conn: Connection,
        path: &Path,
        options: &crate::StoreOptions,
    ) -> Result<Writer, StoreError> {
        let max_batch = options.max_batch;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = open_connection(path)?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("tidings-store-checkpointer".to_owned())
            .spawn(move || checkpoint(checkpoints, nudged))
            .map_err(StoreError::Thread)?;
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (stopped_tx, stopped) = watch::channel(false);
        let commits = Arc::new(Commits::default());
        let in_queue = Arc::new(AtomicIsize::new(0));
        let thread = Counters {
            commits: Arc::clone(&commits),
            in_queue: Arc::clone(&in_queue),
        };
        std::thread::Builder::new()
            .name("tidings-store-writer".to_owned())
            .spawn(move || {
                let _stopped = StoppedOnDrop(stopped_tx);
                run(conn, receiver, max_batch.max(1), &thread, &nudge);
            })
            .map_err(StoreError::Thread)?;
        Ok(Writer {
            sender: Mutex::new(Some(sender)),
            stopped,
            commits,
            in_queue,
            paused_clock: options.paused_clock,
        })
    }

    /// Runs `work` in the writer's next transaction and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, None::<fn(&T)>).await
    }

    async fn submit<T, F, H>(&self, work: F, hook: Option<H>) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        H: FnOnce(&T) + Send + 'static,
    {
        self.enqueue(work, hook).await?.await
    }

    /// Queues a write and returns as soon as it is in the writer's queue; the returned future
    /// resolves once it has committed. Writes queued one after another commit in that order.
    pub(crate) async fn enqueue<T, F, H>(
        &self,
        work: F,
        hook: Option<H>,
    ) -> Result<Queued<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        H: FnOnce(&T) + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::WriterGone)?;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(Write {
            work: Some(work),
            hook,
            result: None,
            reply,
        });
        sender.send(job).await.map_err(|_| StoreError::WriterGone)?;
        self.in_queue.fetch_add(1, Ordering::Release);
        let answer = if self.paused_clock {
            Answer::Blocking(tokio::task::spawn_blocking(move || {
                answer
                    .blocking_recv()
                    .unwrap_or(Err(StoreError::WriterGone))
            }))
        } else {
            Answer::Direct(answer)
        };
        Ok(Queued { answer })
    }

    /// Stops accepting writes, lets the thread commit everything already queued, and waits for it.
    pub(crate) async fn close(&self) {
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let mut stopped = self.stopped.clone();
        // An error means the thread is gone, which is what is being waited for.
        if self.paused_clock {
            // Waited for on the blocking pool, as writes are (`StoreOptions::paused_clock`).
            let _ = tokio::task::spawn_blocking(move || {
                let _ = tokio::runtime::Handle::current().block_on(stopped.wait_for(|s| *s));
            })
            .await;
        } else {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }

    /// How many transactions the writer has committed.
    pub(crate) fn commits(&self) -> &Arc<Commits> {
        &self.commits
    }

    /// How many writes are queued and not yet taken by the thread.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        usize::try_from(self.in_queue.load(Ordering::Acquire)).unwrap_or(0)
    }
}

/// Opens the read-write connection, creating the file, in WAL mode.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    super::configure(&conn)?;
    // WAL lets the pooled readers run while the writer commits.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "could not switch the database to WAL (mode is {mode})"
            )),
        )));
    }
    Ok(conn)
}

/// Marks the writer stopped however the thread ends, so `close` never waits forever.
struct StoppedOnDrop(watch::Sender<bool>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// What the writer thread counts, shared with [`Writer`].
struct Counters {
    commits: Arc<Commits>,
    in_queue: Arc<AtomicIsize>,
}

/// The writer thread's loop: ends when every sender is gone and the queue is drained.
fn run(
    conn: Connection,
    mut receiver: mpsc::Receiver<Job>,
    max_batch: usize,
    counters: &Counters,
    checkpointer: &std::sync::mpsc::SyncSender<()>,
) {
    let mut batch = VecDeque::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push_back(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push_back(job),
                Err(_) => break,
            }
        }
        let taken = isize::try_from(batch.len()).unwrap_or(isize::MAX);
        counters.in_queue.fetch_sub(taken, Ordering::Relaxed);
        tracing::trace!(jobs = batch.len(), "writing batch");
        while !batch.is_empty() {
            run_transaction(&conn, &mut batch, &counters.commits);
        }
        // Full means a nudge is already waiting; the checkpointer will see this commit too.
        let _ = checkpointer.try_send(());
    }
    tracing::debug!("store writer stopped");
}

/// The checkpointer thread: after each nudge, one `PASSIVE` checkpoint, then a pause, so a busy
/// server checkpoints a few times a second and an idle one not at all. Ends with the writer.
fn checkpoint(conn: Connection, nudged: std::sync::mpsc::Receiver<()>) {
    while nudged.recv().is_ok() {
        let started = Instant::now();
        let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match outcome {
            Ok((wal_pages, copied)) => {
                tracing::trace!(wal_pages, copied, took = ?started.elapsed(), "checkpoint");
            }
            Err(err) => {
                tracing::warn!(%err, "WAL checkpoint failed; will retry after the next commit")
            }
        }
        if let Some(rest) = CHECKPOINT_EVERY.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    tracing::debug!("store checkpointer stopped");
}

/// Runs jobs from the front of `jobs` in one transaction and completes them. It stops early,
/// leaving the rest queued for a fresh transaction, only if SQLite aborted the transaction.
fn run_transaction(conn: &Connection, jobs: &mut VecDeque<Job>, commits: &Commits) {
    let started = Instant::now();
    if let Err(err) = exec(conn, "BEGIN IMMEDIATE") {
        let err = StoreError::from(err);
        tracing::error!(error = %err, "could not begin a write transaction");
        for job in jobs.drain(..) {
            job.finish(Err(err.replicate()));
        }
        return;
    }

    let mut ran: Vec<Job> = Vec::with_capacity(jobs.len());
    while let Some(mut job) = jobs.pop_front() {
        job.run(conn);
        if conn.is_autocommit() {
            // Some errors (an I/O error, a full disk) make SQLite roll back the whole transaction,
            // not just the statement: nothing run so far is stored, so none of it may succeed.
            let err = job
                .failure()
                .unwrap_or(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the write transaction was rolled back".to_owned()),
                )));
            tracing::error!(error = %err, "write transaction aborted");
            job.finish(Err(err.replicate()));
            for job in ran {
                job.finish(Err(err.replicate()));
            }
            return;
        }
        ran.push(job);
    }

    match exec(conn, "COMMIT") {
        Ok(()) => {
            commits.record(ran.len(), started);
            for job in ran {
                job.finish(Ok(()));
            }
        }
        Err(err) => {
            let err = StoreError::from(err);
            tracing::error!(error = %err, jobs = ran.len(), "commit failed");
            if !conn.is_autocommit()
                && let Err(rollback) = exec(conn, "ROLLBACK")
            {
                tracing::error!(error = %rollback, "rollback after a failed commit failed");
            }
            for job in ran {
                job.finish(Err(err.replicate()));
            }
        }
    }
}

/// Runs `work` inside a savepoint so that its failure undoes exactly its own changes.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    exec(conn, "SAVEPOINT job")?;
    let result = match catch_unwind(AssertUnwindSafe(|| work(conn))) {
        Ok(result) => result,
        Err(_) => {
            tracing::error!("a write panicked");
            Err(StoreError::WritePanicked)
        }
    };
    match result {
        Ok(value) => match exec(conn, "RELEASE job") {
            Ok(()) => Ok(value),
            Err(err) => {
                undo_savepoint(conn);
                Err(err.into())
            }
        },
        Err(err) => {
            undo_savepoint(conn);
            Err(err)
        }
    }
}

fn undo_savepoint(conn: &Connection) {
    if conn.is_autocommit() {
        // SQLite already rolled back the whole transaction; the caller notices.
        return;
    }
    let undone = exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"));
    if let Err(err) = undone {
        tracing::error!(error = %err, "rolling back a failed write failed");
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use crate::StoreOptions;
    use crate::sqlite::Sqlite as Store;

    const PATIENCE: Duration = Duration::from_secs(10);

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
        (dir, store)
    }

    /// Parks the writer thread inside a write until the returned sender is used, so that the
    /// writes queued meanwhile are all taken together as the next batch.
    pub(crate) async fn hold_writer(
        store: &Store,
    ) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = std_mpsc::channel::<()>();
        let writer = store.clone();
        let held = tokio::spawn(async move {
            writer
                .inner
                .writer
                .write(move |_| {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .await
                .unwrap();
        });
        tokio::time::timeout(PATIENCE, started_rx)
            .await
            .unwrap()
            .unwrap();
        (release_tx, held)
    }

    /// Waits, without sleeping, until `n` writes are queued behind a held writer.
    pub(crate) async fn until_queued(store: &Store, n: usize) {
        tokio::time::timeout(PATIENCE, async {
            while store.inner.writer.queued() < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("writes were not queued in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_does_not_fail_its_batch() {
        let (_dir, store) = open();
        store
            .write(|conn| {
                conn.execute("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)", [])?;
                Ok(())
            })
            .await
            .unwrap();

        let (release, held) = hold_writer(&store).await;
        let commits_before = store.commits();
        // Queued one by one, each in the queue (not just reserved a place in it) when `enqueue`
        // returns: the writer takes all five together once released.
        let writer = &store.inner.writer;
        let mut writes = Vec::new();
        for v in [1, 2, 1, 3] {
            let queued = writer
                .enqueue(
                    move |conn| {
                        conn.prepare_cached("INSERT INTO t (v) VALUES (?1)")?
                            .execute([v])?;
                        Ok(v)
                    },
                    None::<fn(&i64)>,
                )
                .await
                .unwrap();
            writes.push(queued);
        }
        let failing = writer
            .enqueue(
                |conn| -> Result<(), StoreError> {
                    conn.execute("INSERT INTO t (v) VALUES (4)", [])?;
                    Err(StoreError::NotAllowed)
                },
                None::<fn(&())>,
            )
            .await
            .unwrap();
        release.send(()).unwrap();
        held.await.unwrap();

        let mut results = Vec::new();
        for w in writes {
            results.push(w.await);
        }
        assert_eq!(results[0].as_ref().unwrap(), &1);
        assert_eq!(results[1].as_ref().unwrap(), &2);
        assert!(
            matches!(results[2], Err(StoreError::Sqlite(_))),
            "{results:?}"
        );
        assert_eq!(results[3].as_ref().unwrap(), &3);
        assert!(matches!(failing.await, Err(StoreError::NotAllowed)));
        // The held write's batch, then all five queued writes in one more.
        assert_eq!(store.commits(), commits_before + 2);

        let stored: Vec<i64> = store
            .write(|conn| {
                let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        // The rejected duplicate and the failed write's insert were both rolled back.
        assert_eq!(stored, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone() {
        let (_dir, store) = open();
        let result = store
            .write(|_| -> Result<(), StoreError> { panic!("boom") })
            .await;
        assert!(matches!(result, Err(StoreError::WritePanicked)));
        assert_eq!(store.write(|_| Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn disk_full_fails_the_write_with_disk_full() {
        let (_dir, store) = open();
        store
            .write(|conn| {
                conn.execute("CREATE TABLE big (b BLOB NOT NULL)", [])?;
                // Cap the file at its current size so the next growth fails like a full disk.
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                conn.pragma_update(None, "max_page_count", pages)?;
                Ok(())
            })
            .await
            .unwrap();
        let result = store
            .write(|conn| {
                conn.execute("INSERT INTO big (b) VALUES (zeroblob(1000000))", [])?;
                Ok(())
            })
            .await;
        assert!(matches!(result, Err(StoreError::DiskFull)), "{result:?}");
        // The writer carries on with writes that fit.
        assert_eq!(store.write(|_| Ok(1)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn close_commits_queued_writes_then_refuses() {
        let (_dir, store) = open();
        let pending = {
            let store = store.clone();
            tokio::spawn(async move { store.write(|_| Ok(5)).await })
        };
        assert_eq!(pending.await.unwrap().unwrap(), 5);
        store.close().await;
        assert!(matches!(
            store.write(|_| Ok(())).await,
            Err(StoreError::WriterGone)
        ));
        // Closing twice is harmless.
        store.close().await;
    }
}
