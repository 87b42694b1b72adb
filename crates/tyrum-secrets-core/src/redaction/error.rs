//! Why a registration was refused.

use crate::HandleId;

/// A value could not be registered with the [`Redactor`](super::Redactor).
///
/// Never carries the value, its length or any encoding of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactionError {
    /// The value is shorter than the redactor's minimum. Redacting it would
    /// mask ordinary text wherever those few bytes occur, so it is refused.
    #[error(
        "refused to register the value of {handle} for redaction: it is shorter than the \
         minimum of {min} bytes, and redacting so short a value would mask ordinary text; \
         store a longer secret, or build the redactor with a lower \
         Redactor::with_min_value_len if such values are expected"
    )]
    ValueTooShort {
        /// The handle the value was registered under.
        handle: HandleId,
        /// The redactor's minimum value length, in bytes.
        min: usize,
    },
    /// The matcher could not be compiled. Nothing was registered; the
    /// previous values stay in force. (The incremental matcher has no
    /// compilation step that can fail; this variant is kept so that code
    /// naming it still compiles.)
    #[error(
        "could not compile the redaction matcher over {patterns} patterns; the registration \
         was rolled back and the previously registered values are still redacted; remove \
         retired secrets or register fewer values"
    )]
    MatcherBuild {
        /// How many patterns the failed build held.
        patterns: usize,
        /// The automaton builder's error (it names sizes, never pattern
        /// bytes).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}
