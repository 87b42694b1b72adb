//! Tool arguments: finding `secret:<id>` strings in a JSON tree and
//! substituting their values into a [`SecretJson`].

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use zeroize::Zeroize;

use super::{InjectError, contains_handle};
use crate::handle::HANDLE_PREFIX;
use crate::{ExposeSecret, HandleId, SecretString};

/// Collects every handle string in `value`, refusing malformed handles and
/// handles where they would not be substituted.
pub(super) fn collect_handles(
    value: &Value,
    path: &mut String,
    ids: &mut Vec<HandleId>,
) -> Result<(), InjectError> {
    match value {
        Value::String(text) if text.starts_with(HANDLE_PREFIX) => {
            let id = text
                .parse::<HandleId>()
                .map_err(|source| InjectError::MalformedHandle {
                    at: if path.is_empty() {
                        "/".to_owned()
                    } else {
                        path.clone()
                    },
                    source,
                })?;
            ids.push(id);
        }
        Value::String(text) if contains_handle(text) => {
            return Err(InjectError::EmbeddedHandle {
                at: if path.is_empty() {
                    "/".to_owned()
                } else {
                    path.clone()
                },
            });
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&index.to_string());
                collect_handles(item, path, ids)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('/');
                // JSON Pointer escaping (RFC 6901).
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                // Keys are never substituted, so a key that is or holds a
                // handle would pass it on as a literal: refuse it instead.
                if key.starts_with(HANDLE_PREFIX) || contains_handle(key) {
                    return Err(InjectError::EmbeddedHandle { at: path.clone() });
                }
                collect_handles(item, path, ids)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn substitute(value: &Value, texts: &BTreeMap<HandleId, SecretString>) -> Value {
    match value {
        Value::String(text) if text.starts_with(HANDLE_PREFIX) => {
            match text.parse::<HandleId>().ok().and_then(|id| texts.get(&id)) {
                Some(secret) => Value::String(secret.expose_secret().to_owned()),
                // Unreachable: every handle string parsed and resolved.
                None => Value::Null,
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, texts)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, texts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Tool arguments with secret values substituted in. No `Debug` that shows
/// them, no `Serialize`, no `Clone`; every string is wiped on drop. The only
/// way in is [`expose_secret`](Self::expose_secret).
pub struct SecretJson(Value);

impl SecretJson {
    pub(super) fn new(value: Value) -> Self {
        Self(value)
    }

    /// The substituted arguments. Hand them to the tool; never log or store
    /// them.
    pub fn expose_secret(&self) -> &Value {
        &self.0
    }

    /// The arguments serialized as JSON text, in a buffer that is wiped as
    /// it grows and when dropped.
    pub fn to_secret_string(&self) -> SecretString {
        let mut writer = WipingWriter(Vec::new());
        // Writing a `Value` into memory cannot fail.
        let _ = serde_json::to_writer(&mut writer, &self.0);
        // Copy into an exact-capacity string so that turning it into a boxed
        // `str` does not reallocate and leave an unwiped copy behind; the
        // writer wipes its own buffer when dropped.
        let text = std::str::from_utf8(&writer.0).unwrap_or_default();
        let mut exact = String::with_capacity(text.len());
        exact.push_str(text);
        SecretString::from(exact)
    }
}

impl fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretJson([REDACTED])")
    }
}

impl Drop for SecretJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A `Vec` writer that wipes the old buffer whenever it grows.
struct WipingWriter(Vec<u8>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let needed = self.0.len() + data.len();
        if needed > self.0.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.0.capacity() * 2).max(64));
            grown.extend_from_slice(&self.0);
            self.0.zeroize();
            self.0 = grown;
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for WipingWriter {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiping_writer_keeps_all_bytes() {
        use std::io::Write as _;
        let mut w = WipingWriter(Vec::new());
        for chunk in 0..100u8 {
            w.write_all(&[chunk; 7]).unwrap();
        }
        assert_eq!(w.0.len(), 700);
        assert_eq!(w.0[699], 99);
    }
}
