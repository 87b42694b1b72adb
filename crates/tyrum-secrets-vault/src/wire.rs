//! The JSON the server sends and receives, parsed without leaving copies of
//! secrets behind: strings that may hold a value or a token are borrowed
//! from the (wiped) response body, and wiped themselves when serde had to
//! unescape them into an owned string.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroize;

/// A string from a response that may be secret. Borrowed from the body
/// when it has no escapes; otherwise owned and wiped on drop. No `Debug`
/// of its content.
pub(crate) struct WipedStr<'a>(Cow<'a, str>);

impl WipedStr<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for WipedStr<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(owned) = &mut self.0 {
            owned.zeroize();
        }
    }
}

impl fmt::Debug for WipedStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WipedStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WipedStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WipedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WipedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(WipedStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// `{"auth": {...}}` of a login or a token renewal.
#[derive(Deserialize)]
pub(crate) struct AuthResponse<'a> {
    #[serde(borrow)]
    pub(crate) auth: Option<AuthBlock<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct AuthBlock<'a> {
    #[serde(borrow, default)]
    pub(crate) client_token: Option<WipedStr<'a>>,
    #[serde(default)]
    pub(crate) lease_duration: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
}

/// `{"data": {"ttl": ..., "renewable": ...}}` of `auth/token/lookup-self`
/// (its other fields, the token id among them, are skipped).
#[derive(Deserialize)]
pub(crate) struct LookupResponse {
    pub(crate) data: LookupData,
}

#[derive(Deserialize)]
pub(crate) struct LookupData {
    #[serde(default)]
    pub(crate) ttl: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
}

/// `{"data": {"data": {...}, "metadata": {...}}}` of a KV v2 read, with
/// `T` the stored data's shape. On a 404 for a deleted or destroyed
/// version, `data.data` is null and the metadata is still there.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct ReadResponse<T> {
    pub(crate) data: ReadData<T>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct ReadData<T> {
    pub(crate) data: Option<T>,
    pub(crate) metadata: Option<VersionMetadata>,
}

/// The metadata of one version, in a read or write response.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionMetadata {
    pub(crate) version: u64,
}

/// `{"data": {"current_version": ..., "versions": {...}}}` of a KV v2
/// metadata read.
#[derive(Debug, Deserialize)]
pub(crate) struct MetadataResponse {
    pub(crate) data: Metadata,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) current_version: u64,
    #[serde(default)]
    pub(crate) versions: BTreeMap<String, VersionState>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VersionState {
    #[serde(default)]
    pub(crate) deletion_time: String,
    #[serde(default)]
    pub(crate) destroyed: bool,
}

/// `{"data": {"keys": [...]}}` of a LIST.
#[derive(Debug, Deserialize)]
pub(crate) struct ListResponse {
    pub(crate) data: ListData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListData {
    #[serde(default)]
    pub(crate) keys: Vec<String>,
}

/// `{"data": {"version": ...}}` of a KV v2 write.
#[derive(Debug, Deserialize)]
pub(crate) struct WriteResponse {
    pub(crate) data: VersionMetadata,
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time as the server
/// writes them (`2026-11-29T06:54:28.670645503Z`); `None` if it is not one.
pub(crate) fn rfc3339_unix_secs(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = text.get(19..)?;
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    let offset = match rest {
        "Z" | "z" => 0,
        tz if tz.len() == 6 => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 3600
                + tz.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn server_times_parse() {
        assert_eq!(rfc3339_unix_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_unix_secs("2026-11-29T06:54:28.670645503Z"),
            Some(1_795_935_268)
        );
        assert_eq!(
            rfc3339_unix_secs("2026-11-29T07:54:28+01:00"),
            Some(1_795_935_268)
        );
        assert_eq!(rfc3339_unix_secs(""), None);
        assert_eq!(rfc3339_unix_secs("yesterday"), None);
    }

    #[test]
    fn secret_strings_borrow_or_are_wiped_and_never_debug() {
        let body = br#"{"auth":{"client_token":"s.tok\"en","lease_duration":60,"renewable":true}}"#;
        let parsed: AuthResponse<'_> = serde_json::from_slice(body).unwrap();
        let auth = parsed.auth.unwrap();
        let token = auth.client_token.unwrap();
        assert_eq!(token.as_str(), "s.tok\"en");
        assert_eq!(format!("{token:?}"), "[REDACTED]");
        assert_eq!(auth.lease_duration, 60);
    }
}
