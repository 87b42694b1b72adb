//! [`RedactingMakeWriter`]: redaction of `tracing-subscriber` output.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use tracing_core::Metadata;
use tracing_subscriber::fmt::MakeWriter;
use zeroize::Zeroizing;

use super::Redactor;
use super::writer::extend_wiped;
use crate::mutation::{self, Mutation};

/// A [`MakeWriter`] that redacts everything a `tracing-subscriber` layer
/// writes through it, at every level: trace and debug events are redacted
/// like errors. Made by [`Redactor::make_writer`].
///
/// ```
/// use tyrum_secrets_core::{HandleId, Redactor, SecretBytes};
///
/// let redactor = Redactor::new();
/// let subscriber = tracing_subscriber::fmt()
///     .with_max_level(tracing::Level::TRACE)
///     .with_writer(redactor.make_writer(std::io::stderr))
///     .finish();
/// # drop(subscriber);
/// ```
///
/// # What is caught
///
/// - **Within one event.** Each event gets its own writer, which buffers
///   every byte written for that event and redacts the whole event when it
///   is flushed or dropped. A value split across several writes of one event
///   is caught.
/// - **Across events.** The raw tail of the previous event that may be the
///   start of a value (the longest that is a proper prefix of a registered
///   pattern; usually nothing) is kept (wiped on replacement) and scanned
///   together with the next event. When a value runs from one event into
///   the next with nothing between the two parts but what the value itself
///   contains (typically a multi-line value whose lines were logged one
///   event at a time), the part in the later event is replaced.
///
/// # Limits
///
/// Output is never delayed to wait for the next event, so the part of a
/// value that was already written with an earlier event cannot be taken
/// back: it is redacted only if it is itself a registered pattern. Each line
/// of a multi-line value is one (when at least the minimum length), so a
/// multi-line value logged line by line is redacted whole; a line shorter
/// than the minimum is caught only when it continues the previous event.
/// A value cut at an arbitrary point and logged in two events with a log
/// prefix (time, level, target) between the parts cannot be recognised by
/// any byte matcher and is not caught. Events from different threads are
/// scanned in the order they are written; concurrent events serialize on
/// this writer while they are redacted and written.
///
/// Errors of the inner writer are reported by `flush` and are otherwise
/// ignored when an event writer is dropped, as `tracing-subscriber` itself
/// ignores them.
pub struct RedactingMakeWriter<M> {
    redactor: Redactor,
    inner: M,
    /// The raw tail of the last event written.
    carry: Mutex<Zeroizing<Vec<u8>>>,
}

impl<M> RedactingMakeWriter<M> {
    /// Wraps `inner`, redacting with `redactor` (which keeps following the
    /// values registered with it, or with any of its clones).
    pub fn new(redactor: Redactor, inner: M) -> Self {
        Self {
            redactor,
            inner,
            carry: Mutex::new(Zeroizing::new(Vec::new())),
        }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingEventWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingEventWriter::new(self.inner.make_writer(), &self.redactor, &self.carry)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        RedactingEventWriter::new(
            self.inner.make_writer_for(meta),
            &self.redactor,
            &self.carry,
        )
    }
}

impl<M> fmt::Debug for RedactingMakeWriter<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactingMakeWriter")
            .field("redactor", &self.redactor)
            .finish_non_exhaustive()
    }
}

/// The writer for one event, made by [`RedactingMakeWriter`]. Buffers the
/// event and writes it, redacted, when flushed or dropped.
pub struct RedactingEventWriter<'a, W: Write> {
    inner: W,
    redactor: &'a Redactor,
    carry: &'a Mutex<Zeroizing<Vec<u8>>>,
    /// The event's raw bytes so far.
    event: Zeroizing<Vec<u8>>,
}

impl<'a, W: Write> RedactingEventWriter<'a, W> {
    fn new(inner: W, redactor: &'a Redactor, carry: &'a Mutex<Zeroizing<Vec<u8>>>) -> Self {
        Self {
            inner,
            redactor,
            carry,
            event: Zeroizing::new(Vec::new()),
        }
    }

    /// Redacts the buffered event, scanning it after the previous event's
    /// tail, and writes it.
    fn emit(&mut self) -> io::Result<()> {
        if self.event.is_empty() {
            return Ok(());
        }
        // Held across the write, so the carried tail follows the order in
        // which events reach the inner writer. A panic while it was held
        // leaves at worst a stale tail, which only widens the next scan.
        let mut carry = self.carry.lock().unwrap_or_else(PoisonError::into_inner);
        let matcher = self.redactor.matcher();
        let tail = carry.len();
        let mut scanned = Zeroizing::new(Vec::with_capacity(tail + self.event.len()));
        scanned.extend_from_slice(&carry);
        scanned.extend_from_slice(&self.event);
        self.event.clear();

        let mut out = Vec::with_capacity(scanned.len() - tail + 64);
        let mut cursor = tail;
        let (spans, open) = matcher.stream_spans(&scanned);
        for span in spans {
            if span.end <= tail {
                // Entirely in the previous event, which was handled then.
                continue;
            }
            let start = span.start.max(cursor);
            out.extend_from_slice(&scanned[cursor..start]);
            matcher.write_placeholders(&span, &mut out);
            cursor = span.end;
        }
        out.extend_from_slice(&scanned[cursor..]);
        if cursor > tail && mutation::active(Mutation::LeakLog) && mutation::once() {
            out = scanned[tail..].to_vec();
        }

        carry.clear();
        extend_wiped(&mut carry, &scanned[open..]);
        self.inner.write_all(&out)
    }
}

impl<W: Write> Write for RedactingEventWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        extend_wiped(&mut self.event, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingEventWriter<'_, W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
}

impl<W: Write> fmt::Debug for RedactingEventWriter<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactingEventWriter")
            .field("buffered", &self.event.len())
            .finish_non_exhaustive()
    }
}
