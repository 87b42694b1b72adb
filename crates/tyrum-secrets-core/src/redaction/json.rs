//! Redaction of JSON trees: values and keys, at every depth.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::matcher::Matcher;

/// A redacted copy of `value`; see [`Redactor::redact_json`](super::Redactor::redact_json).
pub(super) fn redact(matcher: &Matcher, value: &Value) -> Value {
    match value {
        Value::String(text) => match redact_text(matcher, text) {
            Some(redacted) => Value::String(redacted),
            None => value.clone(),
        },
        Value::Number(number) => {
            // The number's text may be a secret (a card number); the copy is
            // wiped after the check.
            let text = Zeroizing::new(number.to_string());
            match redact_text(matcher, &text) {
                Some(redacted) => Value::String(redacted),
                None => value.clone(),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(matcher, v)).collect()),
        Value::Object(object) => Value::Object(redact_object(matcher, object)),
        Value::Null | Value::Bool(_) => value.clone(),
    }
}

/// Redacts keys and values. Keys that did not change are inserted first and
/// keep their names; a redacted key that then collides with a key already
/// present gets ` #2`, ` #3`... appended.
fn redact_object(matcher: &Matcher, object: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut renamed = Vec::new();
    for (key, value) in object {
        let value = redact(matcher, value);
        match redact_text(matcher, key) {
            None => {
                out.insert(key.clone(), value);
            }
            Some(key) => renamed.push((key, value)),
        }
    }
    for (key, value) in renamed {
        let mut candidate = key.clone();
        let mut n = 2u64;
        while out.contains_key(&candidate) {
            candidate = format!("{key} #{n}");
            n += 1;
        }
        out.insert(candidate, value);
    }
    out
}

fn redact_text(matcher: &Matcher, text: &str) -> Option<String> {
    matcher.replace_str(text)
}
