//! One module per group of commands; each command is one library call
//! between parsing and formatting.

pub(crate) mod audit;
pub(crate) mod policy;
pub(crate) mod redact;
#[cfg(unix)]
pub(crate) mod run;
pub(crate) mod secrets;
pub(crate) mod store;
