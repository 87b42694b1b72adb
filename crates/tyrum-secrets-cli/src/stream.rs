//! Redacting streams: bytes from a pipe through the redactor to standard
//! output or error, with interactive output passed on without delay.
//!
//! Each chunk read is redacted and written at once, except the tail the
//! redactor's writer holds back because a value could be split across two
//! reads. When the pipe then stays quiet for [`IDLE`] (a prompt waiting for
//! input), [`RedactingWriter::release_idle`](tyrum_secrets::redaction)
//! passes on every held byte that cannot start a value, so only a possible
//! beginning of a value is ever kept back.

use std::fs::File;
use std::io::{self, BufWriter, Read as _, Write};
use std::time::Duration;

use tyrum_secrets::Redactor;
use zeroize::Zeroizing;

/// Bytes read from a pipe at a time.
pub(crate) const CHUNK: usize = 64 * 1024;
/// How long a pipe must stay quiet before its held tail is released.
pub(crate) const IDLE: Duration = Duration::from_millis(15);

/// Standard output as an unbuffered-by-line file (std's `Stdout` flushes
/// at every newline), buffered per chunk instead.
pub(crate) fn raw_stdout() -> io::Result<BufWriter<File>> {
    raw(io::stdout())
}

/// Standard input as a file (std's `Stdin` buffers, which would hide from
/// a poll what it has read ahead).
pub(crate) fn raw_stdin() -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
    }
    #[cfg(not(unix))]
    {
        Err(io::Error::other("redacting streams need Unix here"))
    }
}

/// Standard error, as [`raw_stdout`].
pub(crate) fn raw_stderr() -> io::Result<BufWriter<File>> {
    raw(io::stderr())
}

#[cfg(unix)]
fn raw(stream: impl std::os::fd::AsFd) -> io::Result<BufWriter<File>> {
    let fd = stream.as_fd().try_clone_to_owned()?;
    Ok(BufWriter::with_capacity(CHUNK, File::from(fd)))
}

#[cfg(not(unix))]
fn raw(_stream: impl std::any::Any) -> io::Result<BufWriter<File>> {
    Err(io::Error::other("redacting streams need Unix here"))
}

/// Copies `source` to `sink` through `redactor` until `source` ends. A
/// sink that stops taking bytes (a closed pipe) ends the copy without an
/// error, closing `source` so the writer on its other end sees the pipe
/// closed too.
pub(crate) fn pump(source: File, redactor: &Redactor, sink: impl Write) -> io::Result<()> {
    let mut source = source;
    let mut writer = redactor.writer(sink);
    // Raw child output may hold a value: wiped when dropped.
    let mut buffer = Zeroizing::new(vec![0u8; CHUNK]);
    let mut held = false;
    loop {
        if held && !readable_within(&source, IDLE)? {
            if writer.release_idle().is_err() {
                return Ok(());
            }
            // What is still held could start a value: only more bytes
            // can release it, so wait for them.
            held = false;
            continue;
        }
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if writer
            .write_all(&buffer[..n])
            .and_then(|()| writer.flush())
            .is_err()
        {
            return Ok(());
        }
        held = writer.held_back() > 0;
    }
    match writer.finish() {
        Ok(mut sink) => {
            let _ = sink.flush();
        }
        Err(_) => return Ok(()),
    }
    Ok(())
}

/// Whether `source` has bytes (or its end) to read within `timeout`.
#[cfg(unix)]
fn readable_within(source: &File, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
    };
    let mut fds = [PollFd::new(source, PollFlags::IN)];
    loop {
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(unix))]
fn readable_within(_source: &File, _timeout: Duration) -> io::Result<bool> {
    Ok(true)
}
