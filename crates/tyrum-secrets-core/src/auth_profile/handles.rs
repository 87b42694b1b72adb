//! The catalog operations auth profiles need, all through the audited
//! [`SecretAdmin`]: reading a handle's metadata (is it revoked or expired?)
//! for selection, and rotating a handle to a refreshed token, which leaves
//! an audit record naming the profile in its reason.

use super::AuthProfile;
use super::select::HandleState;
use crate::audit::Action;
use crate::{
    AdminError, AdminRequest, EntryStatus, HandleId, Purpose, Requester, RotateOptions,
    SecretAdmin, SecretBytes, Timestamp, Version,
};

/// The state of handle `id` at `now`, as selection needs it.
pub(crate) fn handle_state(admin: &SecretAdmin, id: &HandleId, now: Timestamp) -> HandleState {
    match admin.entry(id) {
        Ok(entry) => match entry.status {
            EntryStatus::Revoked { at, .. } => HandleState::Revoked(at),
            EntryStatus::Active => match entry.expires_at {
                Some(at) if at <= now => HandleState::Expired(at),
                _ => HandleState::Usable,
            },
        },
        Err(AdminError::UnknownHandle { .. }) => HandleState::Unknown,
        Err(_) => HandleState::Unavailable,
    }
}

/// Publishes `value` as a new version of `id`, points the handle at it and
/// retires the previous version per `options`, on behalf of `profile`: the
/// actor is the profile's agent, the reason names the profile.
pub(crate) fn rotate_token(
    admin: &SecretAdmin,
    id: &HandleId,
    value: &SecretBytes,
    options: RotateOptions,
    profile: &AuthProfile,
) -> Result<Version, AdminError> {
    let invalid = |e: crate::RequestError| AdminError::Invalid {
        action: Action::Rotate,
        id: id.clone(),
        message: e.to_string(),
    };
    let by = AdminRequest::new(
        Requester::new(profile.agent.clone()).map_err(invalid)?,
        Purpose::new(format!(
            "store the refreshed OAuth tokens of auth profile {}",
            profile.id
        ))
        .map_err(invalid)?,
    );
    admin.rotate(id, value, options, &by)
}
