//! Redacting streams: bytes from a pipe through the redactor to standard
//! output or error, with interactive output passed on without delay.
//!
//! Each chunk read is redacted and written at once. The redactor's writer
//! holds back exactly the longest tail that could be the start of a value
//! (or of one of its encodings), so a value split across two reads is still
//! caught, while ordinary text, such as a prompt without a newline waiting
//! for input, is passed on by the same write.

use std::fs::File;
use std::io::{self, BufWriter, Read as _, Write};

use tyrum_secrets::Redactor;
use zeroize::Zeroizing;

/// Bytes read from a pipe at a time (and the pipe's size where the system
/// lets it grow: fewer, larger reads and writes).
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Standard output as an unbuffered-by-line file (std's `Stdout` flushes
/// at every newline), buffered per chunk instead.
pub(crate) fn raw_stdout() -> io::Result<BufWriter<File>> {
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

/// Copies `source` to `sink` through `redactor` until `source` ends. A
/// sink that stops taking bytes (a closed pipe) ends the copy without an
/// error, closing `source` so the writer on its other end sees the pipe
/// closed too.
pub(crate) fn pump(mut source: File, redactor: &Redactor, sink: impl Write) -> io::Result<()> {
    grow_pipe(&source);
    let mut writer = redactor.writer(sink);
    // Raw child output may hold a value: wiped when dropped.
    let mut buffer = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // `flush` passes on what the write redacted (the buffered sink)
        // and keeps only a possible start of a value.
        if writer
            .write_all(&buffer[..n])
            .and_then(|()| writer.flush())
            .is_err()
        {
            return Ok(());
        }
    }
    if let Ok(mut sink) = writer.finish() {
        let _ = sink.flush();
    }
    Ok(())
}
