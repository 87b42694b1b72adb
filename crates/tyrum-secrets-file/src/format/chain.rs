//! The format-2 chain (FORMAT.md): a running keyed hash of the log, bound
//! into each record's associated data, and the anchor key.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tyrum_secrets_core::anchor::{AnchorKey, AnchorSeal, CHAIN_LEN};
use zeroize::Zeroizing;

use super::STORE_ID_LEN;
use crate::key::{KEY_LEN, StoreKey};

/// A chain value: the keyed hash of the header and every frame so far.
pub(crate) type Link = [u8; CHAIN_LEN];

const CHAIN_KEY_LABEL: &[u8] = b"tyrum-secrets-file v2 chain key";
const ANCHOR_KEY_LABEL: &[u8] = b"tyrum-secrets-file v2 anchor key";
const GENESIS_DOMAIN: &[u8] = b"tyrum-secrets-file v2 genesis\n";
const LINK_DOMAIN: &[u8] = b"tyrum-secrets-file v2 link\n";

/// The keys a format-2 store derives from its data key: one for the chain,
/// one for its anchor. Wiped on drop.
pub(crate) struct ChainKeys {
    chain: Zeroizing<[u8; KEY_LEN]>,
    anchor: Zeroizing<[u8; KEY_LEN]>,
}

impl ChainKeys {
    /// `HMAC-SHA256(data key, label)` for each label.
    pub(crate) fn derive(data_key: &StoreKey) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = keyed(data_key.expose());
            mac.update(label);
            Zeroizing::new(<[u8; KEY_LEN]>::from(mac.finalize().into_bytes()))
        };
        Self {
            chain: derive(CHAIN_KEY_LABEL),
            anchor: derive(ANCHOR_KEY_LABEL),
        }
    }

    /// The chain value before the first record: a keyed hash of the whole
    /// header, which differs for every rewrite (its wrap nonce is fresh).
    pub(crate) fn genesis(&self, header: &[u8]) -> Link {
        let mut mac = keyed(&*self.chain);
        mac.update(GENESIS_DOMAIN);
        mac.update(header);
        mac.finalize().into_bytes().into()
    }

    /// The chain value after `frame`, given the one before it.
    pub(crate) fn link(&self, previous: &Link, frame: &[u8]) -> Link {
        let mut mac = keyed(&*self.chain);
        mac.update(LINK_DOMAIN);
        mac.update(previous);
        mac.update(frame);
        mac.finalize().into_bytes().into()
    }

    /// The seal of this store's anchor.
    pub(crate) fn anchor_seal(&self, store_id: &[u8; STORE_ID_LEN]) -> AnchorSeal {
        AnchorSeal::new(AnchorKey::from_bytes(*self.anchor), store_id.to_vec())
    }
}

#[allow(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; new_from_slice cannot fail"
)]
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_key_previous_value_and_frame() {
        let a = ChainKeys::derive(&StoreKey::from_bytes([1; KEY_LEN]));
        let b = ChainKeys::derive(&StoreKey::from_bytes([2; KEY_LEN]));
        let g = a.genesis(b"header");
        assert_ne!(g, b.genesis(b"header"));
        assert_ne!(g, a.genesis(b"headex"));
        let one = a.link(&g, b"frame");
        assert_ne!(one, a.link(&g, b"framf"));
        assert_ne!(one, a.link(&[0; CHAIN_LEN], b"frame"));
        assert_ne!(one, b.link(&g, b"frame"));
        assert_ne!(*a.chain, *a.anchor, "chain and anchor keys differ");
    }
}
