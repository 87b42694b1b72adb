//! Calling a sink with a bound on how long the resolver waits.
//!
//! Sinks that say they never block ([`AuditSink::may_block`] is `false`)
//! are called inline. Every other sink is called on one worker thread that
//! the gate owns; the resolving thread waits for the answer at most the
//! configured timeout and fails closed after it.
//!
//! # Late writes
//!
//! Each queued record carries a state shared by the caller and the worker:
//! *pending*, *started* or *abandoned*. When the caller times out it tries to
//! move *pending* to *abandoned*; the worker moves *pending* to *started*
//! before it calls the sink and skips records it finds *abandoned*. So:
//!
//! - a record whose write had not started when its caller gave up is never
//!   written (the value was not handed out, and the log does not claim it);
//! - a record whose write had started may still land after the caller gave
//!   up. The log then over-reports a hand-over that did not happen. That is
//!   the safe direction: an audit log may claim more than happened, never
//!   less. Investigators should read a `resolved` record as "the value may
//!   have been handed out".
//!
//! A sink that hangs forever keeps the worker busy; later records queue
//! (up to a bound, then fail at once with [`AuditError::Backlogged`]) and
//! their callers each time out. Dropping the gate detaches the worker
//! rather than waiting for a hung sink.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use super::{AuditError, AuditRecord, AuditSink};

/// Records that may wait for a blocking sink before new ones fail at once.
const QUEUE_CAPACITY: usize = 64;

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// A sink plus the machinery that bounds how long a caller waits for it.
pub(crate) struct AuditGate {
    sink: Arc<dyn AuditSink>,
    timeout: Duration,
    worker: Option<SyncSender<Job>>,
}

struct Job {
    record: AuditRecord,
    state: Arc<AtomicU8>,
    reply: SyncSender<Result<(), AuditError>>,
}

impl AuditGate {
    /// A gate over `sink`. Starts the worker thread if the sink may block
    /// (or if `force_worker`, for measuring the thread hop).
    pub(crate) fn new(
        sink: Arc<dyn AuditSink>,
        timeout: Duration,
        force_worker: bool,
    ) -> Result<Self, AuditError> {
        let worker = if sink.may_block() || force_worker {
            let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE_CAPACITY);
            let worker_sink = Arc::clone(&sink);
            std::thread::Builder::new()
                .name("tyrum-audit".into())
                .spawn(move || {
                    for job in rx {
                        if job
                            .state
                            .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
                            .is_err()
                        {
                            continue; // abandoned by its caller: never written
                        }
                        let result = worker_sink.record(job.record);
                        // The caller may have gone; nobody to tell then.
                        let _ = job.reply.send(result);
                    }
                })
                .map_err(|e| AuditError::WorkerUnavailable {
                    message: format!("cannot start the audit worker thread: {e}"),
                })?;
            Some(tx)
        } else {
            None
        };
        Ok(Self {
            sink,
            timeout,
            worker,
        })
    }

    /// Records `record`, failing closed on error or timeout.
    pub(crate) fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let Some(worker) = &self.worker else {
            return self.sink.record(record);
        };
        let state = Arc::new(AtomicU8::new(PENDING));
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            record,
            state: Arc::clone(&state),
            reply,
        };
        match worker.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(AuditError::Backlogged {
                    queued: QUEUE_CAPACITY,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AuditError::WorkerUnavailable {
                    message: "the audit worker thread has stopped".into(),
                });
            }
        }
        match answer.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                if state
                    .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Err(AuditError::Timeout {
                        after: self.timeout,
                    });
                }
                // The write started; it may have finished just now.
                match answer.try_recv() {
                    Ok(result) => result,
                    Err(_) => Err(AuditError::Timeout {
                        after: self.timeout,
                    }),
                }
            }
            Err(RecvTimeoutError::Disconnected) => Err(AuditError::WorkerUnavailable {
                message: "the audit worker thread stopped while recording".into(),
            }),
        }
    }
}

impl fmt::Debug for AuditGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditGate")
            .field("sink", &self.sink)
            .field("timeout", &self.timeout)
            .field("worker", &self.worker.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;
    use crate::request::Requester;
    use crate::{HandleId, Timestamp};

    /// A sink that blocks until released, counting the records it stores.
    #[derive(Debug, Default)]
    struct GatedSink {
        open: Mutex<bool>,
        opened: std::sync::Condvar,
        stored: AtomicUsize,
        started: AtomicUsize,
    }

    impl GatedSink {
        fn release(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    impl AuditSink for GatedSink {
        fn record(&self, _record: AuditRecord) -> Result<(), AuditError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.stored.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn record() -> AuditRecord {
        AuditRecord::new(
            Timestamp::now(),
            "r".into(),
            HandleId::generate().unwrap(),
            Requester::new("a").unwrap(),
            "p".into(),
        )
    }

    fn wait_until(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "condition not reached");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn hung_sink_times_out_and_queued_records_are_abandoned_not_written() {
        let sink = Arc::new(GatedSink::default());
        let gate = AuditGate::new(sink.clone(), Duration::from_secs(1), false).unwrap();
        std::thread::scope(|scope| {
            // First record: the worker starts it and hangs in the sink.
            let first = scope.spawn(|| gate.record(record()));
            wait_until(|| sink.started.load(Ordering::SeqCst) == 1);
            // Second record: queued behind the hung one, abandoned on timeout.
            let started = Instant::now();
            assert!(matches!(
                gate.record(record()),
                Err(AuditError::Timeout { .. })
            ));
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "caller was not blocked"
            );
            assert!(matches!(
                first.join().unwrap(),
                Err(AuditError::Timeout { .. })
            ));
        });
        sink.release();
        // The started write lands late (over-reporting); the abandoned one never does.
        wait_until(|| sink.stored.load(Ordering::SeqCst) == 1);
        // A fresh record after release goes through, proving the worker moved on.
        gate.record(record()).unwrap();
        assert_eq!(sink.stored.load(Ordering::SeqCst), 2);
        assert_eq!(sink.started.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn non_blocking_sinks_are_called_inline() {
        let sink = Arc::new(crate::audit::MemoryAuditSink::new());
        let gate = AuditGate::new(sink.clone(), Duration::from_secs(1), false).unwrap();
        assert!(gate.worker.is_none());
        gate.record(record()).unwrap();
        assert_eq!(sink.len(), 1);
        let forced = AuditGate::new(sink.clone(), Duration::from_secs(1), true).unwrap();
        forced.record(record()).unwrap();
        assert_eq!(sink.len(), 2);
    }
}
