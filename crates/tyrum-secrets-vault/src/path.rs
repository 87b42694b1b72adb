//! Where things live in a KV v2 engine: the mount, a prefix under it, and
//! the one-to-one mapping from locators to KV paths.
//!
//! A locator `a/b/c` is the KV path `<prefix>/a/b/c` under the mount, read
//! at `<mount>/data/<prefix>/a/b/c`. Locators (and mounts and prefixes)
//! whose segments are empty, `.` or `..`, or hold control characters are
//! refused, so no locator names a path another locator also names and none
//! escapes the prefix. Each segment is percent-encoded in the URL, so `?`,
//! `#`, `%` and spaces are just characters of the name.

use std::fmt;

use tyrum_secrets_core::Locator;

use crate::VaultError;

/// A KV version 2 mount and the prefix under it that a provider or catalog
/// store keeps its paths in.
///
/// ```
/// use tyrum_secrets_vault::KvMount;
///
/// let values = KvMount::new("secret")?.with_prefix("tyrum/values")?;
/// assert_eq!(values.mount(), "secret");
/// assert_eq!(values.prefix(), Some("tyrum/values"));
/// assert!(KvMount::new("secret")?.with_prefix("../other").is_err());
/// # Ok::<(), tyrum_secrets_vault::VaultError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KvMount {
    mount: String,
    prefix: Option<String>,
}

impl fmt::Debug for KvMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KvMount({self})")
    }
}

impl fmt::Display for KvMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(prefix) => write!(f, "{}/{prefix}", self.mount),
            None => f.write_str(&self.mount),
        }
    }
}

/// The KV v2 endpoints under a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Data,
    Metadata,
    Delete,
    Destroy,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Data => "data",
            Endpoint::Metadata => "metadata",
            Endpoint::Delete => "delete",
            Endpoint::Destroy => "destroy",
        }
    }
}

impl KvMount {
    /// The KV v2 engine mounted at `mount` (`secret` on a dev server). A
    /// trailing `/` is ignored.
    ///
    /// # Errors
    /// [`VaultError::InvalidPath`] for an empty mount or one with empty,
    /// `.` or `..` segments or control characters.
    pub fn new(mount: &str) -> Result<Self, VaultError> {
        let mount = mount.strip_suffix('/').unwrap_or(mount);
        check_path(mount, "the KV mount")?;
        Ok(Self {
            mount: mount.to_owned(),
            prefix: None,
        })
    }

    /// Keeps every path under `prefix` inside the mount. A trailing `/` is
    /// ignored.
    ///
    /// # Errors
    /// [`VaultError::InvalidPath`] as for [`new`](Self::new).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, VaultError> {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        check_path(prefix, "the KV prefix")?;
        self.prefix = Some(prefix.to_owned());
        Ok(self)
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The prefix inside the mount, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The KV path (inside the mount, prefix included) of `relative`, a
    /// checked relative path such as a locator.
    pub(crate) fn kv_path(&self, relative: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{relative}"),
            None => relative.to_owned(),
        }
    }

    /// The API path (after `/v1/`) of `relative` at `endpoint`,
    /// percent-encoded.
    pub(crate) fn api_path(&self, endpoint: Endpoint, relative: &str) -> String {
        let mut path = encode_path(&self.mount);
        path.push('/');
        path.push_str(endpoint.as_str());
        if let Some(prefix) = &self.prefix {
            path.push('/');
            path.push_str(&encode_path(prefix));
        }
        if !relative.is_empty() {
            path.push('/');
            path.push_str(&encode_path(relative));
        }
        path
    }

    /// The API path of the folder `relative` (empty: the prefix itself) for
    /// a metadata LIST, ending in `/`.
    pub(crate) fn list_path(&self, relative: &str) -> String {
        let mut path = self.api_path(Endpoint::Metadata, relative);
        path.push('/');
        path
    }
}

/// Checks that `locator` maps to a KV path: non-empty segments, none `.`
/// or `..`, no control characters (the last is already a [`Locator`] rule).
pub(crate) fn locator_path(locator: &Locator) -> Result<&str, VaultError> {
    check_path(locator.as_str(), &format!("locator {locator}"))?;
    Ok(locator.as_str())
}

fn check_path(path: &str, what: &str) -> Result<(), VaultError> {
    let refuse = |reason| {
        Err(VaultError::InvalidPath {
            what: what.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.chars().any(char::is_control) {
        return refuse("it holds a control character");
    }
    for segment in path.split('/') {
        match segment {
            "" => return refuse("it has an empty segment (a leading, trailing or double `/`)"),
            "." | ".." => return refuse("it has a `.` or `..` segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Percent-encodes every byte of each `/`-separated segment except
/// RFC 3986's unreserved characters.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn locator(text: &str) -> Locator {
        Locator::new(text).unwrap()
    }

    #[test]
    fn locators_map_under_the_prefix_with_segments_encoded() {
        let mount = KvMount::new("secret/")
            .unwrap()
            .with_prefix("tyrum/values")
            .unwrap();
        let odd = locator("team a/key?x=1#frag%2F/é");
        let path = locator_path(&odd).unwrap();
        assert_eq!(
            mount.api_path(Endpoint::Data, path),
            "secret/data/tyrum/values/team%20a/key%3Fx%3D1%23frag%252F/%C3%A9"
        );
        assert_eq!(mount.kv_path(path), "tyrum/values/team a/key?x=1#frag%2F/é");
        assert_eq!(
            mount.list_path(""),
            "secret/metadata/tyrum/values/",
            "the prefix itself is listed"
        );
    }

    #[test]
    fn dot_segments_empty_segments_and_control_characters_are_refused() {
        for bad in ["..", "a/../b", "a/./b", "/a", "a/", "a//b", "."] {
            assert!(
                matches!(
                    locator_path(&locator(bad)),
                    Err(VaultError::InvalidPath { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        assert!(KvMount::new("").is_err());
        assert!(KvMount::new("a\u{7f}b").is_err());
        assert!(KvMount::new("kv").unwrap().with_prefix("x/../y").is_err());
        assert!(
            locator_path(&locator("...")).is_ok(),
            "only `.` and `..` are special"
        );
    }

    #[test]
    fn distinct_locators_give_distinct_urls() {
        let mount = KvMount::new("secret").unwrap();
        let urls: std::collections::HashSet<String> = ["a b", "a%20b", "a+b", "a%2Bb", "a/b"]
            .iter()
            .map(|l| mount.api_path(Endpoint::Data, locator_path(&locator(l)).unwrap()))
            .collect();
        assert_eq!(urls.len(), 5);
    }
}
