//! The hook through which the resolver registers every value it reads with
//! the redactor, before the value leaves the resolver.

use std::fmt;

use crate::{HandleId, SecretBytes};

/// Receives every value the resolver is about to hand out, so later output
/// containing it can be redacted. The `Redactor` implements it.
///
/// If `register` fails the resolve fails closed: the value is dropped and
/// [`ResolveError::Redaction`](super::ResolveError::Redaction) returned.
pub trait RedactionHook: Send + Sync + fmt::Debug {
    /// Registers `value` as the value of `handle`.
    ///
    /// # Errors
    /// [`RedactionHookError`] when the redactor cannot take the value (too
    /// short to redact safely, full). Never carries the value.
    fn register(&self, handle: &HandleId, value: &SecretBytes) -> Result<(), RedactionHookError>;
}

impl<H: RedactionHook + ?Sized> RedactionHook for std::sync::Arc<H> {
    fn register(&self, handle: &HandleId, value: &SecretBytes) -> Result<(), RedactionHookError> {
        (**self).register(handle, value)
    }
}

/// Registers nothing. The resolver's default until a redactor is plugged in;
/// fine for tests, wrong for a gateway that persists or logs output.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRedaction;

impl RedactionHook for NoRedaction {
    fn register(&self, _handle: &HandleId, _value: &SecretBytes) -> Result<(), RedactionHookError> {
        Ok(())
    }
}

/// The redactor refused a value. Never carries the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the redactor refused the value of {handle}: {reason}")]
pub struct RedactionHookError {
    /// The handle whose value was refused.
    pub handle: HandleId,
    /// Why, without the value.
    pub reason: String,
}

impl RedactionHookError {
    /// A refusal for `handle`.
    pub fn new(handle: HandleId, reason: impl Into<String>) -> Self {
        Self {
            handle,
            reason: reason.into(),
        }
    }
}
