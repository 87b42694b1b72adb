//! Deployment profiles and how one is picked from the environment.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where this deployment keeps values, catalog and audit log.
///
/// | profile | values | catalog | audit log |
/// |---|---|---|---|
/// | `desktop` | OS keychain | user's data directory | user's data directory, chain key in the keychain |
/// | `kubernetes` | mounted Secret volumes and env vars, read-only | state directory | file or stdout, JSON lines, chained |
/// | `single-host` | encrypted file store in the state directory | beside it | beside it |
/// | `cluster` | OpenBao / Vault KV v2 | OpenBao | per process, chained |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Profile {
    /// A user's machine with an OS keychain (feature `keychain`).
    Desktop,
    /// A pod: mounted Secret volumes and environment variables (feature `env`).
    Kubernetes,
    /// One machine without a keychain: the encrypted file store (feature `file`).
    SingleHost,
    /// Several machines sharing OpenBao or Vault (feature `vault`). Never
    /// detected: always chosen explicitly.
    Cluster,
}

impl Profile {
    /// Every profile, in documentation order.
    pub const ALL: [Profile; 4] = [
        Profile::Desktop,
        Profile::Kubernetes,
        Profile::SingleHost,
        Profile::Cluster,
    ];

    /// The name used in config files and `TYRUM_SECRETS_PROFILE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Desktop => "desktop",
            Profile::Kubernetes => "kubernetes",
            Profile::SingleHost => "single-host",
            Profile::Cluster => "cluster",
        }
    }

    /// The profile named `name` (`desktop`, `kubernetes`, `single-host`,
    /// `cluster`).
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The cargo feature of the facade that this profile needs.
    pub fn feature(self) -> &'static str {
        match self {
            Profile::Desktop => "keychain",
            Profile::Kubernetes => "env",
            Profile::SingleHost => "file",
            Profile::Cluster => "vault",
        }
    }

    /// Picks a profile from this process's environment, and says why.
    ///
    /// In order: Kubernetes when `KUBERNETES_SERVICE_HOST` is set or the
    /// service-account token is mounted
    /// (`/var/run/secrets/kubernetes.io/serviceaccount/token`); desktop on
    /// macOS and Windows, and on other systems when a graphical session
    /// (`WAYLAND_DISPLAY`, `DISPLAY` or `XDG_CURRENT_DESKTOP`) and a session
    /// bus (`DBUS_SESSION_BUS_ADDRESS`) are both there; otherwise single
    /// host. `cluster` is never detected. A profile set in the config always
    /// wins over this.
    pub fn detect() -> Detection {
        let token = Path::new(SERVICE_ACCOUNT_TOKEN).is_file();
        detect_from(|name| std::env::var_os(name), token, std::env::consts::OS)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where Kubernetes mounts a pod's service-account token.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A profile and the reason it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The profile.
    pub profile: Profile,
    /// Why, in one sentence for the operator (names variables, never their
    /// values).
    pub reason: String,
}

/// [`Profile::detect`] over a given environment: `var` reads a variable,
/// `token_mounted` says whether the service-account token exists, `os` is
/// `std::env::consts::OS`.
pub(crate) fn detect_from(
    var: impl Fn(&str) -> Option<OsString>,
    token_mounted: bool,
    os: &str,
) -> Detection {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    let found = |profile, reason: &str| Detection {
        profile,
        reason: reason.to_owned(),
    };
    if set("KUBERNETES_SERVICE_HOST") {
        return found(
            Profile::Kubernetes,
            "KUBERNETES_SERVICE_HOST is set: running in a Kubernetes pod",
        );
    }
    if token_mounted {
        return found(
            Profile::Kubernetes,
            "a Kubernetes service-account token is mounted at /var/run/secrets/kubernetes.io/serviceaccount/token",
        );
    }
    match os {
        "macos" => return found(Profile::Desktop, "macOS: the login Keychain holds values"),
        "windows" => {
            return found(
                Profile::Desktop,
                "Windows: the Credential Manager holds values",
            );
        }
        _ => {}
    }
    let display = ["WAYLAND_DISPLAY", "DISPLAY", "XDG_CURRENT_DESKTOP"]
        .into_iter()
        .find(|name| set(name));
    match (display, set("DBUS_SESSION_BUS_ADDRESS")) {
        (Some(name), true) => Detection {
            profile: Profile::Desktop,
            reason: format!(
                "{name} and DBUS_SESSION_BUS_ADDRESS are set: a desktop session with a Secret Service"
            ),
        },
        (Some(name), false) => Detection {
            profile: Profile::SingleHost,
            reason: format!(
                "{name} is set but DBUS_SESSION_BUS_ADDRESS is not: no Secret Service to reach, so a single host"
            ),
        },
        (None, _) => found(
            Profile::SingleHost,
            "no Kubernetes pod and no desktop session: a single host",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn kubernetes_wins_over_a_desktop_session() {
        let vars = [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("DISPLAY", ":0"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/bus"),
        ];
        let d = detect_from(env(&vars), false, "linux");
        assert_eq!(d.profile, Profile::Kubernetes);
        assert!(d.reason.contains("KUBERNETES_SERVICE_HOST"), "{}", d.reason);
        assert!(!d.reason.contains("10.0.0.1"), "{}", d.reason);
    }

    #[test]
    fn a_mounted_service_account_token_is_kubernetes() {
        let d = detect_from(env(&[]), true, "linux");
        assert_eq!(d.profile, Profile::Kubernetes);
        assert!(d.reason.contains("service-account token"), "{}", d.reason);
    }

    #[test]
    fn an_empty_service_host_is_not_kubernetes() {
        let d = detect_from(env(&[("KUBERNETES_SERVICE_HOST", "")]), false, "linux");
        assert_eq!(d.profile, Profile::SingleHost);
    }

    #[test]
    fn a_display_without_a_session_bus_is_a_single_host() {
        let d = detect_from(env(&[("DISPLAY", ":0")]), false, "linux");
        assert_eq!(d.profile, Profile::SingleHost);
        assert!(
            d.reason.contains("DBUS_SESSION_BUS_ADDRESS"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn wayland_with_a_session_bus_is_a_desktop() {
        let vars = [
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/bus"),
        ];
        let d = detect_from(env(&vars), false, "linux");
        assert_eq!(d.profile, Profile::Desktop);
        assert!(d.reason.contains("WAYLAND_DISPLAY"), "{}", d.reason);
    }

    #[test]
    fn macos_and_windows_are_desktops_outside_a_pod() {
        assert_eq!(
            detect_from(env(&[]), false, "macos").profile,
            Profile::Desktop
        );
        assert_eq!(
            detect_from(env(&[]), false, "windows").profile,
            Profile::Desktop
        );
        assert_eq!(
            detect_from(env(&[]), true, "macos").profile,
            Profile::Kubernetes
        );
    }

    #[test]
    fn names_round_trip() {
        for profile in Profile::ALL {
            assert_eq!(Profile::from_name(profile.as_str()), Some(profile));
        }
        assert_eq!(Profile::from_name("singlehost"), None);
    }
}
