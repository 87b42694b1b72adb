//! Loading: TOML text checked key by key against the key table (so errors
//! name the key and its line and never quote a value), variables on top,
//! then serde into `Config`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use toml::de::{DeTable, DeValue};

use super::Config;
use super::error::{ConfigError, Location};
use super::keys::{self, CONFIG_ENV, ENV_PREFIX, Key, Kind, SECTIONS};

/// Config files larger than this are refused (a config is a few hundred
/// bytes; a bigger file is the wrong file).
const MAX_FILE_LEN: u64 = 1024 * 1024;

/// Reads a config file: a regular file (checked on the opened file, so a
/// FIFO swapped in never blocks), at most 1 MiB, UTF-8.
pub(super) fn read_file(path: &Path) -> Result<String, ConfigError> {
    use tyrum_secrets_core::durable::{ReadFileError, read_regular_file};

    let fail = |reason: String| ConfigError::Read {
        path: path.to_owned(),
        reason,
    };
    let bytes = read_regular_file(path, MAX_FILE_LEN).map_err(|e| match e {
        ReadFileError::Io { source, .. } => fail(source.to_string()),
        ReadFileError::NotARegularFile { kind, .. } => {
            fail(format!("not a regular file (a {kind})"))
        }
        ReadFileError::TooLarge { .. } => fail("larger than 1 MiB".to_owned()),
        other => fail(other.to_string()),
    })?;
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".to_owned()))
}

/// Builds a config from file text (and the file's path, for messages and
/// relative paths) and variables; variables win.
pub(super) fn load(
    file: Option<(&str, Option<&Path>)>,
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Config, ConfigError> {
    let mut table = toml::Table::new();
    let mut origins = BTreeMap::new();
    if let Some((text, path)) = file {
        FileLoader { text, path }.load(&mut table, &mut origins)?;
    }
    let mut env: Vec<(OsString, OsString)> = env.into_iter().collect();
    env.sort();
    for (name, value) in env {
        load_var(&name, &value, &mut table, &mut origins)?;
    }
    let mut config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
        // Unreachable when the key table and `Config` agree (a test checks).
        ConfigError::Syntax {
            at: Location::Default,
            message: format!("internal: the config does not match its key table: {e}"),
        }
    })?;
    config.origins = origins;
    check_conflicts(&config)?;
    Ok(config)
}

struct FileLoader<'a> {
    text: &'a str,
    path: Option<&'a Path>,
}

impl FileLoader<'_> {
    fn load(
        &self,
        table: &mut toml::Table,
        origins: &mut BTreeMap<&'static str, Location>,
    ) -> Result<(), ConfigError> {
        let root = DeTable::parse(self.text).map_err(|e| ConfigError::Syntax {
            at: self.at(e.span().map_or(0, |s| s.start)),
            message: e.message().trim().to_owned(),
        })?;
        for (name, value) in root.get_ref() {
            let name_text: &str = name.get_ref();
            if SECTIONS.contains(&name_text) {
                let Some(section) = value.get_ref().as_table() else {
                    return Err(ConfigError::WrongType {
                        at: self.at(value.span().start),
                        key: name_text.to_owned(),
                        expected: format!("a table ([{name_text}])"),
                        found: found(value.get_ref()),
                    });
                };
                for (inner, value) in section {
                    let path = format!("{name_text}.{}", inner.get_ref());
                    self.leaf(&path, inner.span().start, value, table, origins)?;
                }
            } else {
                self.leaf(name_text, name.span().start, value, table, origins)?;
            }
        }
        Ok(())
    }

    fn leaf(
        &self,
        path: &str,
        key_at: usize,
        value: &toml::Spanned<DeValue<'_>>,
        table: &mut toml::Table,
        origins: &mut BTreeMap<&'static str, Location>,
    ) -> Result<(), ConfigError> {
        let Some(key) = keys::find(path) else {
            return Err(ConfigError::UnknownKey {
                at: self.at(key_at),
                key: path.to_owned(),
                hint: hint(path, keys::closest(path).map(|k| format!("`{k}`"))),
            });
        };
        let at = self.at(value.span().start);
        let mut converted = from_de(key, value.get_ref(), &at)?;
        if let (Kind::Path, Some(base), toml::Value::String(text)) =
            (key.kind, self.path.and_then(Path::parent), &mut converted)
            && Path::new(text.as_str()).is_relative()
        {
            *text = base.join(&*text).to_string_lossy().into_owned();
        }
        insert(table, key, converted);
        origins.insert(key.path, at);
        Ok(())
    }

    fn at(&self, offset: usize) -> Location {
        let before = self.text.get(..offset).unwrap_or(self.text);
        Location::File {
            path: self.path.map(Path::to_owned),
            line: before.matches('\n').count() + 1,
        }
    }
}

/// A DeValue checked against `key`'s kind, as a `toml::Value`.
fn from_de(key: &Key, value: &DeValue<'_>, at: &Location) -> Result<toml::Value, ConfigError> {
    let wrong = |found: String| ConfigError::WrongType {
        at: at.clone(),
        key: key.path.to_owned(),
        expected: key.kind.describe(),
        found,
    };
    match (key.kind, value) {
        (Kind::Str | Kind::Path | Kind::StatePath, DeValue::String(s)) => {
            Ok(toml::Value::String(s.to_string()))
        }
        (Kind::Enum(names), DeValue::String(s)) => {
            if names.contains(&s.as_ref()) {
                Ok(toml::Value::String(s.to_string()))
            } else {
                Err(wrong("another string".to_owned()))
            }
        }
        (Kind::Integer { min, max }, DeValue::Integer(i)) => {
            match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (min..=max).contains(&n) => Ok(toml::Value::Integer(n)),
                _ => Err(wrong("an integer out of range".to_owned())),
            }
        }
        (Kind::Bool, DeValue::Boolean(b)) => Ok(toml::Value::Boolean(*b)),
        (Kind::StrMap, DeValue::Table(t)) => {
            let mut map = toml::Table::new();
            for (name, value) in t {
                match value.get_ref() {
                    DeValue::String(s) => {
                        map.insert(
                            name.get_ref().to_string(),
                            toml::Value::String(s.to_string()),
                        );
                    }
                    other => {
                        return Err(wrong(format!(
                            "a {} under one of its keys",
                            other.type_str()
                        )));
                    }
                }
            }
            Ok(toml::Value::Table(map))
        }
        (_, other) => Err(wrong(found(other))),
    }
}

fn found(value: &DeValue<'_>) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// One variable: unknown `TYRUM_SECRETS_*` names are errors; others are
/// ignored.
fn load_var(
    name: &OsString,
    value: &OsString,
    table: &mut toml::Table,
    origins: &mut BTreeMap<&'static str, Location>,
) -> Result<(), ConfigError> {
    let Some(name) = name.to_str() else {
        return Ok(());
    };
    if !name.starts_with(ENV_PREFIX) || name == CONFIG_ENV {
        return Ok(());
    }
    let Some(key) = keys::find_env(name) else {
        let near = keys::KEYS
            .iter()
            .map(|k| keys::env_name(k.path))
            .find(|candidate| keys::edit_distance(candidate, name) <= 2);
        return Err(ConfigError::UnknownVariable {
            var: name.to_owned(),
            hint: hint(name, near),
        });
    };
    let at = Location::Env {
        var: name.to_owned(),
    };
    let wrong = |found: &str| ConfigError::WrongType {
        at: at.clone(),
        key: key.path.to_owned(),
        expected: key.kind.describe(),
        found: found.to_owned(),
    };
    let Some(text) = value.to_str() else {
        return Err(wrong("bytes that are not UTF-8"));
    };
    if text.is_empty() {
        // `VAR=` is how shells unset in a command line: not set.
        return Ok(());
    }
    let converted = match key.kind {
        Kind::Str | Kind::Path | Kind::StatePath => toml::Value::String(text.to_owned()),
        Kind::Enum(names) => {
            if !names.contains(&text) {
                return Err(wrong("another string"));
            }
            toml::Value::String(text.to_owned())
        }
        Kind::Integer { min, max } => match text.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => toml::Value::Integer(n),
            Ok(_) => return Err(wrong("an integer out of range")),
            Err(_) => return Err(wrong("text that is not an integer")),
        },
        Kind::Bool => match text.trim() {
            "true" | "1" => toml::Value::Boolean(true),
            "false" | "0" => toml::Value::Boolean(false),
            _ => return Err(wrong("text that is not true, false, 1 or 0")),
        },
        Kind::StrMap => {
            let mut map = toml::Table::new();
            for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
                let Some((locator, var)) = pair.split_once('=') else {
                    return Err(ConfigError::WrongType {
                        at: at.clone(),
                        key: key.path.to_owned(),
                        expected: "locator=VARIABLE pairs separated by commas".to_owned(),
                        found: "an entry without `=`".to_owned(),
                    });
                };
                map.insert(
                    locator.trim().to_owned(),
                    toml::Value::String(var.trim().to_owned()),
                );
            }
            toml::Value::Table(map)
        }
    };
    insert(table, key, converted);
    origins.insert(key.path, at);
    Ok(())
}

/// Puts `value` at `key`'s path, replacing what was there.
fn insert(table: &mut toml::Table, key: &Key, value: toml::Value) {
    match key.path.split_once('.') {
        None => {
            table.insert(key.path.to_owned(), value);
        }
        Some((section, name)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                inner.insert(name.to_owned(), value);
            }
        }
    }
}

/// " (did you mean ...)", or for a name that looks like a secret, where
/// secrets go instead.
fn hint(name: &str, near: Option<String>) -> String {
    let lower = name.to_ascii_lowercase();
    let secretish = ["passphrase", "password", "token", "secret_id", "key"]
        .iter()
        .any(|word| lower.contains(word));
    match near {
        Some(near) => format!(" (did you mean {near}?)"),
        None if secretish => " (secrets never go in the config: put the value in a file and name the file with passphrase_file, key_file, audit.key_file, catalog_key_file, vault.token_file or vault.approle_secret_id_file)".to_owned(),
        None => String::new(),
    }
}

/// At most one source of the file store's key.
fn check_conflicts(config: &Config) -> Result<(), ConfigError> {
    let set: Vec<&str> = [
        ("passphrase_file", config.passphrase_file.is_some()),
        ("key_file", config.key_file.is_some()),
        ("file.keychain_key", config.file.keychain_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, on)| on.then_some(key))
    .collect();
    if let [first, second, ..] = set.as_slice() {
        return Err(ConfigError::Conflict {
            first: config.describe(first),
            second: config.describe(second),
            advice: "the file store takes its key from one source: keep one of passphrase_file, key_file and file.keychain_key",
        });
    }
    let vault = &config.vault;
    let set: Vec<&str> = [
        ("vault.token_file", vault.token_file.is_some()),
        (
            "vault.approle_secret_id_file",
            vault.approle_secret_id_file.is_some(),
        ),
        ("vault.kubernetes_role", vault.kubernetes_role.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, on)| on.then_some(key))
    .collect();
    if let [first, second, ..] = set.as_slice() {
        return Err(ConfigError::Conflict {
            first: config.describe(first),
            second: config.describe(second),
            advice: "OpenBao takes its token from one source: keep one of vault.token_file, vault.approle_secret_id_file and vault.kubernetes_role",
        });
    }
    Ok(())
}

/// A path from the config: relative ones are taken from `base`.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}
