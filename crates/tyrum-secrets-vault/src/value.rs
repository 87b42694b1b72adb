//! How a secret value is stored in a KV v2 secret's data.
//!
//! - UTF-8 text: `{"value": "<the text>"}`, which is what
//!   `bao kv put -mount=M PATH value=TEXT` writes;
//! - any other bytes: `{"value": "<standard base64, padded>", "encoding":
//!   "base64"}`, which `bao kv put -mount=M PATH encoding=base64
//!   value=$(base64 -w0 FILE)` writes.
//!
//! Other keys in the data are ignored, so an operator may add notes. A
//! secret without `value`, or with an `encoding` other than `base64` (or
//! `text`), is [`VaultError::Corrupt`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tyrum_secrets_core::{ExposeSecret, SecretBytes};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::wire::WipedStr;

/// The data of a KV secret holding a value.
#[derive(Deserialize)]
pub(crate) struct StoredValue<'a> {
    #[serde(borrow, default)]
    value: Option<WipedStr<'a>>,
    #[serde(borrow, default)]
    encoding: Option<WipedStr<'a>>,
}

impl StoredValue<'_> {
    /// The value's bytes. `path` names the secret in errors.
    pub(crate) fn decode(&self, path: &str) -> Result<SecretBytes, VaultError> {
        let corrupt = |reason: &str| VaultError::Corrupt {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(value) = &self.value else {
            return Err(corrupt(
                "its data has no `value` key; write it as `bao kv put -mount=MOUNT PATH value=...`",
            ));
        };
        match self.encoding.as_ref().map(WipedStr::as_str) {
            None | Some("text") => Ok(SecretBytes::from(value.as_str().as_bytes().to_vec())),
            Some("base64") => {
                let mut bytes = Zeroizing::new(Vec::with_capacity(value.as_str().len()));
                STANDARD
                    .decode_vec(value.as_str().trim(), &mut bytes)
                    .map_err(|_| corrupt("`encoding` is base64 but `value` is not valid base64"))?;
                Ok(SecretBytes::from(bytes.to_vec()))
            }
            Some(_) => Err(corrupt(
                "its `encoding` is neither `base64` nor `text`; rewrite it with one of them",
            )),
        }
    }
}

#[derive(Serialize)]
struct WriteBody<'a> {
    options: WriteOptions,
    data: Data<'a>,
}

#[derive(Serialize)]
struct WriteOptions {
    cas: u64,
}

#[derive(Serialize)]
struct Data<'a> {
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
}

/// The body of a KV v2 write of `value` with check-and-set `cas` (0: the
/// secret must not exist yet), in memory that is wiped on drop.
pub(crate) fn write_body(value: &SecretBytes, cas: u64) -> Zeroizing<Vec<u8>> {
    let bytes = value.expose_secret();
    let options = WriteOptions { cas };
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            // JSON escaping grows a byte to at most six (`\u0000`).
            let mut body = Zeroizing::new(Vec::with_capacity(text.len() * 6 + 96));
            let data = Data {
                value: text,
                encoding: None,
            };
            write_json(&mut body, &WriteBody { options, data });
            body
        }
        Err(_) => {
            let mut encoded = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
            STANDARD.encode_string(bytes, &mut encoded);
            let mut body = Zeroizing::new(Vec::with_capacity(encoded.len() + 128));
            let data = Data {
                value: &encoded,
                encoding: Some("base64"),
            };
            write_json(&mut body, &WriteBody { options, data });
            body
        }
    }
}

fn write_json(out: &mut Vec<u8>, body: &WriteBody<'_>) {
    // Serializing plain strings and integers into a Vec cannot fail, and
    // the capacity reserved above means the Vec never reallocates (which
    // would leave an unwiped copy behind).
    let _ = serde_json::to_writer(out, body);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn round_trip(bytes: &[u8]) -> Vec<u8> {
        let body = write_body(&SecretBytes::from(bytes.to_vec()), 3);
        #[derive(Deserialize)]
        struct Sent<'a> {
            #[serde(borrow)]
            data: StoredValue<'a>,
            options: serde_json::Value,
        }
        let sent: Sent<'_> = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent.options, serde_json::json!({"cas": 3}));
        sent.data.decode("p").unwrap().expose_secret().to_vec()
    }

    #[test]
    fn any_bytes_round_trip() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for value in [
            &b""[..],
            b"sk-plain-text",
            "pässwörd-🔑\u{0}\"\\\n".as_bytes(),
            &all,
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(round_trip(value), value);
        }
    }

    #[test]
    fn text_is_stored_as_text_and_binary_as_base64() {
        let text = write_body(&SecretBytes::from(b"sk-abc".to_vec()), 0);
        assert_eq!(
            &text[..],
            br#"{"options":{"cas":0},"data":{"value":"sk-abc"}}"#
        );
        let binary = write_body(&SecretBytes::from(vec![0xff, 0x00]), 0);
        assert_eq!(
            &binary[..],
            br#"{"options":{"cas":0},"data":{"value":"/wA=","encoding":"base64"}}"#
        );
    }

    #[test]
    fn what_an_operator_writes_with_bao_kv_put_reads_back() {
        let parse = |json: &'static str| -> Result<Vec<u8>, VaultError> {
            let stored: StoredValue<'_> = serde_json::from_str(json).unwrap();
            stored
                .decode("secret/x")
                .map(|v| v.expose_secret().to_vec())
        };
        assert_eq!(
            parse(r#"{"value":"sk-live","note":"rotated by ops"}"#).unwrap(),
            b"sk-live"
        );
        assert_eq!(
            parse(r#"{"value":"/wA=","encoding":"base64"}"#).unwrap(),
            [0xff, 0]
        );
        for bad in [
            r#"{"api_key":"sk-live-CANARY"}"#,
            r#"{"value":"sk-live-CANARY","encoding":"rot13"}"#,
            r#"{"value":"sk-live-CANARY!","encoding":"base64"}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, VaultError::Corrupt { .. }), "{err}");
            assert!(!err.to_string().contains("CANARY"), "{err}");
        }
    }
}
