//! Byte strings of any length stored across keychain items.
//!
//! A blob named `(service, user)` is one or more items ("pieces"). The head
//! piece is the item `(service, user)` and holds `<n>.<g>:` followed by the
//! first bytes, where `n` is the piece count and `g` the generation (0 or
//! 1); pieces 1..n are the items `(service.g<g>.c<k>, user)`.
//!
//! A rewrite stores its pieces under the other generation first and the
//! head last, so until the head is replaced readers still find the old head
//! and the old pieces intact: a write that fails midway leaves the previous
//! blob readable. No item is ever empty (kernel keyutils refuses empty
//! payloads), and no item is longer than the store's chunk length (Windows
//! stores at most 2,560 bytes per credential).

use keyring_core::{CredentialStore, Entry, Error as StoreError};
use zeroize::Zeroizing;

use crate::error::KeychainError;

/// Bytes the head piece keeps free for its `<n>.<g>:` prefix.
const HEAD_RESERVE: usize = 12;

/// Most pieces a blob may have; a head naming more is corrupt.
pub(crate) const MAX_PIECES: usize = 1 << 16;

/// Smallest chunk length the provider accepts.
pub(crate) const MIN_CHUNK_LEN: usize = 64;

/// What a blob's head item says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Number of items, the head included.
    pub(crate) pieces: usize,
    /// Which names pieces 1..n live under.
    generation: u8,
}

/// A blob's bytes, wiped on drop.
pub(crate) type BlobBytes = Zeroizing<Vec<u8>>;

/// Reads and writes blobs in one store with one chunk length.
pub(crate) struct Blobs<'a> {
    pub(crate) store: &'a CredentialStore,
    pub(crate) chunk_len: usize,
}

impl Blobs<'_> {
    /// Reads the blob and its head, or `None` when its head item does not
    /// exist.
    pub(crate) fn read(
        &self,
        service: &str,
        user: &str,
    ) -> Result<Option<(Head, BlobBytes)>, KeychainError> {
        let Some(raw) = self.raw_head(service, user)? else {
            return Ok(None);
        };
        let (head, first) = parse_head(&raw).ok_or_else(|| foreign_item(service, user))?;
        // The piece count comes from the item, which any program in the
        // session may have written: size the buffer from the bytes actually
        // read, never from the count alone (65,536 pieces of a 64 KiB chunk
        // would reserve 4 GiB before the first missing piece is noticed).
        let reserve = if head.pieces > 1 {
            self.chunk_len.min(INITIAL_PIECE_CAPACITY)
        } else {
            0
        };
        let mut out = Zeroizing::new(Vec::with_capacity(first.len() + reserve));
        out.extend_from_slice(first);
        for k in 1..head.pieces {
            let name = piece_service(service, head.generation, k);
            let action = format!("reading keychain item {name}/{user}");
            match self.entry(&name, user, &action)?.get_secret() {
                Ok(bytes) => extend_wiped(&mut out, &Zeroizing::new(bytes)),
                Err(StoreError::NoEntry) => {
                    return Err(KeychainError::Corrupt {
                        message: format!(
                            "piece {k} of {} of keychain item {service}/{user} is missing \
                             (removed outside tyrum-secrets, an interrupted destroy, or a \
                             write from another process raced this one)",
                            head.pieces
                        ),
                    });
                }
                Err(e) => return Err(KeychainError::from_store(e, &action)),
            }
        }
        Ok(Some((head, out)))
    }

    /// The blob's head, or `None` when it does not exist.
    pub(crate) fn head(&self, service: &str, user: &str) -> Result<Option<Head>, KeychainError> {
        match self.raw_head(service, user)? {
            Some(raw) => parse_head(&raw)
                .map(|(head, _)| Some(head))
                .ok_or_else(|| foreign_item(service, user)),
            None => Ok(None),
        }
    }

    /// Stores `data` as the blob, replacing the blob whose head is
    /// `previous` (`None` when there is none). On error the previous blob,
    /// if any, still reads unless the head item itself was half-replaced by
    /// the platform.
    pub(crate) fn write(
        &self,
        service: &str,
        user: &str,
        data: &[u8],
        previous: Option<Head>,
    ) -> Result<Head, KeychainError> {
        let head_cap = self.chunk_len - HEAD_RESERVE;
        let (first, rest) = data.split_at(data.len().min(head_cap));
        let tail: Vec<&[u8]> = rest.chunks(self.chunk_len).collect();
        let head = Head {
            pieces: 1 + tail.len(),
            generation: previous.map_or(0, |p| 1 - p.generation),
        };
        if head.pieces > MAX_PIECES {
            return Err(KeychainError::Config {
                message: format!(
                    "a blob of {} bytes needs {} keychain items; raise chunk_len",
                    data.len(),
                    head.pieces
                ),
            });
        }
        for (i, piece) in tail.iter().enumerate() {
            let name = piece_service(service, head.generation, i + 1);
            if let Err(e) = self.set(&name, user, piece) {
                // Nothing points at these pieces yet: take them back, best
                // effort (the store is failing), so no stray bytes remain.
                for k in 1..=i {
                    let _ = self.remove(&piece_service(service, head.generation, k), user);
                }
                return Err(e);
            }
        }
        let mut raw = Zeroizing::new(Vec::with_capacity(HEAD_RESERVE + first.len()));
        raw.extend_from_slice(format!("{}.{}:", head.pieces, head.generation).as_bytes());
        raw.extend_from_slice(first);
        self.set(service, user, &raw)?;
        // The new blob is in place; the old generation's pieces are garbage.
        // Removing them is best effort: the write has already happened.
        if let Some(previous) = previous {
            for k in 1..previous.pieces {
                let _ = self.remove(&piece_service(service, previous.generation, k), user);
            }
        }
        Ok(head)
    }

    /// Removes the blob's pieces, head last, so an interrupted erase can be
    /// finished by erasing again. Returns whether a head existed.
    pub(crate) fn erase(&self, service: &str, user: &str) -> Result<bool, KeychainError> {
        let Some(head) = self.head(service, user)? else {
            return Ok(false);
        };
        for k in 1..head.pieces {
            self.remove(&piece_service(service, head.generation, k), user)?;
        }
        self.remove(service, user)?;
        Ok(true)
    }

    fn raw_head(&self, service: &str, user: &str) -> Result<Option<BlobBytes>, KeychainError> {
        let action = format!("reading keychain item {service}/{user}");
        match self.entry(service, user, &action)?.get_secret() {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(StoreError::NoEntry) => Ok(None),
            Err(e) => Err(KeychainError::from_store(e, &action)),
        }
    }

    fn set(&self, service: &str, user: &str, bytes: &[u8]) -> Result<(), KeychainError> {
        let action = format!("writing keychain item {service}/{user}");
        self.entry(service, user, &action)?
            .set_secret(bytes)
            .map_err(|e| KeychainError::from_store(e, &action))
    }

    /// Deletes one item; a missing item is not an error.
    fn remove(&self, service: &str, user: &str) -> Result<(), KeychainError> {
        let action = format!("deleting keychain item {service}/{user}");
        match self.entry(service, user, &action)?.delete_credential() {
            Ok(()) | Err(StoreError::NoEntry) => Ok(()),
            Err(e) => Err(KeychainError::from_store(e, &action)),
        }
    }

    fn entry(&self, service: &str, user: &str, action: &str) -> Result<Entry, KeychainError> {
        self.store
            .build(service, user, None)
            .map_err(|e| KeychainError::from_store(e, action))
    }
}

/// Capacity reserved up front for the pieces after the head.
const INITIAL_PIECE_CAPACITY: usize = 64 * 1024;

/// Appends `bytes` to `out`; when `out` must grow, moves its contents into a
/// larger buffer itself so the old allocation is wiped, not freed as is.
fn extend_wiped(out: &mut Zeroizing<Vec<u8>>, bytes: &[u8]) {
    let needed = out.len() + bytes.len();
    if needed > out.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(out.capacity() * 2)));
        grown.extend_from_slice(out);
        *out = grown;
    }
    out.extend_from_slice(bytes);
}

/// The service name of piece `k` (at least 1) of generation `generation`
/// of the blob at `service`.
fn piece_service(service: &str, generation: u8, k: usize) -> String {
    format!("{service}.g{generation}.c{k}")
}

fn foreign_item(service: &str, user: &str) -> KeychainError {
    KeychainError::Corrupt {
        message: format!(
            "keychain item {service}/{user} was not written by tyrum-secrets \
             (bad piece header); remove it"
        ),
    }
}

/// Splits a head item into its head and first bytes.
fn parse_head(raw: &[u8]) -> Option<(Head, &[u8])> {
    let colon = raw.iter().take(HEAD_RESERVE).position(|b| *b == b':')?;
    let prefix = std::str::from_utf8(&raw[..colon]).ok()?;
    let (count, generation) = prefix.split_once('.')?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pieces: usize = count.parse().ok()?;
    let generation = match generation {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    if pieces == 0 || pieces > MAX_PIECES {
        return None;
    }
    Some((Head { pieces, generation }, &raw[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parser_accepts_only_heads_it_wrote() {
        let head = |pieces, generation| Head { pieces, generation };
        assert_eq!(parse_head(b"3.1:abc"), Some((head(3, 1), &b"abc"[..])));
        assert_eq!(parse_head(b"1.0:"), Some((head(1, 0), &b""[..])));
        for bad in [
            &b"3:abc"[..],
            b"0.0:abc",
            b".0:abc",
            b"+1.0:abc",
            b"1.2:abc",
            b"abc",
            b"99999999999.0:",
            b"65537.0:",
        ] {
            assert_eq!(parse_head(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
