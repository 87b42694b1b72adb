//! Byte strings of any length stored across keychain items.
//!
//! A blob named `(service, user)` is one or more items ("pieces"). The head
//! piece is the item `(service, user)` and holds `<n>:` followed by the
//! first bytes; pieces 1..n are the items `(service.c<k>, user)`. Writers
//! store pieces 1..n first and the head last, so a head never names pieces
//! that were not written. No item is ever empty (kernel keyutils refuses
//! empty payloads), and no item is longer than the store's chunk length
//! (Windows stores at most 2,560 bytes per credential).

use keyring_core::{CredentialStore, Entry, Error as StoreError};
use zeroize::Zeroizing;

use crate::error::KeychainError;

/// Bytes the head piece keeps free for its `<n>:` prefix.
const HEAD_RESERVE: usize = 12;

/// Most pieces a blob may have; a head naming more is corrupt.
pub(crate) const MAX_PIECES: usize = 1 << 16;

/// Smallest chunk length the provider accepts.
pub(crate) const MIN_CHUNK_LEN: usize = 64;

/// Reads and writes blobs in one store with one chunk length.
pub(crate) struct Blobs<'a> {
    pub(crate) store: &'a CredentialStore,
    pub(crate) chunk_len: usize,
}

impl Blobs<'_> {
    /// Reads the blob and its piece count, or `None` when its head item
    /// does not exist.
    pub(crate) fn read(
        &self,
        service: &str,
        user: &str,
    ) -> Result<Option<(usize, Zeroizing<Vec<u8>>)>, KeychainError> {
        let action = format!("reading keychain item {service}/{user}");
        let head = match self.entry(service, user, &action)?.get_secret() {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(StoreError::NoEntry) => return Ok(None),
            Err(e) => return Err(KeychainError::from_store(e, &action)),
        };
        let (pieces, first) = parse_head(&head).ok_or_else(|| KeychainError::Corrupt {
            message: format!(
                "keychain item {service}/{user} was not written by tyrum-secrets \
                 (bad piece header); remove it"
            ),
        })?;
        // Sized up front so growing never leaves an unwiped copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(
            first.len() + (pieces - 1) * self.chunk_len,
        ));
        out.extend_from_slice(first);
        for k in 1..pieces {
            let piece_service = piece_service(service, k);
            let action = format!("reading keychain item {piece_service}/{user}");
            match self.entry(&piece_service, user, &action)?.get_secret() {
                Ok(bytes) => out.extend_from_slice(&Zeroizing::new(bytes)),
                Err(StoreError::NoEntry) => {
                    return Err(KeychainError::Corrupt {
                        message: format!(
                            "piece {k} of {pieces} of keychain item {service}/{user} is \
                             missing (removed outside tyrum-secrets, or a write from another \
                             process raced this one)"
                        ),
                    });
                }
                Err(e) => return Err(KeychainError::from_store(e, &action)),
            }
        }
        Ok(Some((pieces, out)))
    }

    /// Stores `data` as the blob, replacing any blob of that name. Pieces an
    /// earlier, longer blob left beyond the new count are removed.
    pub(crate) fn write(
        &self,
        service: &str,
        user: &str,
        data: &[u8],
        old_pieces: usize,
    ) -> Result<usize, KeychainError> {
        let head_cap = self.chunk_len - HEAD_RESERVE;
        let (first, rest) = data.split_at(data.len().min(head_cap));
        let tail: Vec<&[u8]> = rest.chunks(self.chunk_len).collect();
        let pieces = 1 + tail.len();
        if pieces > MAX_PIECES {
            return Err(KeychainError::Config {
                message: format!(
                    "a blob of {} bytes needs {pieces} keychain items; raise chunk_len",
                    data.len()
                ),
            });
        }
        for (i, piece) in tail.iter().enumerate() {
            let piece_service = piece_service(service, i + 1);
            self.set(&piece_service, user, piece)?;
        }
        let mut head = Zeroizing::new(Vec::with_capacity(HEAD_RESERVE + first.len()));
        head.extend_from_slice(format!("{pieces}:").as_bytes());
        head.extend_from_slice(first);
        self.set(service, user, &head)?;
        for k in pieces..old_pieces {
            self.remove(&piece_service(service, k), user)?;
        }
        Ok(pieces)
    }

    /// Removes the blob's pieces, head last. Returns whether a head existed.
    pub(crate) fn erase(&self, service: &str, user: &str) -> Result<bool, KeychainError> {
        let Some(pieces) = self.pieces(service, user)? else {
            return Ok(false);
        };
        for k in 1..pieces {
            self.remove(&piece_service(service, k), user)?;
        }
        self.remove(service, user)?;
        Ok(true)
    }

    /// How many pieces the blob has, or `None` when it does not exist.
    pub(crate) fn pieces(&self, service: &str, user: &str) -> Result<Option<usize>, KeychainError> {
        let action = format!("reading keychain item {service}/{user}");
        match self.entry(service, user, &action)?.get_secret() {
            Ok(bytes) => {
                let head = Zeroizing::new(bytes);
                let (pieces, _) = parse_head(&head).ok_or_else(|| KeychainError::Corrupt {
                    message: format!(
                        "keychain item {service}/{user} was not written by tyrum-secrets \
                         (bad piece header); remove it"
                    ),
                })?;
                Ok(Some(pieces))
            }
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

/// The service name of piece `k` of the blob at `service`.
fn piece_service(service: &str, k: usize) -> String {
    if k == 0 {
        service.to_owned()
    } else {
        format!("{service}.c{k}")
    }
}

/// Splits a head item into its piece count and first bytes.
fn parse_head(head: &[u8]) -> Option<(usize, &[u8])> {
    let colon = head.iter().take(HEAD_RESERVE).position(|b| *b == b':')?;
    let digits = std::str::from_utf8(&head[..colon]).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pieces: usize = digits.parse().ok()?;
    if pieces == 0 || pieces > MAX_PIECES {
        return None;
    }
    Some((pieces, &head[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parser_accepts_only_counts_it_wrote() {
        assert_eq!(parse_head(b"3:abc"), Some((3, &b"abc"[..])));
        assert_eq!(parse_head(b"1:"), Some((1, &b""[..])));
        assert_eq!(parse_head(b"0:abc"), None);
        assert_eq!(parse_head(b":abc"), None);
        assert_eq!(parse_head(b"+1:abc"), None);
        assert_eq!(parse_head(b"abc"), None);
        assert_eq!(parse_head(b"99999999999:"), None);
        assert_eq!(parse_head(b"65537:"), None);
    }
}
