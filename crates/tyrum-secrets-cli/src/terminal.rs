//! The terminal: values from standard input or a hidden prompt (never an
//! argument), and progress for long operations on a terminal only.

use std::fs::File;
use std::io::{self, IsTerminal as _, Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tyrum_secrets::{SecretBytes, SecretString};
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};

/// The largest value accepted on standard input or at a prompt.
const MAX_VALUE_LEN: usize = 1 << 20;

/// A value for `what`: from standard input when it is not a terminal (one
/// trailing newline dropped), else from a hidden prompt, asked twice when
/// `confirm`.
pub(crate) fn read_value(what: &str, confirm: bool) -> CliResult<SecretBytes> {
    let bytes = if io::stdin().is_terminal() {
        prompt_hidden(what, confirm)?
    } else {
        read_stdin(what)?
    };
    if bytes.is_empty() {
        return Err(CliError::failed(format!(
            "no {what} given: standard input was empty or closed; pipe the value in, or run on a terminal to be asked"
        )));
    }
    // Exact capacity: the conversion to a boxed slice does not reallocate,
    // and `bytes` wipes its own copy.
    Ok(SecretBytes::from(bytes.to_vec()))
}

/// A passphrase from a hidden prompt on the terminal (asked twice for a
/// new one).
pub(crate) fn read_passphrase(what: &str, confirm: bool) -> Result<SecretString, String> {
    let bytes = prompt_hidden(what, confirm).map_err(|e| e.line().unwrap_or_default())?;
    if bytes.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("the {what} is not UTF-8"))?;
    Ok(SecretString::from(text.to_owned()))
}

/// Whether a prompt can be shown: the process has a controlling terminal.
pub(crate) fn has_terminal() -> bool {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

fn read_stdin(what: &str) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_VALUE_LEN + 1));
    let read = io::stdin()
        .lock()
        .take(MAX_VALUE_LEN as u64 + 1)
        .read_to_end(&mut bytes);
    if let Err(e) = read {
        return Err(CliError::failed(format!(
            "cannot read the {what} from standard input ({}); pipe the value in, or run on a terminal to be asked",
            e.kind()
        )));
    }
    if bytes.len() > MAX_VALUE_LEN {
        return Err(CliError::failed(format!(
            "the {what} on standard input is longer than {MAX_VALUE_LEN} bytes"
        )));
    }
    strip_newline(&mut bytes);
    Ok(bytes)
}

fn strip_newline(bytes: &mut Zeroizing<Vec<u8>>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// Asks on the controlling terminal with echo off; twice when `confirm`.
fn prompt_hidden(what: &str, confirm: bool) -> CliResult<Zeroizing<Vec<u8>>> {
    let first = ask(&format!("{what} (input hidden): "))?;
    if confirm {
        let second = ask(&format!("{what} again: "))?;
        if *first != *second {
            return Err(CliError::failed(format!(
                "the two entries of the {what} differ; nothing was changed"
            )));
        }
    }
    Ok(first)
}

#[cfg(unix)]
fn ask(prompt: &str) -> CliResult<Zeroizing<Vec<u8>>> {
    use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex};

    let no_tty = |e: io::Error| {
        CliError::failed(format!(
            "no terminal to ask on ({}); pipe the value in on standard input, or name a file in the config",
            e.kind()
        ))
    };
    let mut tty = File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(no_tty)?;
    let original = termios::tcgetattr(&tty).map_err(|e| no_tty(e.into()))?;
    let mut hidden = original.clone();
    // Byte by byte, no echo, no signals: Ctrl-C and Ctrl-D cancel here,
    // so the terminal is always restored.
    hidden
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    hidden.special_codes[SpecialCodeIndex::VMIN] = 1;
    hidden.special_codes[SpecialCodeIndex::VTIME] = 0;
    tty.write_all(prompt.as_bytes())
        .and_then(|()| tty.flush())
        .map_err(no_tty)?;
    termios::tcsetattr(&tty, OptionalActions::Flush, &hidden).map_err(|e| no_tty(e.into()))?;
    let result = read_line_raw(&mut tty);
    let _ = termios::tcsetattr(&tty, OptionalActions::Now, &original);
    let _ = tty.write_all(b"\n");
    result
}

#[cfg(not(unix))]
fn ask(_prompt: &str) -> CliResult<Zeroizing<Vec<u8>>> {
    Err(CliError::failed(
        "hidden prompts need a Unix terminal here; pipe the value in on standard input",
    ))
}

/// Reads one line typed with echo off: Enter ends it, Backspace deletes,
/// Ctrl-U clears, Ctrl-C and Ctrl-D cancel.
#[cfg(unix)]
fn read_line_raw(tty: &mut File) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_VALUE_LEN.min(4096)));
    let mut byte = [0u8; 1];
    loop {
        match tty.read(&mut byte) {
            Ok(0) => {
                return Err(CliError::failed(
                    "cancelled (end of input); nothing was changed",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::failed(format!("cannot read the terminal: {e}"))),
        }
        match byte[0] {
            b'\r' | b'\n' => return Ok(line),
            0x03 | 0x04 => return Err(CliError::failed("cancelled; nothing was changed")),
            0x7f | 0x08 => {
                line.pop();
            }
            0x15 => line.clear(),
            b => {
                if line.len() == line.capacity() {
                    if line.len() >= MAX_VALUE_LEN {
                        return Err(CliError::failed("the entry is too long"));
                    }
                    let mut bigger = Zeroizing::new(Vec::with_capacity(line.capacity() * 2));
                    bigger.extend_from_slice(&line);
                    line = bigger;
                }
                line.push(b);
            }
        }
    }
}

/// A spinner with the elapsed time on standard error, shown only when it
/// is a terminal and the operation takes longer than a moment. Stops (and
/// clears its line) when dropped.
pub(crate) struct Progress {
    state: Option<Arc<ProgressState>>,
    thread: Option<JoinHandle<()>>,
}

struct ProgressState {
    stop: AtomicBool,
    paused: AtomicBool,
}

impl Progress {
    pub(crate) fn start(message: &str) -> Progress {
        if !io::stderr().is_terminal() {
            return Progress::off();
        }
        let state = Arc::new(ProgressState {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let message = message.to_owned();
        let thread = std::thread::spawn(move || spin(&shared, &message));
        Progress {
            state: Some(state),
            thread: Some(thread),
        }
    }

    /// No spinner (and no thread).
    pub(crate) fn off() -> Progress {
        Progress {
            state: None,
            thread: None,
        }
    }

    /// A handle that can hide the spinner while a prompt is shown.
    pub(crate) fn handle(&self) -> ProgressHandle {
        ProgressHandle(self.state.clone())
    }
}

/// Pauses and resumes a [`Progress`] from elsewhere (a prompt callback).
#[derive(Clone)]
pub(crate) struct ProgressHandle(Option<Arc<ProgressState>>);

impl ProgressHandle {
    /// Hides the spinner (while a prompt is on the terminal).
    pub(crate) fn pause(&self) {
        if let Some(state) = &self.0 {
            state.paused.store(true, Ordering::SeqCst);
            // Let the spinner clear its line before the prompt is drawn.
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    pub(crate) fn resume(&self) {
        if let Some(state) = &self.0 {
            state.paused.store(false, Ordering::SeqCst);
        }
    }
}

fn spin(state: &ProgressState, message: &str) {
    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
    let started = Instant::now();
    let mut shown = false;
    let mut frame = 0;
    while !state.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        let mut err = io::stderr().lock();
        if state.paused.load(Ordering::SeqCst) {
            if shown {
                let _ = err.write_all(b"\r\x1b[2K");
                shown = false;
            }
            continue;
        }
        if started.elapsed() < Duration::from_millis(300) {
            continue;
        }
        frame = (frame + 1) % FRAMES.len();
        let _ = write!(
            err,
            "\r\x1b[2K{} {message} {:.1}s",
            FRAMES[frame],
            started.elapsed().as_secs_f32()
        );
        let _ = err.flush();
        shown = true;
    }
    if shown {
        let _ = io::stderr().write_all(b"\r\x1b[2K");
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            state.stop.store(true, Ordering::SeqCst);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
