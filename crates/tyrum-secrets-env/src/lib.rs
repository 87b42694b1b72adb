#![doc = include_str!("../README.md")]

mod env;
mod mounted;

pub use env::{EnvError, EnvLoader, EnvProvider};
pub use mounted::{
    DEFAULT_MAX_FILE_LEN, FileKind, MountError, MountedSecretProvider, MountedSnapshot, Rotation,
};

/// The variable Kubernetes sets in every container of a pod.
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";

/// Whether this process runs in a Kubernetes pod: `KUBERNETES_SERVICE_HOST`
/// is set and not empty. The facade uses it to pick the Kubernetes
/// deployment profile.
pub fn running_in_kubernetes() -> bool {
    std::env::var_os(KUBERNETES_SERVICE_HOST).is_some_and(|value| !value.is_empty())
}
