//! Every config key: its path in the TOML file, its type, and from it the
//! name of the environment variable that sets it. The loader validates
//! files and variables against this table; a test checks it against the
//! `Config` struct and against the documentation (`keys.md`).

/// What a key's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any string.
    Str,
    /// A path; relative paths are taken from the config file's directory
    /// (or the working directory, when set by a variable).
    Path,
    /// A path relative to `state_dir` unless absolute.
    StatePath,
    /// An integer in `min..=max`.
    Integer { min: i64, max: i64 },
    /// `true` or `false`.
    Bool,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A table of strings (`locator = "VARIABLE"`).
    StrMap,
}

impl Kind {
    /// What the value must be, for error messages.
    pub(crate) fn describe(self) -> String {
        match self {
            Kind::Str => "a string".to_owned(),
            Kind::Path | Kind::StatePath => "a path (a string)".to_owned(),
            Kind::Integer { min, max } => format!("an integer from {min} to {max}"),
            Kind::Bool => "true or false".to_owned(),
            Kind::Enum(names) => format!("one of {}", names.join(", ")),
            Kind::StrMap => "a table of strings (locator = \"VARIABLE\")".to_owned(),
        }
    }
}

/// One config key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    /// `section.name` or `name`.
    pub(crate) path: &'static str,
    pub(crate) kind: Kind,
}

/// The sections (TOML tables) of the config.
pub(crate) const SECTIONS: &[&str] = &[
    "file",
    "keychain",
    "kubernetes",
    "vault",
    "audit",
    "redaction",
];

/// The prefix of every config variable.
pub(crate) const ENV_PREFIX: &str = "TYRUM_SECRETS_";

/// The variable that names the config file itself (not a key).
pub const CONFIG_ENV: &str = "TYRUM_SECRETS_CONFIG";

const MS_MAX: i64 = 3_600_000;

/// Every key. Keep in step with `Config` and `keys.md` (tests check both).
pub(crate) const KEYS: &[Key] = &[
    key(
        "profile",
        Kind::Enum(&["desktop", "kubernetes", "single-host", "cluster"]),
    ),
    key("state_dir", Kind::Path),
    key("passphrase_file", Kind::Path),
    key("key_file", Kind::Path),
    key("policy_file", Kind::Path),
    key("anchor_dir", Kind::Path),
    key("catalog_key_file", Kind::Path),
    key("file.path", Kind::StatePath),
    key("file.keychain_key", Kind::Str),
    key(
        "file.kdf_memory_kib",
        Kind::Integer {
            min: 19_456,
            max: 1_048_576,
        },
    ),
    key("file.kdf_passes", Kind::Integer { min: 2, max: 16 }),
    key("file.kdf_lanes", Kind::Integer { min: 1, max: 16 }),
    key(
        "file.lock_timeout_ms",
        Kind::Integer {
            min: 1,
            max: MS_MAX,
        },
    ),
    key("file.anchor", Kind::Enum(&["file", "keychain"])),
    key(
        "keychain.store",
        Kind::Enum(&[
            "platform",
            "secret-service",
            "keyutils",
            "macos-keychain",
            "windows-credential-manager",
        ]),
    ),
    key("keychain.namespace", Kind::Str),
    key(
        "keychain.timeout_ms",
        Kind::Integer {
            min: 1,
            max: MS_MAX,
        },
    ),
    key("kubernetes.mounted_dir", Kind::Path),
    key("kubernetes.env_prefix", Kind::Str),
    key("kubernetes.env_vars", Kind::StrMap),
    key("kubernetes.remove_env", Kind::Bool),
    key("kubernetes.dangerous_keep_env", Kind::Bool),
    key("vault.address", Kind::Str),
    key("vault.namespace", Kind::Str),
    key("vault.ca_file", Kind::Path),
    key("vault.token_file", Kind::Path),
    key("vault.approle_role_id", Kind::Str),
    key("vault.approle_secret_id_file", Kind::Path),
    key("vault.kubernetes_role", Kind::Str),
    key("vault.kubernetes_token_file", Kind::Path),
    key("vault.auth_mount", Kind::Str),
    key("vault.kv_mount", Kind::Str),
    key("vault.values_path", Kind::Str),
    key("vault.catalog_path", Kind::Str),
    key(
        "vault.timeout_ms",
        Kind::Integer {
            min: 1,
            max: MS_MAX,
        },
    ),
    key("vault.dangerous_allow_http", Kind::Bool),
    key("audit.output", Kind::Enum(&["file", "stdout"])),
    key("audit.dir", Kind::StatePath),
    key(
        "audit.timeout_ms",
        Kind::Integer {
            min: 1,
            max: MS_MAX,
        },
    ),
    key("audit.fingerprints", Kind::Bool),
    key("audit.key_file", Kind::Path),
    key("audit.anchor", Kind::Enum(&["file", "keychain"])),
    key(
        "redaction.min_value_len",
        Kind::Integer { min: 1, max: 4096 },
    ),
];

const fn key(path: &'static str, kind: Kind) -> Key {
    Key { path, kind }
}

/// The key at `path`.
pub(crate) fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The variable that sets `path`: `TYRUM_SECRETS_` and the path in upper
/// case with `.` as `_` (`audit.timeout_ms` → `TYRUM_SECRETS_AUDIT_TIMEOUT_MS`).
pub(crate) fn env_name(path: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.extend(path.chars().map(|c| {
        if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    name
}

/// The key a variable sets.
pub(crate) fn find_env(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| env_name(k.path) == name)
}

/// The known key closest to `path` (at most two edits away), for "did you
/// mean" hints.
pub(crate) fn closest(path: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(path, k.path), k.path))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// Levenshtein distance over chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j] + 1).min(row[j + 1] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_unique_and_prefixed() {
        let mut names: Vec<String> = KEYS.iter().map(|k| env_name(k.path)).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "two keys share a variable");
        assert!(names.contains(&"TYRUM_SECRETS_PASSPHRASE_FILE".to_owned()));
        assert!(names.contains(&"TYRUM_SECRETS_AUDIT_TIMEOUT_MS".to_owned()));
        assert!(!names.contains(&CONFIG_ENV.to_owned()));
    }

    #[test]
    fn every_key_is_top_level_or_in_a_known_section() {
        for key in KEYS {
            if let Some((section, _)) = key.path.split_once('.') {
                assert!(SECTIONS.contains(&section), "{}", key.path);
            }
        }
    }

    #[test]
    fn closest_suggests_a_near_miss_only() {
        assert_eq!(closest("statedir"), Some("state_dir"));
        assert_eq!(closest("audit.timeout"), None);
        assert_eq!(closest("passphrase"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
