//! [`RedactingWriter`]: redaction of a byte stream written in chunks.

use std::fmt;
use std::io::{self, Write};

use zeroize::Zeroizing;

use super::Redactor;
use super::matcher::Matcher;

/// An [`io::Write`] adapter that redacts everything written through it;
/// made by [`Redactor::writer`].
///
/// The stream is bytes and need not be UTF-8. To catch a value split across
/// two writes, the writer holds back the last `max pattern length - 1`
/// bytes it has seen (more only while a match that reaches into that tail
/// could still grow, up to 1 MiB of overlapping matches), and passes
/// everything before them on, redacted. Each
/// write picks up the redactor's current values, so a value registered
/// mid-stream is caught in every byte not yet passed on.
///
/// [`flush`](Write::flush) passes on what is already redacted and flushes
/// the inner writer, but keeps the held-back tail: releasing it would let a
/// value split across the flush through. [`finish`](Self::finish) releases
/// it; dropping the writer does the same on a best-effort basis (errors are
/// ignored, as `BufWriter` does).
///
/// Each write rescans the held-back tail, so a long stream of very small
/// writes costs `max pattern length` per write; put a `BufWriter` in front
/// if the producer writes byte by byte.
///
/// After an error from the inner writer, the redacted bytes it did not take
/// are kept and retried on the next call, as `BufWriter` does. Unredacted
/// bytes never reach the inner writer.
pub struct RedactingWriter<W: Write> {
    redactor: Redactor,
    inner: Option<W>,
    /// Raw bytes not yet redacted: the held-back tail. May hold part of a
    /// value, so it is wiped on drop and never reallocated in place.
    held: Zeroizing<Vec<u8>>,
    /// Redacted bytes the inner writer refused; retried, in order, before
    /// anything else is passed on. Empty while the inner writer keeps up.
    out: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    pub(super) fn new(redactor: Redactor, inner: W) -> Self {
        Self {
            redactor,
            inner: Some(inner),
            held: Zeroizing::new(Vec::new()),
            out: Vec::new(),
        }
    }

    /// Redacts and writes the held-back tail, flushes, and returns the inner
    /// writer.
    ///
    /// # Errors
    /// The inner writer's error. The redacted bytes not yet written are then
    /// retried once when the adapter is dropped.
    pub fn finish(mut self) -> io::Result<W> {
        let matcher = self.redactor.matcher();
        self.redact_held(&matcher, true);
        self.drain_out()?;
        if let Some(inner) = self.inner.as_mut() {
            inner.flush()?;
        }
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("the redacting writer was already finished"))
    }

    /// Passes on every held-back byte that cannot be the start of a
    /// registered value (or of one of its encodings), redacted, and
    /// flushes: for a stream that has gone quiet, such as a prompt printed
    /// without a newline that waits for input. Only the longest tail that
    /// could still grow into a value stays held; releasing it would let a
    /// value split across the pause through.
    ///
    /// # Errors
    /// The inner writer's error (the redacted bytes it did not take are
    /// kept and retried, as for a write).
    pub fn release_idle(&mut self) -> io::Result<()> {
        self.drain_out()?;
        let matcher = self.redactor.matcher();
        let keep = matcher.possible_start_len(&self.held);
        self.redact_held_keeping(&matcher, keep);
        self.flush()
    }

    /// How many raw bytes are held back, waiting for the next write or
    /// [`finish`](Self::finish).
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// Redacts the held bytes and passes them on: all of them when `all`,
    /// otherwise all but the tail a future match could still start in.
    fn redact_held(&mut self, matcher: &Matcher, all: bool) {
        let keep = if all {
            0
        } else {
            matcher.max_len().saturating_sub(1)
        };
        self.redact_held_keeping(matcher, keep);
    }

    /// Redacts the held bytes and passes on all but the last `keep`, which
    /// must include every tail a future match could start in.
    fn redact_held_keeping(&mut self, matcher: &Matcher, keep: usize) {
        let Self {
            held, inner, out, ..
        } = self;
        let mut sink = Sink {
            inner: inner.as_mut(),
            out,
        };
        let len = held.len();
        // A match starting before `cut` has all its bytes here already (no
        // pattern is longer than `keep + 1`, or, for an idle release, none
        // can start before `cut` and run past the end), so it is final,
        // unless it reaches past `cut`, where a later match could overlap
        // and extend it.
        let cut = len.saturating_sub(keep);
        let mut cursor = 0;
        let mut emit_end = cut;
        for span in matcher.spans(held) {
            if span.start >= cut {
                break;
            }
            if span.end > cut && span.end - span.start <= MAX_OPEN_SPAN {
                emit_end = span.start;
                break;
            }
            sink.put(&held[cursor..span.start]);
            for placeholder in matcher.placeholders(&span) {
                sink.put(placeholder.as_bytes());
            }
            cursor = span.end;
        }
        if cursor < emit_end {
            sink.put(&held[cursor..emit_end]);
            cursor = emit_end;
        }
        // Shifts the tail to the front within the same (wiped-on-drop)
        // allocation.
        held.drain(..cursor);
    }

    /// Hands `out` to the inner writer. On error, keeps what it did not
    /// take.
    fn drain_out(&mut self) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        let mut written = 0;
        let result = loop {
            if written == self.out.len() {
                break Ok(());
            }
            match inner.write(&self.out[written..]) {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the inner writer accepted no redacted bytes",
                    ));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.out.drain(..written);
        result
    }
}

/// The longest merged match the writer holds back waiting to see whether it
/// grows. Past this, it is replaced as it stands, so a stream that repeats a
/// value endlessly cannot make the writer buffer without bound; a match
/// overlapping the cut-off point may then leave at most `max pattern length
/// - 1` bytes of its tail unreplaced.
const MAX_OPEN_SPAN: usize = 1 << 20;

/// Where redacted bytes go: straight to the inner writer, or, once it has
/// failed, to the `out` buffer (in order) to be retried on the next call.
/// Writing straight through saves copying every byte into a staging buffer.
struct Sink<'a, W> {
    inner: Option<&'a mut W>,
    out: &'a mut Vec<u8>,
}

impl<W: Write> Sink<'_, W> {
    fn put(&mut self, mut bytes: &[u8]) {
        if let (true, Some(inner)) = (self.out.is_empty(), self.inner.as_mut()) {
            while !bytes.is_empty() {
                match inner.write(bytes) {
                    Ok(0) => break,
                    Ok(n) => bytes = &bytes[n..],
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        self.out.extend_from_slice(bytes);
    }
}

/// Appends `data` to `buffer`, moving to a larger buffer by hand when it is
/// full, so the old allocation is wiped rather than freed with its contents
/// (as `Vec`'s own growth would).
pub(super) fn extend_wiped(buffer: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buffer.len() + data.len();
    if needed > buffer.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(2 * buffer.capacity())));
        bigger.extend_from_slice(buffer);
        *buffer = bigger;
    }
    buffer.extend_from_slice(data);
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Bytes the inner writer refused last time go first; if it still
        // refuses, `buf` is not taken.
        self.drain_out()?;
        if buf.is_empty() {
            return Ok(0);
        }
        extend_wiped(&mut self.held, buf);
        let matcher = self.redactor.matcher();
        // `buf` is taken now; an inner error while passing it on leaves the
        // untaken redacted bytes in `out`, and surfaces on the next call.
        self.redact_held(&matcher, false);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain_out()?;
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        if self.inner.is_none() {
            return;
        }
        let matcher = self.redactor.matcher();
        self.redact_held(&matcher, true);
        let _ = self.drain_out();
        if let Some(inner) = self.inner.as_mut() {
            let _ = inner.flush();
        }
    }
}

impl<W: Write> fmt::Debug for RedactingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactingWriter")
            .field("held_back", &self.held.len())
            .field("pending_output", &self.out.len())
            .field("finished", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod idle_tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use crate::{HandleId, Redactor, SecretBytes};

    const VALUE: &str = "sk-live-4f9a8b7c0d1e2f3a";

    /// An inner writer whose bytes can be read while the writer is alive.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn redactor() -> (Redactor, HandleId) {
        let redactor = Redactor::new();
        let id = HandleId::generate().unwrap();
        redactor
            .register(&id, &SecretBytes::from(VALUE.as_bytes().to_vec()))
            .unwrap();
        (redactor, id)
    }

    #[test]
    fn release_idle_passes_a_prompt_that_cannot_start_a_value() {
        let (redactor, _) = redactor();
        let out = Shared::default();
        let mut writer = redactor.writer(out.clone());
        writer.write_all(b"Password: ").unwrap();
        assert_eq!(out.text(), "", "the tail is held back after a write");
        writer.release_idle().unwrap();
        assert_eq!(out.text(), "Password: ");
        assert_eq!(writer.held_back(), 0);
    }

    #[test]
    fn release_idle_keeps_a_tail_that_could_start_a_value() {
        let (redactor, id) = redactor();
        let out = Shared::default();
        let mut writer = redactor.writer(out.clone());
        writer.write_all(b"token=sk-li").unwrap();
        writer.release_idle().unwrap();
        assert_eq!(out.text(), "token=");
        assert_eq!(writer.held_back(), "sk-li".len());
        writer.write_all(&VALUE.as_bytes()[5..]).unwrap();
        writer.write_all(b" done\n").unwrap();
        writer.finish().unwrap();
        assert_eq!(out.text(), format!("token=[{id}] done\n"));
    }

    #[test]
    fn release_idle_at_every_split_never_lets_a_value_or_its_base64_through() {
        let (redactor, id) = redactor();
        let encoded = STANDARD.encode(VALUE);
        for text in [
            format!("a {VALUE} b {VALUE}\n"),
            format!("auth {encoded}\n"),
        ] {
            for split in 0..=text.len() {
                let out = Shared::default();
                let mut writer = redactor.writer(out.clone());
                writer.write_all(&text.as_bytes()[..split]).unwrap();
                writer.release_idle().unwrap();
                let early = out.text();
                assert!(!early.contains("4f9a8b7c"), "split {split}: {early}");
                writer.write_all(&text.as_bytes()[split..]).unwrap();
                writer.finish().unwrap();
                let all = out.text();
                assert!(all.contains(&format!("[{id}]")), "split {split}: {all}");
                assert!(!all.contains("4f9a8b7c"), "split {split}: {all}");
                assert!(!all.contains(&encoded[4..16]), "split {split}: {all}");
            }
        }
    }
}
