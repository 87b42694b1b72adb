//! Redacting streams: bytes from a pipe through the redactor to standard
//! output or error, with interactive output passed on without delay.
//!
//! Each chunk read is redacted and written at once. The redactor's writer
//! holds back exactly the longest tail that could be the start of a value
//! (or of one of its encodings), so a value split across two reads is still
//! caught, while ordinary text, such as a prompt without a newline waiting
//! for input, is passed on by the same write.
//!
//! Reading runs on a thread of its own, one chunk ahead of the redaction
//! (two buffers, handed back and forth), so that copying the next chunk
//! out of the pipe overlaps scanning this one; the redacted pieces go
//! straight to the output's file descriptor, a few writes per chunk, with
//! no buffer copy in between.

use std::fs::File;
use std::io::{self, Read as _, Write};
use std::sync::mpsc;

use tyrum_secrets::Redactor;
use zeroize::Zeroizing;

/// Bytes read from a pipe at a time (and the pipe's size where the system
/// lets it grow: fewer, larger reads and writes).
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Standard output as a file, written to directly (std's `Stdout` copies
/// into a buffer and flushes at every newline).
pub(crate) fn raw_stdout() -> io::Result<File> {
    raw(io::stdout())
}

/// Standard input as a file, read as it comes (std's `Stdin` reads ahead
/// into a buffer of its own).
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
pub(crate) fn raw_stderr() -> io::Result<File> {
    raw(io::stderr())
}

#[cfg(unix)]
fn raw(stream: impl std::os::fd::AsFd) -> io::Result<File> {
    Ok(File::from(stream.as_fd().try_clone_to_owned()?))
}

#[cfg(not(unix))]
fn raw(_stream: impl std::any::Any) -> io::Result<File> {
    Err(io::Error::other("redacting streams need Unix here"))
}

/// Grows the pipe `source` reads from to [`CHUNK`] bytes where the system
/// allows it (Linux; an unprivileged process may be capped lower, which
/// only costs speed).
pub(crate) fn grow_pipe(source: &File) {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::pipe::fcntl_setpipe_size(source, CHUNK);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = source;
    }
}

/// Chunks in flight per stream: one being redacted, one being read.
const BUFFERS: usize = 2;

/// A chunk read, or the read's error. The buffer may hold raw child output
/// (a value): wiped when dropped.
type Filled = io::Result<(Zeroizing<Vec<u8>>, usize)>;

/// Copies `source` to `sink` through `redactor` until `source` ends. A
/// sink that stops taking bytes (a closed pipe) ends the copy without an
/// error; the reading thread then closes `source` at its next read, so the
/// writer on its other end sees the pipe closed too.
pub(crate) fn pump(source: File, redactor: &Redactor, sink: File) -> io::Result<()> {
    grow_pipe(&source);
    let (filled_tx, filled) = mpsc::sync_channel::<Filled>(BUFFERS);
    let (empty, empty_rx) = mpsc::channel::<Zeroizing<Vec<u8>>>();
    for _ in 0..BUFFERS {
        let _ = empty.send(Zeroizing::new(vec![0u8; CHUNK]));
    }
    // Not joined: on an early return it may be blocked in `read` until the
    // child writes again or exits; it ends there, as nobody takes its
    // chunks any more.
    std::thread::Builder::new()
        .name("output-reader".to_owned())
        .spawn(move || read_chunks(source, &empty_rx, &filled_tx))?;

    let mut writer = redactor.writer(sink);
    for chunk in filled {
        let (buffer, n) = chunk?;
        // `flush` passes on what the write redacted and keeps only a
        // possible start of a value.
        if writer
            .write_all(&buffer[..n])
            .and_then(|()| writer.flush())
            .is_err()
        {
            return Ok(());
        }
        // The reader has stopped if this fails; the loop then ends too.
        let _ = empty.send(buffer);
    }
    if let Ok(mut sink) = writer.finish() {
        let _ = sink.flush();
    }
    Ok(())
}

/// Reads `source` into the buffers `empty` hands over and passes each one
/// on, filled, to `filled`, until `source` ends (or fails, or the pump
/// stops taking chunks).
fn read_chunks(
    mut source: File,
    empty: &mpsc::Receiver<Zeroizing<Vec<u8>>>,
    filled: &mpsc::SyncSender<Filled>,
) {
    while let Ok(mut buffer) = empty.recv() {
        let read = loop {
            match source.read(&mut buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let chunk = match read {
            Ok(0) => return,
            Ok(n) => Ok((buffer, n)),
            Err(e) => Err(e),
        };
        let failed = chunk.is_err();
        if filled.send(chunk).is_err() || failed {
            return;
        }
    }
}
