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
/// two writes, the writer holds back exactly the longest tail of what it
/// has seen that is a proper prefix of some registered pattern (a value or
/// one of its forms), plus, while a match reaching into that tail could
/// still grow into the next write, the match (up to 1 MiB of overlapping
/// matches). Everything before is passed on, redacted, by the same
/// `write`. Ordinary text holds back nothing: interactive output is not
/// delayed, and [`held_back`](Self::held_back) tells a wrapper (a `run`
/// command relaying a child's output) whether anything is waiting. Each
/// write picks up the redactor's current values, so a value registered
/// mid-stream is caught in every byte not yet passed on.
///
/// [`flush`](Write::flush) passes on everything that cannot be the start
/// of a value (by the redactor's current values) and flushes the inner
/// writer, but keeps the held-back tail: releasing it would let a value
/// split across the flush through. [`finish`](Self::finish) releases it;
/// dropping the writer does the same on a best-effort basis (errors are
/// ignored, as `BufWriter` does).
///
/// Each write rescans the held-back tail (usually empty, at most the
/// longest pattern), so a stream of very small writes into the middle of a
/// long value costs that much per write; put a `BufWriter` in front if the
/// producer writes byte by byte.
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

    /// How many raw bytes are held back, waiting for the next write or
    /// [`finish`](Self::finish): 0 unless the stream ends in what may be
    /// the start of a registered value (or a match that may still grow).
    /// They are passed on as soon as a write shows they are not.
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// Redacts the held bytes and passes them on: all of them when `all`,
    /// otherwise all but the tail a future match could still start in.
    fn redact_held(&mut self, matcher: &Matcher, all: bool) {
        let (held, mut sink) = self.held_and_sink();
        let cursor = redact_final(matcher, held, all, &mut sink);
        // Shifts the tail to the front within the same (wiped-on-drop)
        // allocation.
        held.drain(..cursor);
    }

    /// [`redact_held`](Self::redact_held) for `bytes` the caller still
    /// owns, while nothing is held: scanned where they are, and only the
    /// tail a future match could start in is copied (into `held`).
    fn redact_in_place(&mut self, matcher: &Matcher, bytes: &[u8]) {
        debug_assert!(self.held.is_empty());
        let (held, mut sink) = self.held_and_sink();
        let cursor = redact_final(matcher, bytes, false, &mut sink);
        extend_wiped(held, &bytes[cursor..]);
    }

    /// The held-back bytes, and where redacted bytes go.
    fn held_and_sink(&mut self) -> (&mut Zeroizing<Vec<u8>>, Sink<'_, W>) {
        let Self {
            held, inner, out, ..
        } = self;
        (
            held,
            Sink {
                inner: inner.as_mut(),
                out,
            },
        )
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

/// The most of a write appended to a non-empty held-back tail at a time
/// (at least the tail's own length, so a long tail is rescanned a bounded
/// number of times): once the tail is resolved, the rest of the write is
/// scanned in place instead of copied.
const JUNCTION: usize = 64 * 1024;

/// Redacts `bytes` into `sink`: all of them when `all`, otherwise all but
/// the tail a future match could still start in (a proper prefix of a
/// pattern, or a match that may still grow). Returns where that tail
/// begins: everything before it has been passed on.
fn redact_final<W: Write>(
    matcher: &Matcher,
    bytes: &[u8],
    all: bool,
    sink: &mut Sink<'_, W>,
) -> usize {
    let (spans, open) = if all {
        (matcher.spans(bytes).collect(), bytes.len())
    } else {
        matcher.stream_spans(bytes)
    };
    // Everything before `cut` is final: no pattern that the next bytes
    // could complete begins there. A span reaching past it may still be
    // extended by a match that starts in the open tail.
    let cut = open;
    let mut cursor = 0;
    let mut emit_end = cut;
    for span in &spans {
        if span.start >= cut {
            break;
        }
        if span.end > cut && span.end - span.start <= MAX_OPEN_SPAN {
            emit_end = span.start;
            break;
        }
        sink.put(&bytes[cursor..span.start]);
        for placeholder in matcher.placeholders(span) {
            sink.put(placeholder.as_bytes());
        }
        cursor = span.end;
    }
    if cursor < emit_end {
        sink.put(&bytes[cursor..emit_end]);
        cursor = emit_end;
    }
    cursor
}

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
        let matcher = self.redactor.matcher();
        // `buf` is taken now; an inner error while passing it on leaves the
        // untaken redacted bytes in `out`, and surfaces on the next call.
        // Splitting it is as if the caller had written it in pieces, which
        // gives the same output by design.
        let mut rest = buf;
        while !self.held.is_empty() && !rest.is_empty() {
            let take = rest.len().min(JUNCTION.max(self.held.len()));
            extend_wiped(&mut self.held, &rest[..take]);
            rest = &rest[take..];
            self.redact_held(&matcher, false);
        }
        if !rest.is_empty() {
            self.redact_in_place(&matcher, rest);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Values removed since the last write may have ended a tail's
        // chance of being one.
        if !self.held.is_empty() {
            let matcher = self.redactor.matcher();
            self.redact_held(&matcher, false);
        }
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
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    use super::super::tests::{handle, placeholder, redactor_with, secret};

    /// A writer whose output the test can read while the redacting writer
    /// still holds it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
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

    #[test]
    fn writer_holds_back_no_more_than_a_split_value_needs() {
        let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
        let sink = Shared::default();
        let mut writer = redactor.writer(sink.clone());
        // No tail of this text begins the value or any of its encodings: all of
        // it is passed on at once.
        writer.write_all(&[b'x'; 1000]).unwrap();
        assert_eq!(writer.held_back(), 0);
        assert_eq!(sink.bytes(), vec![b'x'; 1000]);
        // Exactly the bytes that may begin the value wait.
        writer.write_all(b" key=sk-live-4f").unwrap();
        assert_eq!(writer.held_back(), "sk-live-4f".len());
        writer.flush().unwrap();
        assert_eq!(
            writer.held_back(),
            "sk-live-4f".len(),
            "flush must not release a value's start"
        );
        assert!(sink.bytes().ends_with(b" key="));
        writer.write_all(b"9a8b7c!").unwrap();
        assert_eq!(writer.held_back(), 0);
        let out = String::from_utf8(sink.bytes()).unwrap();
        assert_eq!(out, format!("{} key={}!", "x".repeat(1000), placeholder(1)));
        writer.finish().unwrap();
    }

    #[test]
    fn flush_passes_on_a_tail_that_can_no_longer_begin_a_value() {
        let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c"), (2, "other-value-1234")]);
        let mut writer = redactor.writer(Vec::new());
        writer
            .write_all(b"a=other-value-1234 b=sk-live-4f")
            .unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.held_back(), "sk-live-4f".len());
        // Retired: those bytes can no longer be the start of a value.
        assert!(redactor.remove_value(&handle(1), &secret("sk-live-4f9a8b7c")));
        writer.flush().unwrap();
        assert_eq!(writer.held_back(), 0);
        let out = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert_eq!(out, format!("a={} b=sk-live-4f", placeholder(2)));
    }

    /// Text of `len` bytes with `value` at each of `at` (and nothing else
    /// that could begin it).
    fn text_with(len: usize, value: &str, at: &[usize]) -> Vec<u8> {
        let mut text: Vec<u8> = b"lorem ipsum dolor; "
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect();
        for &position in at {
            text[position..position + value.len()].copy_from_slice(value.as_bytes());
        }
        text
    }

    #[test]
    fn a_large_write_after_a_held_tail_is_cut_as_one_pass() {
        let value = "sk-live-4f9a8b7c";
        let redactor = redactor_with(&[(1, value)]);
        let junction = super::JUNCTION;
        // Values around where the junction pieces end (the held tail is a
        // few bytes, so the first piece ends near `junction`) and later.
        let at = [
            3,
            junction - 40,
            junction - 8,
            junction + 1,
            2 * junction - 5,
            3 * junction + 100,
        ];
        let input = text_with(4 * junction, value, &at);
        let expected = redactor.redact_bytes(&input).into_inner().into_owned();
        assert!(!expected.windows(value.len()).any(|w| w == value.as_bytes()));
        // Split inside the first value: the tail is held, and the one large
        // write that follows must resolve it, then go on in place.
        for split in [4, 8, 12, 18] {
            let mut writer = redactor.writer(Vec::new());
            writer.write_all(&input[..split]).unwrap();
            assert!(writer.held_back() > 0, "split {split}");
            writer.write_all(&input[split..]).unwrap();
            assert_eq!(writer.finish().unwrap(), expected, "split {split}");
        }
    }

    #[test]
    fn a_match_still_growing_past_the_junction_is_not_cut() {
        // The value repeated back to back overlaps itself ("abab..."): one
        // merged match that keeps growing through several junction pieces.
        let value = "abcdefgh-abcdefgh-";
        let redactor = redactor_with(&[(1, value)]);
        let mut input = b"start ".to_vec();
        input.extend(value.repeat(3 * super::JUNCTION / value.len()).bytes());
        input.extend_from_slice(b" end");
        let expected = redactor.redact_bytes(&input).into_inner().into_owned();
        let mut writer = redactor.writer(Vec::new());
        writer.write_all(&input[..10]).unwrap();
        assert!(writer.held_back() > 0);
        writer.write_all(&input[10..]).unwrap();
        let out = writer.finish().unwrap();
        assert_eq!(out, expected);
        assert!(!out.windows(value.len()).any(|w| w == value.as_bytes()));
    }
}
