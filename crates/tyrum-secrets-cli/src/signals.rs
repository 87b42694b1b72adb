//! Passing signals on to the child of `run`, without `unsafe`: signal-hook
//! delivers them to a thread, rustix sends them on.
//!
//! A signal another process sent to this one (`kill`, a supervisor) is
//! forwarded. One the terminal sent (Ctrl-C, Ctrl-\, a hangup) went to the
//! whole foreground process group, the child included, so it is not sent a
//! second time. Either way this process does not die of it: it waits for
//! the child and exits with the child's status.
//!
//! Once the child has been waited for, its process id may be given to an
//! unrelated process: nothing is sent to it any more. A signal that comes
//! while this process still passes on what a grandchild writes to the
//! inherited pipes ends this process as the signal would have.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rustix::process::{Pid, Signal, kill_process};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::{Cause, Origin};

/// The signals passed on.
const FORWARDED: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Forwards signals to the child once it is known; stops when dropped.
pub(crate) struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    target: Arc<Mutex<Target>>,
}

#[derive(Default)]
struct Target {
    child: Option<Pid>,
    /// Signals that arrived before the child was started.
    pending: Vec<i32>,
    /// The child has been waited for: its id is no longer its own.
    reaped: bool,
}

impl Forwarder {
    /// Starts catching the forwarded signals (before the child starts, so
    /// none is lost in between).
    pub(crate) fn start() -> io::Result<Forwarder> {
        let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
        let handle = signals.handle();
        let target = Arc::new(Mutex::new(Target::default()));
        let shared = Arc::clone(&target);
        let thread = std::thread::spawn(move || {
            for origin in signals.forever() {
                let mut target = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if target.reaped {
                    die_like(origin.signal);
                }
                if !should_forward(&origin) {
                    continue;
                }
                match target.child {
                    Some(pid) => send(pid, origin.signal),
                    None => target.pending.push(origin.signal),
                }
            }
        });
        Ok(Forwarder {
            handle,
            thread: Some(thread),
            target,
        })
    }

    /// The child to forward to; signals caught before it started are sent
    /// now.
    pub(crate) fn child(&self, child: &std::process::Child) {
        let pid = Pid::from_child(child);
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        target.child = Some(pid);
        for signal in std::mem::take(&mut target.pending) {
            send(pid, signal);
        }
    }
}

impl Forwarder {
    /// The child has been waited for: stop sending to its id (which the
    /// system may give to another process now), and let a signal end this
    /// process from now on.
    pub(crate) fn child_reaped(&self) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        target.child = None;
        target.reaped = true;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether the child has not had this signal already: the terminal sends
/// Ctrl-C and friends to the whole foreground process group.
fn should_forward(origin: &Origin) -> bool {
    match origin.cause {
        Cause::Sent(_) => true,
        Cause::Kernel => false,
        // Not known (some systems do not say): a terminal sends these two
        // to the whole group; the rest are forwarded.
        _ => !matches!(origin.signal, SIGINT | SIGQUIT),
    }
}

fn send(pid: Pid, signal: i32) {
    if let Some(signal) = Signal::from_named_raw(signal) {
        // The child may have exited meanwhile: nothing to do then.
        let _ = kill_process(pid, signal);
    }
}

/// Ends this process as `signal` would have (the child of `run` died of
/// it), so a shell sees the same cause; where that does not end the
/// process, exits with 128 + the signal number.
pub(crate) fn die_like(signal: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}
