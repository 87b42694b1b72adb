//! A paired node's identity: its id, its X25519 key pair (the private key
//! kept in a [`SecretProvider`]) and the pairing record the gateway holds.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tyrum_secrets_core::{
    ExposeSecret as _, Locator, ProviderError, SecretBytes, SecretProvider, Version,
    VersionSelector,
};

use crate::suite::{self, KEY_LEN, PrivateKey, SystemRandom};

/// Longest node id, in bytes.
pub const NODE_ID_MAX_LEN: usize = 64;

/// The id of a paired node: 1 to 64 characters of `[A-Za-z0-9._-]`.
///
/// It is bound into every envelope sealed for the node and named in the
/// audit record of the resolve behind it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Checks and wraps a node id.
    ///
    /// # Errors
    /// [`NodeIdError`] when it is empty, longer than 64 bytes, or holds a
    /// character outside `[A-Za-z0-9._-]`.
    pub fn new(id: impl Into<String>) -> Result<Self, NodeIdError> {
        let id = id.into();
        check_node_id(id.as_bytes())?;
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn check_node_id(id: &[u8]) -> Result<(), NodeIdError> {
    if id.is_empty() || id.len() > NODE_ID_MAX_LEN {
        return Err(NodeIdError::Length { len: id.len() });
    }
    if let Some(position) = id
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || b"._-".contains(b)))
    {
        return Err(NodeIdError::InvalidCharacter { position });
    }
    Ok(())
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl TryFrom<String> for NodeId {
    type Error = NodeIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(text)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> Self {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// A node id is not valid. Never repeats the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeIdError {
    /// Empty or too long.
    #[error("a node id is 1 to {NODE_ID_MAX_LEN} bytes; this one is {len}")]
    Length {
        /// Its length.
        len: usize,
    },
    /// A character outside the alphabet.
    #[error("a node id holds only letters, digits and . _ -; byte {position} is none of them")]
    InvalidCharacter {
        /// Byte offset of the character.
        position: usize,
    },
}

/// A node's X25519 public key: what the gateway seals to. Not a secret.
///
/// Text and serde form: 43 characters of URL-safe base64 without padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodePublicKey([u8; KEY_LEN]);

impl NodePublicKey {
    /// A public key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Display for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePublicKey({self})")
    }
}

impl FromStr for NodePublicKey {
    type Err = PublicKeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 43 {
            return Err(PublicKeyParseError);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| PublicKeyParseError)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| PublicKeyParseError)?;
        Ok(Self(bytes))
    }
}

impl Serialize for NodePublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodePublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A public key text is not 43 characters of URL-safe base64 (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a node public key is 43 characters of URL-safe base64 without padding (32 bytes)")]
pub struct PublicKeyParseError;

/// What the gateway keeps about a paired node: its id and public key. No
/// secret; store it anywhere (the gateway's state store, a config file).
///
/// ```
/// # use tyrum_secrets_seal::PairingRecord;
/// let json = r#"{"node":"build-7","public_key":"QxDul9iMwfCIpVdsd6sM9cOseX89lROcbIS1QpxZZio"}"#;
/// let record: PairingRecord = serde_json::from_str(json)?;
/// assert_eq!(record.node().as_str(), "build-7");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingRecord {
    node: NodeId,
    public_key: NodePublicKey,
}

impl PairingRecord {
    /// A record for `node` with `public_key`. Take the key from the node
    /// over a channel that authenticates it (an operator comparing it, an
    /// enrolment token): whoever supplies it can read what is sealed to it.
    pub fn new(node: NodeId, public_key: NodePublicKey) -> Self {
        Self { node, public_key }
    }

    /// The node.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Its public key.
    pub fn public_key(&self) -> &NodePublicKey {
        &self.public_key
    }
}

/// A node's identity: its id and X25519 key pair. Lives on the node only.
///
/// The private key is kept in a [`SecretProvider`] (the OS keychain, the
/// encrypted file store) as its 32 raw bytes, and held in memory in a type
/// that is wiped on drop. No `Clone`; `Debug` shows the id and public key.
pub struct NodeIdentity {
    node: NodeId,
    private_key: PrivateKey,
    public_key: NodePublicKey,
}

impl NodeIdentity {
    /// A fresh identity for `node`, not stored anywhere yet.
    ///
    /// # Errors
    /// [`IdentityError::Randomness`] when the operating system cannot
    /// supply randomness.
    pub fn generate(node: NodeId) -> Result<Self, IdentityError> {
        let private_key = suite::generate_key_pair(&mut SystemRandom)
            .map_err(|suite::NoRandomness| IdentityError::Randomness)?;
        Ok(Self::from_key(node, private_key))
    }

    /// A fresh identity for `node`, its private key written to `provider`
    /// at `locator`.
    ///
    /// # Errors
    /// [`IdentityError::AlreadyExists`] when `locator` already holds a
    /// value (load it instead); [`IdentityError::Provider`] when the
    /// provider fails; [`IdentityError::Randomness`].
    pub fn create(
        node: NodeId,
        provider: &dyn SecretProvider,
        locator: &Locator,
    ) -> Result<Self, IdentityError> {
        match provider.read(locator, VersionSelector::Latest) {
            Ok(_) => return Err(IdentityError::AlreadyExists),
            Err(ProviderError::NotFound { .. }) => {}
            Err(source) => return Err(IdentityError::provider("reading", source)),
        }
        let identity = Self::generate(node)?;
        identity.store(provider, locator)?;
        Ok(identity)
    }

    /// The identity of `node` whose private key `provider` holds at
    /// `locator` (its latest version).
    ///
    /// # Errors
    /// [`IdentityError::Provider`] when the provider fails or holds nothing
    /// there; [`IdentityError::InvalidKey`] when the value is not 32 bytes.
    pub fn load(
        node: NodeId,
        provider: &dyn SecretProvider,
        locator: &Locator,
    ) -> Result<Self, IdentityError> {
        let stored = provider
            .read(locator, VersionSelector::Latest)
            .map_err(|source| IdentityError::provider("reading", source))?;
        Self::from_private_key(node, &stored.value)
    }

    /// [`load`](Self::load), or [`create`](Self::create) when `locator`
    /// holds nothing yet.
    ///
    /// # Errors
    /// As [`load`](Self::load) and [`create`](Self::create).
    pub fn load_or_create(
        node: NodeId,
        provider: &dyn SecretProvider,
        locator: &Locator,
    ) -> Result<Self, IdentityError> {
        match provider.read(locator, VersionSelector::Latest) {
            Ok(stored) => Self::from_private_key(node, &stored.value),
            Err(ProviderError::NotFound { .. }) => Self::create(node, provider, locator),
            Err(source) => Err(IdentityError::provider("reading", source)),
        }
    }

    /// The identity of `node` with the private key `bytes` (32 raw bytes),
    /// obtained elsewhere.
    ///
    /// # Errors
    /// [`IdentityError::InvalidKey`] when `bytes` is not 32 bytes long.
    pub fn from_private_key(node: NodeId, bytes: &SecretBytes) -> Result<Self, IdentityError> {
        let bytes = bytes.expose_secret();
        if bytes.len() != KEY_LEN {
            return Err(IdentityError::InvalidKey);
        }
        let private_key = suite::private_key(bytes).map_err(|_| IdentityError::InvalidKey)?;
        Ok(Self::from_key(node, private_key))
    }

    fn from_key(node: NodeId, private_key: PrivateKey) -> Self {
        let public_key = NodePublicKey(suite::public_key_of(&private_key));
        Self {
            node,
            private_key,
            public_key,
        }
    }

    /// Writes the private key to `provider` at `locator`, as a new version.
    ///
    /// # Errors
    /// [`IdentityError::Provider`] when the provider fails.
    pub fn store(
        &self,
        provider: &dyn SecretProvider,
        locator: &Locator,
    ) -> Result<Version, IdentityError> {
        let bytes = suite::private_key_bytes(&self.private_key);
        provider
            .write(locator, &SecretBytes::from(bytes.to_vec()))
            .map_err(|source| IdentityError::provider("writing", source))
    }

    /// The node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The node's public key.
    pub fn public_key(&self) -> &NodePublicKey {
        &self.public_key
    }

    /// The record the gateway keeps to seal for this node.
    pub fn pairing_record(&self) -> PairingRecord {
        PairingRecord::new(self.node.clone(), self.public_key)
    }

    pub(crate) fn private_key(&self) -> &PrivateKey {
        &self.private_key
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node", &self.node)
            .field("public_key", &self.public_key)
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

/// A node identity could not be made, stored or loaded. Never carries key
/// bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The secret provider failed.
    #[error("{operation} the node's private key failed: {source}")]
    Provider {
        /// `reading` or `writing`.
        operation: &'static str,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
    /// The stored value is not an X25519 private key.
    #[error(
        "the stored node private key is not 32 bytes; it was not written by NodeIdentity::store, \
         or was damaged: create a new identity and pair the node again"
    )]
    InvalidKey,
    /// The locator already holds a value.
    #[error("a node private key is already stored there; load it instead of creating another")]
    AlreadyExists,
    /// The operating system could not supply randomness.
    #[error("the operating system could not supply randomness for a node key")]
    Randomness,
}

impl IdentityError {
    fn provider(operation: &'static str, source: ProviderError) -> Self {
        IdentityError::Provider { operation, source }
    }
}
