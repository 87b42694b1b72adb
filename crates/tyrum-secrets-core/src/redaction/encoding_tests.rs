//! The encodings the redactor matches: each on its own, as a real encoder
//! writes it, and each one that can be turned off.

use super::tests::{placeholder, redactor_with};

#[test]
fn python_ascii_json_form_of_a_value_with_del_is_redacted() {
    // `json.dumps("pass\x7fword-1234\u00e9\x01\x1b")` in Python, whose
    // ASCII-only output escapes everything outside space..tilde, DEL too.
    let redactor = redactor_with(&[(1, "pass\u{7f}word-1234\u{e9}\u{1}\u{1b}")]);
    let dumped = r#"{"token": "pass\u007fword-1234\u00e9\u0001\u001b"}"#;
    assert_eq!(
        redactor.redact_str(dumped).as_str(),
        format!(r#"{{"token": "{}"}}"#, placeholder(1))
    );
}
