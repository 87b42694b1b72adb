//! Injection: handing resolved values to the execution context so callers
//! never hold a bare `String`.
//!
//! - [`Resolver::inject_env`] sets environment variables of a
//!   [`std::process::Command`] (the child's environment, never this
//!   process's);
//! - [`Resolver::substitute_json`] replaces every `secret:<id>` string in
//!   tool arguments, all or nothing, and returns a [`SecretJson`];
//! - [`Resolver::render_template`] renders `Bearer {{secret:<id>}}` into a
//!   [`SecretString`]; [`Resolver::render_header_value`] does the same for an
//!   HTTP header and refuses CR, LF and NUL (header injection).
//!
//! Each handle goes through [`Resolver::resolve`] — policy, approvals,
//! audit, redactor — once per call, however often it appears. Every handle
//! is resolved before anything is injected: if one fails, nothing is, and
//! the error names the handle, never a value.
//!
//! A string that starts with `secret:` is a handle. One that does not parse
//! is an error, never passed on as a literal; so is a handle inside a longer
//! string, as an object key, or in template text outside `{{ }}`
//! ([`InjectError::EmbeddedHandle`]), where it would not be substituted.
//!
//! Limits: std's `Debug` for `Command` prints the environment variables it
//! sets, so never log or format a `Command` after injecting into it (the
//! redactor catches it in logs that pass through it, because every value was
//! registered). `Command` keeps its own copy of environment values, which std
//! does not wipe, and a child's environment is readable by processes of the
//! same user (`/proc/<pid>/environ`). Prefer files or pipes for long-lived
//! children where that matters.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;

use serde_json::Value;
use zeroize::Zeroize;

use crate::handle::{HANDLE_ID_MIN_LEN, HANDLE_PREFIX};
use crate::resolver::{ResolveError, ResolveRequest, Resolver};
use crate::{
    ExposeSecret, HandleId, HandleParseError, SecretBytes, SecretString, string_from_bytes,
};

impl Resolver {
    /// Resolves each handle and sets it as an environment variable of
    /// `command`. Nothing is set unless every handle resolved and every
    /// value fits in an environment variable.
    ///
    /// Never format the `Command` with `{:?}` afterwards: std's `Debug`
    /// prints the variables it sets.
    ///
    /// # Errors
    /// [`InjectError::InvalidEnvName`] before anything is resolved;
    /// [`InjectError::Resolve`] naming the handle that failed;
    /// [`InjectError::ValueHasNul`] (or, off Unix, [`InjectError::NotUtf8`])
    /// for a value an environment cannot carry.
    pub fn inject_env<'a>(
        &self,
        command: &mut Command,
        vars: impl IntoIterator<Item = (&'a str, &'a HandleId)>,
        request: &ResolveRequest,
    ) -> Result<(), InjectError> {
        let vars: Vec<(&str, &HandleId)> = vars.into_iter().collect();
        for (name, _) in &vars {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(InjectError::InvalidEnvName {
                    name: (*name).to_owned(),
                });
            }
        }
        let values = self.resolve_all(vars.iter().map(|(_, id)| *id), request)?;
        for (_, id) in &vars {
            let value = lookup(&values, id)?;
            if value.expose_secret().contains(&0) {
                return Err(InjectError::ValueHasNul { id: (*id).clone() });
            }
            #[cfg(not(unix))]
            if std::str::from_utf8(value.expose_secret()).is_err() {
                return Err(InjectError::NotUtf8 { id: (*id).clone() });
            }
        }
        for (name, id) in &vars {
            let value = lookup(&values, id)?;
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt as _;
                command.env(name, std::ffi::OsStr::from_bytes(value.expose_secret()));
            }
            #[cfg(not(unix))]
            {
                let text = std::str::from_utf8(value.expose_secret())
                    .map_err(|_| InjectError::NotUtf8 { id: (*id).clone() })?;
                command.env(name, text);
            }
        }
        Ok(())
    }

    /// Returns a copy of `arguments` in which every string of the form
    /// `secret:<id>` is replaced by the value of that handle. Object keys
    /// are never substituted.
    ///
    /// # Errors
    /// [`InjectError::MalformedHandle`] (naming the JSON path) for a string
    /// that starts with `secret:` but does not parse;
    /// [`InjectError::EmbeddedHandle`] for a handle inside a longer string
    /// or in an object key;
    /// [`InjectError::Resolve`] naming the handle that failed;
    /// [`InjectError::NotUtf8`] for a value that is not text.
    pub fn substitute_json(
        &self,
        arguments: &Value,
        request: &ResolveRequest,
    ) -> Result<SecretJson, InjectError> {
        let mut ids = Vec::new();
        collect_handles(arguments, &mut String::new(), &mut ids)?;
        let values = self.resolve_all(ids.iter(), request)?;
        let mut texts = BTreeMap::new();
        for (id, value) in &values {
            let text =
                string_from_bytes(value).ok_or_else(|| InjectError::NotUtf8 { id: id.clone() })?;
            texts.insert(id.clone(), text);
        }
        Ok(SecretJson(substitute(arguments, &texts)))
    }

    /// Renders `template`, replacing each `{{secret:<id>}}` (spaces inside
    /// the braces allowed) with the handle's value. Other `{{…}}` text is
    /// kept as written.
    ///
    /// # Errors
    /// [`InjectError::MalformedHandle`],
    /// [`InjectError::UnterminatedPlaceholder`] or, for a handle outside a
    /// placeholder, [`InjectError::EmbeddedHandle`] (naming the byte offset);
    /// [`InjectError::Resolve`] naming the handle that failed;
    /// [`InjectError::NotUtf8`] for a value that is not text.
    pub fn render_template(
        &self,
        template: &str,
        request: &ResolveRequest,
    ) -> Result<SecretString, InjectError> {
        self.render(template, request, false)
    }

    /// [`render_template`](Self::render_template) for an HTTP header value:
    /// also refuses CR, LF and NUL, in the template and in every value, so a
    /// secret (or a template) cannot smuggle in another header or a request
    /// line, whatever the HTTP client does with line breaks.
    ///
    /// # Errors
    /// As [`render_template`](Self::render_template), plus
    /// [`InjectError::HeaderBreak`] naming the handle (or the template) that
    /// holds a CR, LF or NUL.
    pub fn render_header_value(
        &self,
        template: &str,
        request: &ResolveRequest,
    ) -> Result<SecretString, InjectError> {
        if template.bytes().any(is_header_break) {
            return Err(InjectError::HeaderBreak { id: None });
        }
        self.render(template, request, true)
    }

    fn render(
        &self,
        template: &str,
        request: &ResolveRequest,
        header: bool,
    ) -> Result<SecretString, InjectError> {
        let segments = parse_template(template)?;
        let values = self.resolve_all(
            segments.iter().filter_map(|s| match s {
                Segment::Handle(id) => Some(id),
                Segment::Literal(_) => None,
            }),
            request,
        )?;
        let mut len = 0;
        for segment in &segments {
            len += match segment {
                Segment::Literal(text) => text.len(),
                Segment::Handle(id) => {
                    let value = lookup(&values, id)?.expose_secret();
                    if std::str::from_utf8(value).is_err() {
                        return Err(InjectError::NotUtf8 { id: id.clone() });
                    }
                    if header && value.iter().copied().any(is_header_break) {
                        return Err(InjectError::HeaderBreak {
                            id: Some(id.clone()),
                        });
                    }
                    value.len()
                }
            };
        }
        // Exact capacity: no reallocation leaves an unwiped copy behind, and
        // `SecretString::from` turns it into a box without copying.
        let mut out = String::with_capacity(len);
        for segment in &segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Handle(id) => {
                    let value = lookup(&values, id)?.expose_secret();
                    // Checked to be UTF-8 above.
                    out.push_str(std::str::from_utf8(value).unwrap_or_default());
                }
            }
        }
        Ok(SecretString::from(out))
    }

    /// Resolves each distinct handle once, in order; stops at the first
    /// failure, dropping (and wiping) what was resolved.
    fn resolve_all<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a HandleId>,
        request: &ResolveRequest,
    ) -> Result<BTreeMap<HandleId, SecretBytes>, InjectError> {
        let mut values = BTreeMap::new();
        for id in ids {
            if values.contains_key(id) {
                continue;
            }
            let resolved = self
                .resolve(id, request)
                .map_err(|source| InjectError::Resolve {
                    id: id.clone(),
                    source: Box::new(source),
                })?;
            values.insert(id.clone(), resolved.into_value());
        }
        Ok(values)
    }
}

fn lookup<'a>(
    values: &'a BTreeMap<HandleId, SecretBytes>,
    id: &HandleId,
) -> Result<&'a SecretBytes, InjectError> {
    // Every id was resolved by `resolve_all`; the error only satisfies the type.
    values.get(id).ok_or_else(|| InjectError::Resolve {
        id: id.clone(),
        source: Box::new(ResolveError::UnknownHandle { id: id.clone() }),
    })
}

fn collect_handles(
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

/// Whether `text` holds `secret:` followed by at least as many id
/// characters as the shortest handle id: a handle that is not the whole
/// string, and so would not be substituted but passed on as text.
fn contains_handle(text: &str) -> bool {
    text.match_indices(HANDLE_PREFIX).any(|(at, prefix)| {
        text[at + prefix.len()..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count()
            >= HANDLE_ID_MIN_LEN
    })
}

fn substitute(value: &Value, texts: &BTreeMap<HandleId, SecretString>) -> Value {
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

enum Segment<'a> {
    Literal(&'a str),
    Handle(HandleId),
}

fn parse_template(template: &str) -> Result<Vec<Segment<'_>>, InjectError> {
    let mut segments = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        let inner_start = open + 2;
        let inner = rest[inner_start..].trim_start_matches(' ');
        if !inner.starts_with(HANDLE_PREFIX) {
            // Step over one `{` only, so that `{{{secret:<id>}}}` still finds
            // the placeholder that starts at the second brace.
            literal(&mut segments, &rest[..open + 1], offset)?;
            offset += open + 1;
            rest = &rest[open + 1..];
            continue;
        }
        let Some(close) = rest[inner_start..].find("}}") else {
            return Err(InjectError::UnterminatedPlaceholder {
                position: offset + open,
            });
        };
        let text = rest[inner_start..inner_start + close].trim_matches(' ');
        let id = text
            .parse::<HandleId>()
            .map_err(|source| InjectError::MalformedHandle {
                at: format!("byte {}", offset + open),
                source,
            })?;
        if open > 0 {
            literal(&mut segments, &rest[..open], offset)?;
        }
        segments.push(Segment::Handle(id));
        let end = inner_start + close + 2;
        offset += end;
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        literal(&mut segments, rest, offset)?;
    }
    Ok(segments)
}

/// Adds literal template text, refusing a handle written outside `{{ }}`:
/// it would be sent as the handle's text rather than its value.
fn literal<'a>(
    segments: &mut Vec<Segment<'a>>,
    text: &'a str,
    offset: usize,
) -> Result<(), InjectError> {
    if contains_handle(text) {
        return Err(InjectError::EmbeddedHandle {
            at: format!("byte {offset}"),
        });
    }
    segments.push(Segment::Literal(text));
    Ok(())
}

/// Tool arguments with secret values substituted in. No `Debug` that shows
/// them, no `Serialize`, no `Clone`; every string is wiped on drop. The only
/// way in is [`expose_secret`](Self::expose_secret).
pub struct SecretJson(Value);

impl SecretJson {
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

/// Injection failed; nothing was injected. Names handles and JSON paths,
/// never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// A handle did not resolve.
    #[error("cannot inject {id}: {source}")]
    Resolve {
        /// The handle.
        id: HandleId,
        /// Why.
        #[source]
        source: Box<ResolveError>,
    },
    /// A string that starts with `secret:` is not a valid handle.
    #[error("the secret handle at {at} is malformed: {source}")]
    MalformedHandle {
        /// JSON Pointer of the string, or the template byte offset.
        at: String,
        /// What is wrong.
        #[source]
        source: HandleParseError,
    },
    /// A secret handle appears where it would not be substituted: inside a
    /// longer string, as an object key, or in template text outside
    /// `{{ }}`. Passing it on as text would fail open, so it is refused.
    #[error(
        "a secret handle at {at} is not a whole argument string and would be passed on as text; \
         put it in a string of its own, or in a {{{{secret:<id>}}}} template placeholder"
    )]
    EmbeddedHandle {
        /// JSON Pointer of the string or key, or the template byte offset of
        /// the literal text holding it.
        at: String,
    },
    /// A `{{secret:` placeholder has no closing `}}`.
    #[error("the secret placeholder at byte {position} has no closing }}}}")]
    UnterminatedPlaceholder {
        /// Byte offset of the `{{`.
        position: usize,
    },
    /// The value is not UTF-8 and the target needs text.
    #[error("the value of {id} is not UTF-8 text and cannot be injected here")]
    NotUtf8 {
        /// The handle.
        id: HandleId,
    },
    /// The value holds a NUL byte, which an environment variable cannot.
    #[error("the value of {id} holds a NUL byte and cannot be an environment variable")]
    ValueHasNul {
        /// The handle.
        id: HandleId,
    },
    /// A header value would hold CR, LF or NUL (header injection).
    #[error(
        "the {} holds a CR, LF or NUL byte and cannot be rendered into a header value",
        match id { Some(id) => format!("value of {id}"), None => "template".to_owned() }
    )]
    HeaderBreak {
        /// The handle whose value holds it; `None` when the template does.
        id: Option<HandleId>,
    },
    /// The rendered header value holds a byte an HTTP header cannot carry
    /// (a control character other than tab, or DEL).
    #[error(
        "the rendered header value holds a control character or DEL, which an HTTP header cannot carry"
    )]
    InvalidHeaderValue,
    /// The environment variable name is empty or holds `=` or NUL.
    #[error("{name:?} is not a valid environment variable name")]
    InvalidEnvName {
        /// The name.
        name: String,
    },
}

/// CR, LF and NUL: the bytes that end or break an HTTP header line.
fn is_header_break(byte: u8) -> bool {
    matches!(byte, b'\r' | b'\n' | 0)
}

#[cfg(feature = "http")]
impl Resolver {
    /// Renders a header template as [`render_header_value`] does and
    /// returns it as an [`http::HeaderValue`] marked sensitive
    /// ([`set_sensitive(true)`](http::HeaderValue::set_sensitive)), so HTTP
    /// clients and HPACK encoders treat it as a credential (never indexed,
    /// hidden from their `Debug`). Needs the `http` feature.
    ///
    /// `HeaderValue` keeps its own copy of the bytes and does not wipe it on
    /// drop; drop the value once the request is sent.
    ///
    /// [`render_header_value`]: Resolver::render_header_value
    ///
    /// # Errors
    /// As [`render_header_value`], plus
    /// [`InjectError::InvalidHeaderValue`] when the rendered value holds a
    /// byte an HTTP header cannot carry (a control character other than
    /// tab, or DEL).
    pub fn render_http_header_value(
        &self,
        template: &str,
        request: &ResolveRequest,
    ) -> Result<http::HeaderValue, InjectError> {
        let rendered = self.render_header_value(template, request)?;
        let mut value = http::HeaderValue::from_bytes(rendered.expose_secret().as_bytes())
            .map_err(|_| InjectError::InvalidHeaderValue)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parser_splits_literals_and_handles() {
        let id = HandleId::generate().unwrap();
        let template = format!("Bearer {{{{ {id} }}}} and {{{{name}}}}");
        let segments = parse_template(&template).unwrap();
        let shape: Vec<String> = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(t) => format!("L({t})"),
                Segment::Handle(h) => format!("H({h})"),
            })
            .collect();
        assert_eq!(
            shape.concat(),
            format!("L(Bearer )H({id})L( and {{)L({{name}}}})")
        );
    }

    #[test]
    fn malformed_and_unterminated_placeholders_are_errors() {
        assert!(matches!(
            parse_template("x {{secret:short}}"),
            Err(InjectError::MalformedHandle { .. })
        ));
        assert!(matches!(
            parse_template("x {{secret:abcdefghijklmnopqrstuvwxyz"),
            Err(InjectError::UnterminatedPlaceholder { position: 2 })
        ));
        assert_eq!(parse_template("plain {{ name }}").unwrap().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn template_parser_never_panics_and_keeps_every_literal_byte(
            template in "(\\{|\\}| |secret:|[A-Za-z0-9_-]{1,30}|é|😀)*"
        ) {
            if let Ok(segments) = parse_template(&template) {
                // Without handles, the literals are the template itself.
                if segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
                    let joined: String = segments
                        .iter()
                        .map(|s| match s {
                            Segment::Literal(t) => *t,
                            Segment::Handle(_) => "",
                        })
                        .collect();
                    proptest::prop_assert_eq!(joined, template);
                }
            }
        }
    }

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
