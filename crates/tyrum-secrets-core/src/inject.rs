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
//! The same helpers work from any [`ValueSource`], a source of values that
//! were already resolved somewhere trusted: the [`Inject`] trait gives every
//! source `inject_env`, `substitute_json`, `render_template` and
//! `render_header_value`, with the same checks and the same all-or-nothing
//! rule. [`Resolver::for_request`] is the resolver as such a source; a
//! paired node's opened envelopes (`tyrum-secrets-seal`) are another.
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

mod json;
mod template;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::handle::{HANDLE_ID_MIN_LEN, HANDLE_PREFIX};
use crate::resolver::{ResolveError, ResolveRequest, Resolver};
use crate::{
    ExposeSecret, HandleId, HandleParseError, SecretBytes, SecretString, string_from_bytes,
};

pub use json::SecretJson;
use template::{Segment, parse_template};

/// A source of values that the injection helpers ([`Inject`]) draw from:
/// each call hands over the value of one handle, or an error naming it.
///
/// The resolver is one ([`Resolver::for_request`]: every value goes through
/// policy, approvals, audit and the redactor when it is asked for); a set of
/// values already resolved elsewhere and handed over sealed (a paired node's
/// opened envelopes) is another. A source must have registered every value
/// it hands out with the redactor of the process that uses it.
pub trait ValueSource {
    /// The value of `id`, for one injection. The helpers ask once per
    /// distinct handle and drop (wipe) the copy when they are done.
    ///
    /// # Errors
    /// An [`InjectError`] naming `id`, never carrying a value:
    /// [`InjectError::Resolve`] when resolving failed,
    /// [`InjectError::NotProvided`] when the source holds no value for it.
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError>;
}

impl<S: ValueSource + ?Sized> ValueSource for &S {
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError> {
        (**self).value(id)
    }
}

/// The hand-over helpers, for every [`ValueSource`]. Implemented for all of
/// them and for nothing else, so the checks below cannot be overridden.
///
/// Each helper asks the source for every distinct handle it needs before it
/// injects anything: if one fails, nothing is injected, and the error names
/// the handle, never a value.
pub trait Inject: ValueSource {
    /// Sets each handle's value as an environment variable of `command`.
    /// Nothing is set unless every value was handed over and fits in an
    /// environment variable.
    ///
    /// Never format the `Command` with `{:?}` afterwards: std's `Debug`
    /// prints the variables it sets.
    ///
    /// # Errors
    /// [`InjectError::InvalidEnvName`] before any value is asked for; the
    /// source's error naming the handle that failed;
    /// [`InjectError::ValueHasNul`] (or, off Unix, [`InjectError::NotUtf8`])
    /// for a value an environment cannot carry.
    fn inject_env<'a>(
        &self,
        command: &mut Command,
        vars: impl IntoIterator<Item = (&'a str, &'a HandleId)>,
    ) -> Result<(), InjectError> {
        inject_env(self, command, vars)
    }

    /// Returns a copy of `arguments` in which every string of the form
    /// `secret:<id>` is replaced by the value of that handle. Object keys
    /// are never substituted.
    ///
    /// # Errors
    /// [`InjectError::MalformedHandle`] (naming the JSON path) for a string
    /// that starts with `secret:` but does not parse;
    /// [`InjectError::EmbeddedHandle`] for a handle inside a longer string
    /// or in an object key; the source's error naming the handle that
    /// failed; [`InjectError::NotUtf8`] for a value that is not text.
    fn substitute_json(&self, arguments: &Value) -> Result<SecretJson, InjectError> {
        substitute_json(self, arguments)
    }

    /// Renders `template`, replacing each `{{secret:<id>}}` (spaces inside
    /// the braces allowed) with the handle's value. Other `{{…}}` text is
    /// kept as written.
    ///
    /// # Errors
    /// [`InjectError::MalformedHandle`],
    /// [`InjectError::UnterminatedPlaceholder`] or, for a handle outside a
    /// placeholder, [`InjectError::EmbeddedHandle`] (naming the byte offset);
    /// the source's error naming the handle that failed;
    /// [`InjectError::NotUtf8`] for a value that is not text.
    fn render_template(&self, template: &str) -> Result<SecretString, InjectError> {
        render(self, template, false)
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
    fn render_header_value(&self, template: &str) -> Result<SecretString, InjectError> {
        if template.bytes().any(is_header_break) {
            return Err(InjectError::HeaderBreak { id: None });
        }
        render(self, template, true)
    }

    /// Renders a header template as
    /// [`render_header_value`](Self::render_header_value) does and returns
    /// it as an [`http::HeaderValue`] marked sensitive
    /// ([`set_sensitive(true)`](http::HeaderValue::set_sensitive)), so HTTP
    /// clients and HPACK encoders treat it as a credential (never indexed,
    /// hidden from their `Debug`). Needs the `http` feature.
    ///
    /// `HeaderValue` keeps its own copy of the bytes and does not wipe it on
    /// drop; drop the value once the request is sent.
    ///
    /// # Errors
    /// As [`render_header_value`](Self::render_header_value), plus
    /// [`InjectError::InvalidHeaderValue`] when the rendered value holds a
    /// byte an HTTP header cannot carry (a control character other than
    /// tab, or DEL).
    #[cfg(feature = "http")]
    fn render_http_header_value(&self, template: &str) -> Result<http::HeaderValue, InjectError> {
        let rendered = self.render_header_value(template)?;
        let mut value = http::HeaderValue::from_bytes(rendered.expose_secret().as_bytes())
            .map_err(|_| InjectError::InvalidHeaderValue)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl<S: ValueSource + ?Sized> Inject for S {}

/// A [`Resolver`] with the request it resolves for: a [`ValueSource`] that
/// resolves each value — policy, approvals, audit, redactor — when an
/// injection helper asks for it. Made by [`Resolver::for_request`].
#[derive(Debug)]
pub struct ResolvingSource<'a> {
    resolver: &'a Resolver,
    request: &'a ResolveRequest,
}

impl ValueSource for ResolvingSource<'_> {
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError> {
        self.resolver
            .resolve(id, self.request)
            .map(|resolved| resolved.into_value())
            .map_err(|source| InjectError::Resolve {
                id: id.clone(),
                source: Box::new(source),
            })
    }
}

impl Resolver {
    /// This resolver as a [`ValueSource`] for `request`, for the [`Inject`]
    /// helpers. The methods below are shorthands for it.
    pub fn for_request<'a>(&'a self, request: &'a ResolveRequest) -> ResolvingSource<'a> {
        ResolvingSource {
            resolver: self,
            request,
        }
    }

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
        self.for_request(request).inject_env(command, vars)
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
        self.for_request(request).substitute_json(arguments)
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
        self.for_request(request).render_template(template)
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
        self.for_request(request).render_header_value(template)
    }
}

fn inject_env<'a, S: ValueSource + ?Sized>(
    source: &S,
    command: &mut Command,
    vars: impl IntoIterator<Item = (&'a str, &'a HandleId)>,
) -> Result<(), InjectError> {
    let vars: Vec<(&str, &HandleId)> = vars.into_iter().collect();
    for (name, _) in &vars {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(InjectError::InvalidEnvName {
                name: (*name).to_owned(),
            });
        }
    }
    let values = values_of(source, vars.iter().map(|(_, id)| *id))?;
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

fn substitute_json<S: ValueSource + ?Sized>(
    source: &S,
    arguments: &Value,
) -> Result<SecretJson, InjectError> {
    let mut ids = Vec::new();
    json::collect_handles(arguments, &mut String::new(), &mut ids)?;
    let values = values_of(source, ids.iter())?;
    let mut texts = BTreeMap::new();
    for (id, value) in &values {
        let text =
            string_from_bytes(value).ok_or_else(|| InjectError::NotUtf8 { id: id.clone() })?;
        texts.insert(id.clone(), text);
    }
    Ok(SecretJson::new(json::substitute(arguments, &texts)))
}

fn render<S: ValueSource + ?Sized>(
    source: &S,
    template: &str,
    header: bool,
) -> Result<SecretString, InjectError> {
    let segments = parse_template(template)?;
    let values = values_of(
        source,
        segments.iter().filter_map(|s| match s {
            Segment::Handle(id) => Some(id),
            Segment::Literal(_) => None,
        }),
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

/// Asks `source` for each distinct handle once, in order; stops at the first
/// failure, dropping (and wiping) what was handed over.
fn values_of<'a, S: ValueSource + ?Sized>(
    source: &S,
    ids: impl IntoIterator<Item = &'a HandleId>,
) -> Result<BTreeMap<HandleId, SecretBytes>, InjectError> {
    let mut values = BTreeMap::new();
    for id in ids {
        if values.contains_key(id) {
            continue;
        }
        values.insert(id.clone(), source.value(id)?);
    }
    Ok(values)
}

fn lookup<'a>(
    values: &'a BTreeMap<HandleId, SecretBytes>,
    id: &HandleId,
) -> Result<&'a SecretBytes, InjectError> {
    // Every id was handed over by `values_of`; the error only satisfies the
    // type.
    values
        .get(id)
        .ok_or_else(|| InjectError::NotProvided { id: id.clone() })
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
    /// The source holds no value for the handle: no value for it was
    /// handed over (for a paired node, no envelope for it was opened).
    #[error("no value for {id} was handed over here; the gateway must seal one for this step")]
    NotProvided {
        /// The handle.
        id: HandleId,
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
        self.for_request(request).render_http_header_value(template)
    }
}
