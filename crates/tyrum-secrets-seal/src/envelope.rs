//! The sealed envelope: its binary layout, its text form, and the parser.
//! `FORMAT.md` at the crate root is the specification; this module follows
//! it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tyrum_secrets_core::{HandleId, Timestamp, Version};

use crate::node::{NodeId, check_node_id};
use crate::suite::{KEY_LEN, TAG_LEN};

/// The first bytes of every envelope.
pub(crate) const MAGIC: &[u8; 4] = b"TYSL";
/// The format version this crate writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// The prefix of the text form.
pub const TEXT_PREFIX: &str = "sealed:";
/// The largest value an envelope carries, in bytes (1 MiB).
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// Longest tool call id, in bytes (the request vocabulary's limit).
pub(crate) const TOOL_CALL_MAX_LEN: usize = 256;
/// Bytes in an envelope id.
pub(crate) const ENVELOPE_ID_LEN: usize = 16;
/// Bytes before the node id: magic, version, envelope id, expiry, version.
const FIXED_HEADER_LEN: usize = 4 + 1 + ENVELOPE_ID_LEN + 8 + 8;
/// The longest header: fixed part and the three length-prefixed ids.
const MAX_HEADER_LEN: usize =
    FIXED_HEADER_LEN + 1 + crate::node::NODE_ID_MAX_LEN + 1 + 64 + 2 + TOOL_CALL_MAX_LEN;
/// The longest envelope the parser accepts.
pub const MAX_ENVELOPE_LEN: usize = MAX_HEADER_LEN + KEY_LEN + MAX_VALUE_LEN + TAG_LEN;

/// The random id of one envelope; the node's replay guard remembers it.
/// Text form: 32 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvelopeId([u8; ENVELOPE_ID_LEN]);

impl EnvelopeId {
    /// An id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; ENVELOPE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; ENVELOPE_ID_LEN] {
        &self.0
    }

    /// A fresh random id, or `None` when the operating system cannot supply
    /// randomness.
    pub(crate) fn generate() -> Option<Self> {
        let mut bytes = [0u8; ENVELOPE_ID_LEN];
        getrandom::fill(&mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeId({self})")
    }
}

impl FromStr for EnvelopeId {
    type Err = EnvelopeIdParseError;

    /// Parses 32 lower-case hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.as_bytes();
        if text.len() != 2 * ENVELOPE_ID_LEN {
            return Err(EnvelopeIdParseError);
        }
        let mut bytes = [0u8; ENVELOPE_ID_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_digit(pair[0]).ok_or(EnvelopeIdParseError)? << 4)
                | hex_digit(pair[1]).ok_or(EnvelopeIdParseError)?;
        }
        Ok(Self(bytes))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// An envelope id text is not 32 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an envelope id is 32 lower-case hex digits")]
pub struct EnvelopeIdParseError;

/// A resolved value sealed to one paired node: HPKE (RFC 9180, base mode,
/// X25519, HKDF-SHA256, ChaCha20-Poly1305) to the node's public key, with
/// the envelope id, expiry, handle, version, node and tool call bound as
/// associated data.
///
/// It holds no raw value and no key, so it may be persisted and carried by
/// anything (a queue, an outbox row, an event). Only the node's private key
/// opens it, only before its expiry, only for that tool call, and the
/// node's replay guard opens each envelope once.
///
/// Text form (`Display`, `FromStr`, serde): `sealed:` and the binary form
/// in URL-safe base64 without padding. See `FORMAT.md`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    bytes: Vec<u8>,
    header: Header,
}

/// The parsed associated data, and where the HPKE parts start.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    envelope_id: EnvelopeId,
    expires_at: Timestamp,
    version: Version,
    node: NodeId,
    handle: HandleId,
    tool_call: String,
    /// Length of the associated data: the offset of the encapsulated key.
    aad_len: usize,
}

/// What the gateway binds into an envelope.
pub(crate) struct Binding<'a> {
    pub(crate) envelope_id: EnvelopeId,
    pub(crate) expires_at: Timestamp,
    pub(crate) version: Version,
    pub(crate) node: &'a NodeId,
    pub(crate) handle: &'a HandleId,
    pub(crate) tool_call: &'a str,
}

impl Binding<'_> {
    /// The associated data: the header bytes of the envelope.
    ///
    /// # Errors
    /// [`EnvelopeError::Field`] for a tool call id outside the limits (the
    /// other fields are valid by construction).
    pub(crate) fn aad(&self) -> Result<Vec<u8>, EnvelopeError> {
        check_tool_call(self.tool_call.as_bytes())?;
        let node = self.node.as_str().as_bytes();
        let handle = self.handle.as_str().as_bytes();
        let tool_call = self.tool_call.as_bytes();
        let mut aad = Vec::with_capacity(
            FIXED_HEADER_LEN + 1 + node.len() + 1 + handle.len() + 2 + tool_call.len(),
        );
        aad.extend_from_slice(MAGIC);
        aad.push(FORMAT_VERSION);
        aad.extend_from_slice(self.envelope_id.as_bytes());
        aad.extend_from_slice(&self.expires_at.unix_millis().to_le_bytes());
        aad.extend_from_slice(&self.version.get().to_le_bytes());
        // Lengths fit: node ids are at most 64 bytes, handle ids at most 64,
        // tool call ids at most 256 (all checked).
        aad.push(u8::try_from(node.len()).map_err(|_| EnvelopeError::Field { field: "node" })?);
        aad.extend_from_slice(node);
        aad.push(u8::try_from(handle.len()).map_err(|_| EnvelopeError::Field { field: "handle" })?);
        aad.extend_from_slice(handle);
        let tool_call_len = u16::try_from(tool_call.len())
            .map_err(|_| EnvelopeError::Field { field: "tool_call" })?;
        aad.extend_from_slice(&tool_call_len.to_le_bytes());
        aad.extend_from_slice(tool_call);
        Ok(aad)
    }
}

impl SealedSecret {
    /// Assembles an envelope from its associated data and HPKE output.
    pub(crate) fn assemble(
        mut aad: Vec<u8>,
        enc: &[u8; KEY_LEN],
        ciphertext: &[u8],
    ) -> Result<Self, EnvelopeError> {
        aad.extend_from_slice(enc);
        aad.extend_from_slice(ciphertext);
        Self::from_bytes(&aad)
    }

    /// Parses the binary form. Checks the layout and every field; whether
    /// it opens is for [`Opener`](crate::Opener) to find out.
    ///
    /// # Errors
    /// [`EnvelopeError`] naming what is wrong; never a panic, whatever the
    /// bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(EnvelopeError::TooLong { len: bytes.len() });
        }
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(EnvelopeError::NotAnEnvelope);
        }
        let format = reader.u8()?;
        if format != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedFormat { version: format });
        }
        let envelope_id = EnvelopeId(reader.array()?);
        let expires_at = Timestamp::from_unix_millis(u64::from_le_bytes(reader.array()?));
        let version = Version::new(u64::from_le_bytes(reader.array()?))
            .ok_or(EnvelopeError::Field { field: "version" })?;

        let len = usize::from(reader.u8()?);
        let node = reader.take(len)?;
        check_node_id(node).map_err(|_| EnvelopeError::Field { field: "node" })?;
        let node =
            NodeId::new(text(node, "node")?).map_err(|_| EnvelopeError::Field { field: "node" })?;

        let len = usize::from(reader.u8()?);
        let handle = HandleId::parse_bare(text(reader.take(len)?, "handle")?)
            .map_err(|_| EnvelopeError::Field { field: "handle" })?;

        let len = usize::from(u16::from_le_bytes(reader.array()?));
        let tool_call = reader.take(len)?;
        check_tool_call(tool_call)?;
        let tool_call = text(tool_call, "tool_call")?.to_owned();

        let aad_len = reader.at;
        reader.take(KEY_LEN)?;
        let ciphertext_len = bytes.len() - reader.at;
        if ciphertext_len < TAG_LEN {
            return Err(EnvelopeError::Truncated);
        }
        if ciphertext_len > MAX_VALUE_LEN + TAG_LEN {
            return Err(EnvelopeError::TooLong { len: bytes.len() });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            header: Header {
                envelope_id,
                expires_at,
                version,
                node,
                handle,
                tool_call,
                aad_len,
            },
        })
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The binary form, consuming the envelope.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The envelope's random id.
    pub fn envelope_id(&self) -> EnvelopeId {
        self.header.envelope_id
    }

    /// When it stops opening.
    pub fn expires_at(&self) -> Timestamp {
        self.header.expires_at
    }

    /// The handle whose value it carries.
    pub fn handle(&self) -> &HandleId {
        &self.header.handle
    }

    /// The version of the value (as the provider numbered it).
    pub fn version(&self) -> Version {
        self.header.version
    }

    /// The node it was sealed for.
    pub fn node(&self) -> &NodeId {
        &self.header.node
    }

    /// The tool call it was sealed for.
    pub fn tool_call(&self) -> &str {
        &self.header.tool_call
    }

    /// The associated data (the header bytes).
    pub(crate) fn aad(&self) -> &[u8] {
        &self.bytes[..self.header.aad_len]
    }

    /// The HPKE encapsulated key.
    pub(crate) fn enc(&self) -> &[u8] {
        &self.bytes[self.header.aad_len..self.header.aad_len + KEY_LEN]
    }

    /// The ciphertext with its tag.
    pub(crate) fn ciphertext(&self) -> &[u8] {
        &self.bytes[self.header.aad_len + KEY_LEN..]
    }
}

fn text<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, EnvelopeError> {
    std::str::from_utf8(bytes).map_err(|_| EnvelopeError::Field { field })
}

/// A tool call id as the request vocabulary allows it: 1 to 256 bytes of
/// UTF-8 without control characters.
fn check_tool_call(bytes: &[u8]) -> Result<(), EnvelopeError> {
    let field = EnvelopeError::Field { field: "tool_call" };
    if bytes.is_empty() || bytes.len() > TOOL_CALL_MAX_LEN {
        return Err(field);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => Ok(()),
        _ => Err(field),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self.at.checked_add(len).ok_or(EnvelopeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(EnvelopeError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let slice = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }
}

impl fmt::Display for SealedSecret {
    /// The text form: `sealed:` and the binary form in URL-safe base64.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_PREFIX)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(&self.bytes))
    }
}

impl FromStr for SealedSecret {
    type Err = EnvelopeError;

    /// Parses the text form.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let encoded = text
            .strip_prefix(TEXT_PREFIX)
            .ok_or(EnvelopeError::NotAnEnvelope)?;
        if encoded.len() > MAX_ENVELOPE_LEN.div_ceil(3) * 4 {
            return Err(EnvelopeError::TooLong { len: encoded.len() });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| EnvelopeError::NotBase64)?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Debug for SealedSecret {
    /// The bound fields and the ciphertext's length; the ciphertext itself
    /// is not shown (it is no secret, but it is noise).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("envelope_id", &self.header.envelope_id)
            .field("node", &self.header.node)
            .field("handle", &self.header.handle)
            .field("version", &self.header.version)
            .field("tool_call", &self.header.tool_call)
            .field("expires_at", &self.header.expires_at)
            .field("ciphertext_len", &self.ciphertext().len())
            .finish()
    }
}

impl Serialize for SealedSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SealedSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Bytes or text are not a well-formed envelope. Names the part that is
/// wrong, never its contents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// No `TYSL` magic, or no `sealed:` prefix.
    #[error("this is not a sealed secret envelope")]
    NotAnEnvelope,
    /// A format version this library does not read.
    #[error("envelope format version {version} is not supported; this library reads version 1")]
    UnsupportedFormat {
        /// The version found.
        version: u8,
    },
    /// The envelope ends early.
    #[error("the envelope is cut short")]
    Truncated,
    /// Longer than any envelope can be.
    #[error("the envelope is {len} bytes; no envelope is longer than {MAX_ENVELOPE_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A bound field is not valid.
    #[error("the envelope's {field} field is not valid")]
    Field {
        /// `node`, `handle`, `version` or `tool_call`.
        field: &'static str,
    },
    /// The text form is not URL-safe base64 without padding.
    #[error("the envelope text is not URL-safe base64 without padding after \"sealed:\"")]
    NotBase64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn binding<'a>(node: &'a NodeId, handle: &'a HandleId) -> Binding<'a> {
        Binding {
            envelope_id: EnvelopeId([7; ENVELOPE_ID_LEN]),
            expires_at: Timestamp::from_unix_millis(1_900_000_000_000),
            version: Version::new(3).unwrap(),
            node,
            handle,
            tool_call: "call-1",
        }
    }

    #[test]
    fn layout_round_trips_through_bytes_and_text() {
        let node = NodeId::new("node-a").unwrap();
        let handle = HandleId::generate().unwrap();
        let aad = binding(&node, &handle).aad().unwrap();
        let envelope = SealedSecret::assemble(aad.clone(), &[9; KEY_LEN], &[1; 20]).unwrap();
        assert_eq!(envelope.aad(), aad);
        assert_eq!(envelope.enc(), [9; KEY_LEN]);
        assert_eq!(envelope.ciphertext(), [1; 20]);
        assert_eq!(envelope.node(), &node);
        assert_eq!(envelope.handle(), &handle);
        assert_eq!(envelope.version().get(), 3);
        assert_eq!(envelope.tool_call(), "call-1");
        let text = envelope.to_string();
        assert!(text.starts_with("sealed:"));
        assert_eq!(text.parse::<SealedSecret>().unwrap(), envelope);
        let json = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            serde_json::from_str::<SealedSecret>(&json).unwrap(),
            envelope
        );
    }

    #[test]
    fn every_cut_of_an_envelope_is_an_error() {
        let node = NodeId::new("node-a").unwrap();
        let handle = HandleId::generate().unwrap();
        let aad = binding(&node, &handle).aad().unwrap();
        let envelope = SealedSecret::assemble(aad, &[9; KEY_LEN], &[1; TAG_LEN]).unwrap();
        let bytes = envelope.as_bytes();
        for len in 0..bytes.len() {
            assert!(SealedSecret::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let node = NodeId::new("node-a").unwrap();
        let handle = HandleId::generate().unwrap();
        let mut b = binding(&node, &handle);
        b.tool_call = "call\n2";
        assert_eq!(
            b.aad().unwrap_err(),
            EnvelopeError::Field { field: "tool_call" }
        );
        let aad = binding(&node, &handle).aad().unwrap();
        let good = SealedSecret::assemble(aad, &[9; KEY_LEN], &[1; TAG_LEN]).unwrap();
        let mut bytes = good.as_bytes().to_vec();
        bytes[4] = 2;
        assert_eq!(
            SealedSecret::from_bytes(&bytes).unwrap_err(),
            EnvelopeError::UnsupportedFormat { version: 2 }
        );
        let mut bytes = good.as_bytes().to_vec();
        bytes[29..37].fill(0);
        assert_eq!(
            SealedSecret::from_bytes(&bytes).unwrap_err(),
            EnvelopeError::Field { field: "version" }
        );
        let mut bytes = good.as_bytes().to_vec();
        bytes[38] = b'/';
        assert_eq!(
            SealedSecret::from_bytes(&bytes).unwrap_err(),
            EnvelopeError::Field { field: "node" }
        );
        assert_eq!(
            "sealed:***".parse::<SealedSecret>().unwrap_err(),
            EnvelopeError::NotBase64
        );
        assert_eq!(
            "secret:abc".parse::<SealedSecret>().unwrap_err(),
            EnvelopeError::NotAnEnvelope
        );
    }

    #[test]
    fn envelope_ids_round_trip_as_hex() {
        let id = EnvelopeId::generate().unwrap();
        assert_eq!(id.to_string().parse::<EnvelopeId>().unwrap(), id);
        assert!(
            "ABCDEF00000000000000000000000000"
                .parse::<EnvelopeId>()
                .is_err()
        );
        assert!("00".parse::<EnvelopeId>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)
        ) {
            let _ = SealedSecret::from_bytes(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.push(FORMAT_VERSION);
            prefixed.extend_from_slice(&bytes);
            let _ = SealedSecret::from_bytes(&prefixed);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(sealed:)?[A-Za-z0-9_=+/-]{0,400}") {
            let _ = text.parse::<SealedSecret>();
        }

        #[test]
        fn parsing_an_edited_envelope_never_panics(
            edits in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 1..8),
            cut in 0usize..220,
        ) {
            let node = NodeId::new("node-a").unwrap();
            let handle = HandleId::parse_bare("AAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
            let aad = binding(&node, &handle).aad().unwrap();
            let good = SealedSecret::assemble(aad, &[9; KEY_LEN], &[1; 40]).unwrap();
            let mut bytes = good.into_bytes();
            for (at, byte) in edits {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            bytes.truncate(cut);
            let _ = SealedSecret::from_bytes(&bytes);
        }
    }
}
