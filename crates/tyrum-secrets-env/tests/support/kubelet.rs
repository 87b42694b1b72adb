//! A test double of kubelet's atomic writer (pkg/volume/util/atomic_writer.go)
//! that performs its steps, in its order, on a real directory:
//!
//! 1. read the old `..data` target;
//! 2. note the visible top-level names the new payload drops;
//! 3. create a new timestamped directory `..YYYY_MM_DD_HH_MM_SS.<unique>`;
//! 4. write the payload into it (parent directories 0755, files 0644);
//! 5. create the symlink `..data_tmp -> <new dir name>`;
//! 6. rename `..data_tmp` over `..data` (the atomic swap);
//! 7. create the missing visible symlinks `<top> -> ..data/<top>`;
//! 8. remove the visible names the payload dropped;
//! 9. remove the old timestamped directory.

#![allow(dead_code, reason = "each test binary uses part of the helper")]

use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// One file of a payload: a relative path and its bytes.
pub(crate) type Payload<'a> = &'a [(&'a str, Vec<u8>)];

/// A Secret volume directory written the way kubelet writes it.
pub(crate) struct KubeletVolume {
    root: PathBuf,
}

impl KubeletVolume {
    /// Writes the first payload into `root` (an existing, empty directory).
    pub(crate) fn create(root: &Path, payload: Payload<'_>) -> std::io::Result<Self> {
        let volume = Self {
            root: root.to_path_buf(),
        };
        volume.write(payload)?;
        Ok(volume)
    }

    /// The volume root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The name `..data` points at now.
    pub(crate) fn data_target(&self) -> std::io::Result<PathBuf> {
        std::fs::read_link(self.root.join("..data"))
    }

    /// One update, all nine steps.
    pub(crate) fn write(&self, payload: Payload<'_>) -> std::io::Result<()> {
        let old = self.swap(payload)?;
        self.remove_old_dir(old)
    }

    /// Steps 1 to 8: the swap is done but the old timestamped directory is
    /// still there, as in the moment before kubelet's last step. Returns the
    /// old directory's name for [`remove_old_dir`](Self::remove_old_dir).
    pub(crate) fn swap(&self, payload: Payload<'_>) -> std::io::Result<Option<PathBuf>> {
        // (1)
        let data = self.root.join("..data");
        let old = match std::fs::read_link(&data) {
            Ok(target) => Some(target),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        // (2)
        let new_tops: Vec<&str> = payload.iter().map(|(path, _)| top(path)).collect();
        let mut to_remove = Vec::new();
        if let Some(old) = &old {
            for entry in std::fs::read_dir(self.root.join(old))? {
                let name = entry?.file_name();
                if !new_tops.iter().any(|top| name == *top) {
                    to_remove.push(name);
                }
            }
        }
        // (3)
        let ts_name = timestamp_dir_name();
        let ts_dir = self.root.join(&ts_name);
        std::fs::create_dir(&ts_dir)?;
        std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))?;
        // (4)
        for (path, bytes) in payload {
            let file = ts_dir.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, bytes)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
        }
        // (5)
        let tmp = self.root.join("..data_tmp");
        symlink(&ts_name, &tmp)?;
        // (6)
        std::fs::rename(&tmp, &data)?;
        // (7)
        for top in &new_tops {
            let visible = self.root.join(top);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new("..data").join(top), &visible)?;
            }
        }
        // (8)
        for name in to_remove {
            match std::fs::remove_file(self.root.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(old)
    }

    /// Step 9.
    pub(crate) fn remove_old_dir(&self, old: Option<PathBuf>) -> std::io::Result<()> {
        match old {
            Some(old) => std::fs::remove_dir_all(self.root.join(old)),
            None => Ok(()),
        }
    }
}

fn top(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// `..2026_11_28_12_00_00.<unique>`, as kubelet's
/// `MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))`.
fn timestamp_dir_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "..{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}.{:09}{}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
