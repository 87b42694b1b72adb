//! The mounted-secret provider on real directories laid out by a double of
//! kubelet's atomic writer.

#![allow(clippy::expect_used, reason = "a test fails loudly on a broken setup")]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use support::kubelet::KubeletVolume;
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretProvider, Version, VersionSelector,
};
use tyrum_secrets_env::{FileKind, MountError, MountedSecretProvider, Rotation};

const KEYS: [&str; 3] = ["username", "password", "tls/tls.key"];
const REPEATS: usize = 512;

fn locator(name: &str) -> Locator {
    Locator::new(name).expect("test locators are valid")
}

/// Every file of generation `g` repeats `g` throughout, so a value mixed
/// from two generations, or keys from two generations, is detectable.
fn value(generation: u32, key: &str) -> Vec<u8> {
    let mut out = format!("{key}|").into_bytes();
    for _ in 0..REPEATS {
        out.extend_from_slice(format!("{generation:08};").as_bytes());
    }
    out
}

fn payload(generation: u32) -> Vec<(&'static str, Vec<u8>)> {
    KEYS.iter().map(|k| (*k, value(generation, k))).collect()
}

/// The generation a value belongs to; panics on a torn or foreign value.
fn generation_of(key: &str, bytes: &[u8]) -> u32 {
    let text = std::str::from_utf8(bytes).expect("values are ASCII");
    let body = text
        .strip_prefix(&format!("{key}|"))
        .unwrap_or_else(|| panic!("value of {key} belongs to another key"));
    let parts: Vec<&str> = body.split_terminator(';').collect();
    assert_eq!(parts.len(), REPEATS, "value of {key} is torn (length)");
    assert!(
        parts.iter().all(|p| *p == parts[0]),
        "value of {key} mixes generations"
    );
    parts[0].parse().expect("generation number")
}

fn volume(generation: u32) -> (tempfile::TempDir, KubeletVolume) {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = KubeletVolume::create(dir.path(), &payload(generation)).expect("kubelet write");
    (dir, volume)
}

fn open(root: &Path) -> MountedSecretProvider {
    MountedSecretProvider::open(root).expect("open mount")
}

fn mount_error(err: &ProviderError) -> &MountError {
    match err {
        ProviderError::Backend {
            source: Some(source),
            ..
        } => source
            .downcast_ref::<MountError>()
            .unwrap_or_else(|| panic!("Backend source is not a MountError: {err}")),
        other => panic!("expected Backend with a MountError source, got {other}"),
    }
}

#[test]
fn readers_during_a_swap_loop_see_whole_versions_and_settle_on_the_newest() {
    const GENERATIONS: u32 = 150;
    let (dir, volume) = volume(1);
    let provider = open(dir.path());
    let locators: Vec<Locator> = KEYS.iter().map(|k| locator(k)).collect();
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let unavailable = AtomicUsize::new(0);
    // version -> generation, over every read of every reader.
    let seen: Mutex<BTreeMap<Version, u32>> = Mutex::default();
    let record = |version: Version, generation: u32| {
        let mut seen = seen.lock().expect("lock");
        let earlier = *seen.entry(version).or_insert(generation);
        assert_eq!(
            earlier, generation,
            "{version} was returned for generations {earlier} and {generation}"
        );
    };
    std::thread::scope(|s| {
        for reader in 0..3 {
            let (provider, locators, done, reads, unavailable, record) =
                (&provider, &locators, &done, &reads, &unavailable, &record);
            s.spawn(move || {
                let mut last = (Version::FIRST, 1u32);
                while !done.load(Ordering::Acquire) {
                    let result = if reader == 0 {
                        provider
                            .read(&locators[1], VersionSelector::Latest)
                            .map(|got| (got.version, vec![(KEYS[1], got.value)]))
                    } else {
                        provider
                            .read_together(locators, VersionSelector::Latest)
                            .map(|snap| {
                                (
                                    snap.version,
                                    KEYS.iter().copied().zip(snap.values).collect(),
                                )
                            })
                    };
                    let (version, values) = match result {
                        Ok(ok) => ok,
                        Err(ProviderError::Unavailable { .. }) => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(e) => panic!("read during the swap loop failed: {e}"),
                    };
                    let generations: Vec<u32> = values
                        .iter()
                        .map(|(key, value)| generation_of(key, value.expose_secret()))
                        .collect();
                    assert!(
                        generations.iter().all(|g| *g == generations[0]),
                        "one read mixed generations {generations:?}"
                    );
                    let generation = generations[0];
                    assert!(
                        version >= last.0 && generation >= last.1,
                        "a reader went back from {last:?} to ({version}, {generation})"
                    );
                    last = (version, generation);
                    record(version, generation);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        s.spawn(|| {
            for generation in 2..=GENERATIONS {
                volume.write(&payload(generation)).expect("kubelet write");
            }
            done.store(true, Ordering::Release);
        });
    });
    let settled = provider
        .read_together(&locators, VersionSelector::Latest)
        .expect("read after the swaps");
    for (key, value) in KEYS.iter().zip(&settled.values) {
        assert_eq!(generation_of(key, value.expose_secret()), GENERATIONS);
    }
    record(settled.version, GENERATIONS);
    let seen = seen.into_inner().expect("lock");
    let pairs: Vec<(Version, u32)> = seen.into_iter().collect();
    assert!(
        pairs.windows(2).all(|w| w[0].1 < w[1].1),
        "version numbers do not follow swap order: {pairs:?}"
    );
    assert!(
        pairs.len() >= 3,
        "readers saw only {} versions; the swaps did not race the reads",
        pairs.len()
    );
    println!(
        "{} reads, {} versions seen, {} reads gave up as Unavailable",
        reads.load(Ordering::Relaxed),
        pairs.len(),
        unavailable.load(Ordering::Relaxed)
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_rotation_shows_up_as_a_new_version_without_reopening() {
    let (dir, volume) = volume(1);
    let provider = open(dir.path());
    let password = locator("password");
    let first = provider
        .read(&password, VersionSelector::Latest)
        .expect("read");
    assert_eq!(first.version, Version::FIRST);
    assert_eq!(generation_of("password", first.value.expose_secret()), 1);
    volume.write(&payload(2)).expect("kubelet write");
    let second = provider
        .read(&password, VersionSelector::Latest)
        .expect("read");
    assert!(second.version > first.version);
    assert_eq!(generation_of("password", second.value.expose_secret()), 2);
    // The other keys moved with it: a version names the whole directory.
    let user = provider
        .read(&locator("username"), VersionSelector::Exact(second.version))
        .expect("read");
    assert_eq!(generation_of("username", user.value.expose_secret()), 2);
    assert_eq!(
        provider.rotation().expect("rotation"),
        Rotation::FollowsDataSwap
    );
}

#[test]
fn an_old_version_reads_until_kubelet_removes_its_directory() {
    let (dir, volume) = volume(1);
    let provider = open(dir.path());
    let password = locator("password");
    let old = volume.swap(&payload(2)).expect("swap without cleanup");
    let latest = provider
        .read(&password, VersionSelector::Latest)
        .expect("read");
    let v1 = provider
        .read(&password, VersionSelector::Exact(Version::FIRST))
        .expect("v1 still on disk");
    assert_eq!(generation_of("password", v1.value.expose_secret()), 1);
    volume.remove_old_dir(old).expect("cleanup");
    let gone = provider.read(&password, VersionSelector::Exact(Version::FIRST));
    assert!(
        matches!(gone, Err(ProviderError::VersionNotFound { version, .. }) if version == Version::FIRST),
        "v1 after removal: {gone:?}"
    );
    let later = latest.version.next().expect("version space");
    let never = provider.read(&password, VersionSelector::Exact(later));
    assert!(matches!(never, Err(ProviderError::VersionNotFound { .. })));
    let versions = provider.versions(&password).expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].version, latest.version);
}

#[test]
fn a_key_dropped_by_an_update_is_not_found() {
    let (dir, volume) = volume(1);
    let provider = open(dir.path());
    volume
        .write(&[("password", value(2, "password"))])
        .expect("kubelet write");
    let result = provider.read(&locator("username"), VersionSelector::Latest);
    assert!(
        matches!(result, Err(ProviderError::NotFound { .. })),
        "{result:?}"
    );
    assert!(!dir.path().join("username").exists());
}

#[test]
fn a_missing_key_is_not_found() {
    let (dir, _volume) = volume(1);
    let result = open(dir.path()).read(&locator("no-such-key"), VersionSelector::Latest);
    assert!(
        matches!(&result, Err(ProviderError::NotFound { locator }) if locator.as_str() == "no-such-key"),
        "{result:?}"
    );
}

#[test]
fn a_dangling_visible_symlink_is_a_typed_error() {
    let (dir, volume) = volume(1);
    // The visible entry exists but its file is gone from the data directory.
    let target = volume.data_target().expect("..data");
    std::fs::remove_file(dir.path().join(target).join("password")).expect("remove");
    let err = open(dir.path())
        .read(&locator("password"), VersionSelector::Latest)
        .expect_err("dangling");
    assert!(
        matches!(mount_error(&err), MountError::DanglingSymlink { path } if path.ends_with("password")),
        "{err}"
    );

    // A plain mount holds no symlinks of kubelet's: one there, dangling or
    // not, is refused as a symlink.
    let plain = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("nowhere", plain.path().join("token")).expect("symlink");
    assert_refused_as_symlink(open(plain.path()).read(&locator("token"), VersionSelector::Latest));
}

#[test]
fn a_directory_in_place_of_a_file_is_a_typed_error() {
    let (dir, _volume) = volume(1);
    // `tls` is a directory of the projection, not a key.
    let err = open(dir.path())
        .read(&locator("tls"), VersionSelector::Latest)
        .expect_err("directory");
    assert!(
        matches!(
            mount_error(&err),
            MountError::NotAFile {
                found: FileKind::Directory,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_fifo_in_place_of_a_file_is_a_typed_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    // Without O_NONBLOCK this open would wait forever for a writer.
    let err = open(dir.path())
        .read(&locator("pipe"), VersionSelector::Latest)
        .expect_err("fifo");
    assert!(
        matches!(
            mount_error(&err),
            MountError::NotAFile {
                found: FileKind::Fifo,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_symlink_inside_the_data_directory_is_refused_not_followed() {
    let (dir, volume) = volume(1);
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("host-file"), b"outside-the-mount").expect("write");
    let data = dir.path().join(volume.data_target().expect("..data"));
    std::fs::remove_file(data.join("password")).expect("remove");
    std::os::unix::fs::symlink(outside.path().join("host-file"), data.join("password"))
        .expect("symlink");
    let err = open(dir.path())
        .read(&locator("password"), VersionSelector::Latest)
        .expect_err("symlink");
    assert!(
        matches!(
            mount_error(&err),
            MountError::NotAFile {
                found: FileKind::Symlink,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_file_over_the_limit_is_value_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    KubeletVolume::create(
        dir.path(),
        &[
            ("big", vec![b'x'; (1 << 20) + 1]),
            ("at-limit", vec![b'y'; 1 << 20]),
        ],
    )
    .expect("kubelet write");
    let provider = open(dir.path());
    let err = provider
        .read(&locator("big"), VersionSelector::Latest)
        .expect_err("too large");
    assert!(
        matches!(err, ProviderError::ValueTooLarge { len, max } if len == (1 << 20) + 1 && max == 1 << 20),
        "{err}"
    );
    let ok = provider
        .read(&locator("at-limit"), VersionSelector::Latest)
        .expect("1 MiB reads");
    assert_eq!(ok.value.expose_secret().len(), 1 << 20);

    let small = open(dir.path()).with_max_file_len(16);
    assert_eq!(small.capabilities().max_value_len, Some(16));
    let err = small
        .read(&locator("at-limit"), VersionSelector::Latest)
        .expect_err("over a custom limit");
    assert!(
        matches!(err, ProviderError::ValueTooLarge { max: 16, .. }),
        "{err}"
    );
}

#[test]
fn an_unreadable_file_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked");
    std::fs::write(&path, b"locked-secret-value").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::File::open(&path).is_ok() {
        // root (CAP_DAC_OVERRIDE) reads mode 000 files. The
        // `mounted_privileges` test re-runs this case as an unprivileged user.
        println!(
            "skipped: this process reads mode-000 files (root); tests/mounted_privileges.rs covers it"
        );
        return;
    }
    let err = open(dir.path())
        .read(&locator("locked"), VersionSelector::Latest)
        .expect_err("unreadable");
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err}"
    );
}

#[test]
fn a_subpath_style_plain_file_reads_and_is_reported_static() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("api-key"), b"sk-subpath-value-77").expect("write");
    let provider = open(dir.path());
    assert_eq!(provider.rotation().expect("rotation"), Rotation::Static);
    let got = provider
        .read(&locator("api-key"), VersionSelector::Latest)
        .expect("read");
    assert_eq!(got.version, Version::FIRST);
    assert_eq!(got.value.expose_secret(), b"sk-subpath-value-77");
    let exact = provider.read(
        &locator("api-key"),
        VersionSelector::Exact(Version::FIRST.next().expect("v2")),
    );
    assert!(matches!(exact, Err(ProviderError::VersionNotFound { .. })));
}

#[test]
fn locators_that_escape_or_name_kubelet_internals_are_refused() {
    let (dir, _volume) = volume(1);
    let outside = dir.path().parent().expect("parent").to_path_buf();
    let provider = open(dir.path());
    for bad in [
        "../escape",
        "..data/password",
        "..data",
        "a//b",
        "/etc/passwd",
        "tls/../password",
        "./password",
    ] {
        let err = provider
            .read(&locator(bad), VersionSelector::Latest)
            .expect_err(bad);
        assert!(
            matches!(mount_error(&err), MountError::InvalidLocator { .. }),
            "{bad}: {err}"
        );
    }
    assert!(outside.exists());
}

#[test]
fn a_nested_projected_path_reads() {
    let (dir, _volume) = volume(4);
    let got = open(dir.path())
        .read(&locator("tls/tls.key"), VersionSelector::Latest)
        .expect("read");
    assert_eq!(generation_of("tls/tls.key", got.value.expose_secret()), 4);
}

#[test]
fn list_reports_keys_and_hides_kubelet_internals() {
    let (dir, volume) = volume(1);
    volume.write(&payload(2)).expect("kubelet write");
    let listed = open(dir.path()).list().expect("list");
    let names: Vec<&str> = listed.iter().map(Locator::as_str).collect();
    assert_eq!(names, ["password", "tls/tls.key", "username"]);
}

#[test]
fn opening_a_missing_root_or_a_file_fails_with_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = MountedSecretProvider::open(dir.path().join("absent"));
    assert!(matches!(missing, Err(MountError::RootMissing { .. })));
    std::fs::write(dir.path().join("file"), b"x").expect("write");
    let file = MountedSecretProvider::open(dir.path().join("file"));
    assert!(matches!(file, Err(MountError::RootNotADirectory { .. })));
}

#[test]
fn a_data_link_that_is_not_a_symlink_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("..data")).expect("mkdir");
    assert!(matches!(
        MountedSecretProvider::open(dir.path()),
        Err(MountError::DataLinkInvalid { .. })
    ));
    let (dir, _volume) = volume(1);
    let provider = open(dir.path());
    std::fs::remove_file(dir.path().join("..data")).expect("rm");
    std::os::unix::fs::symlink("/etc", dir.path().join("..data")).expect("symlink");
    let err = provider
        .read(&locator("password"), VersionSelector::Latest)
        .expect_err("absolute ..data");
    assert!(matches!(err, ProviderError::Corrupt { .. }), "{err}");
}

#[test]
fn debug_of_the_provider_snapshots_and_errors_holds_no_value() {
    const CANARY: &str = "CANARY-mounted-5e1d2c9b";
    let dir = tempfile::tempdir().expect("tempdir");
    KubeletVolume::create(
        dir.path(),
        &[
            ("token", CANARY.as_bytes().to_vec()),
            ("big", CANARY.repeat(8).into_bytes()),
        ],
    )
    .expect("kubelet write");
    let provider = open(dir.path()).with_max_file_len(CANARY.len() + 1);
    let read = provider
        .read(&locator("token"), VersionSelector::Latest)
        .expect("read");
    let snapshot = provider
        .read_together(&[locator("token")], VersionSelector::Latest)
        .expect("read");
    let too_large = provider
        .read(&locator("big"), VersionSelector::Latest)
        .expect_err("too large");
    let tls = provider
        .read(&locator("token/x"), VersionSelector::Latest)
        .expect_err("not a dir");
    let text = format!(
        "{provider:?} {provider:#?} {read:?} {snapshot:?} {too_large:?} {too_large} {tls:?} {tls}"
    );
    assert!(!text.contains("CANARY"), "a value leaked: {text}");
}

#[test]
fn a_missing_key_at_the_current_version_is_not_found() {
    let (dir, _volume) = volume(1);
    let result = open(dir.path()).read(
        &locator("no-such-key"),
        VersionSelector::Exact(Version::FIRST),
    );
    assert!(
        matches!(result, Err(ProviderError::NotFound { .. })),
        "{result:?}"
    );
}

#[test]
fn read_together_reads_matching_keys_and_refuses_an_empty_list() {
    let (dir, volume) = volume(1);
    let provider = open(dir.path());
    volume.write(&payload(7)).expect("kubelet write");
    let locators: Vec<Locator> = KEYS.iter().map(|k| locator(k)).collect();
    let snapshot = provider
        .read_together(&locators, VersionSelector::Latest)
        .expect("read");
    assert_eq!(snapshot.values.len(), KEYS.len());
    for (key, value) in KEYS.iter().zip(&snapshot.values) {
        assert_eq!(generation_of(key, value.expose_secret()), 7);
    }
    let err = provider
        .read_together(&[], VersionSelector::Latest)
        .expect_err("empty");
    assert!(matches!(mount_error(&err), MountError::NoLocators), "{err}");
    let err = provider
        .read_together(
            &[locator("username"), locator("absent")],
            VersionSelector::Latest,
        )
        .expect_err("one missing");
    assert!(
        matches!(&err, ProviderError::NotFound { locator } if locator.as_str() == "absent"),
        "{err}"
    );
}

/// A directory holding `tls.key` and `password` outside the mount.
fn outside_dir() -> tempfile::TempDir {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("tls.key"), b"CANARY-outside-tls").expect("write");
    std::fs::write(outside.path().join("password"), b"CANARY-outside-pass").expect("write");
    outside
}

fn assert_refused_as_symlink(result: Result<tyrum_secrets_core::VersionedSecret, ProviderError>) {
    match result {
        Ok(got) => panic!(
            "read through a symlink out of the mount: {:?}",
            String::from_utf8_lossy(got.value.expose_secret())
        ),
        Err(err) => assert!(
            matches!(
                mount_error(&err),
                MountError::NotAFile {
                    found: FileKind::Symlink,
                    ..
                }
            ),
            "{err}"
        ),
    }
}

#[test]
fn a_symlinked_directory_inside_the_data_directory_is_refused_not_followed() {
    let (dir, volume) = volume(1);
    let outside = outside_dir();
    let data = dir.path().join(volume.data_target().expect("..data"));
    std::fs::remove_dir_all(data.join("tls")).expect("remove");
    std::os::unix::fs::symlink(outside.path(), data.join("tls")).expect("symlink");
    assert_refused_as_symlink(
        open(dir.path()).read(&locator("tls/tls.key"), VersionSelector::Latest),
    );
}

#[test]
fn a_data_link_whose_target_is_a_symlink_is_refused_not_followed() {
    let (dir, _volume) = volume(1);
    let outside = outside_dir();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("..evil")).expect("symlink");
    std::os::unix::fs::symlink("..evil", dir.path().join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("swap");
    assert_refused_as_symlink(open(dir.path()).read(&locator("password"), VersionSelector::Latest));
}

#[test]
fn listing_a_plain_directory_with_symlink_loops_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), b"plain-token-value").expect("write");
    // Directory symlinks back to the root: each level of the walk would
    // multiply the work by their number (4^16 directories at the depth cap).
    for name in ["a", "b", "c", "d"] {
        std::os::unix::fs::symlink(".", dir.path().join(name)).expect("symlink");
    }
    let provider = open(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(provider.list().map_err(|e| e.to_string()));
    });
    // Generous bound: only "does not hang".
    let listed = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("list() hangs on symlink loops")
        .expect("list");
    assert!(listed.contains(&locator("token")), "{listed:?}");
}

#[test]
fn listing_through_a_data_link_whose_target_is_a_symlink_is_refused() {
    let (dir, _volume) = volume(1);
    let outside = outside_dir();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("..evil")).expect("symlink");
    std::os::unix::fs::symlink("..evil", dir.path().join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("swap");
    match open(dir.path()).list() {
        Ok(listed) => panic!("listed a directory outside the mount: {listed:?}"),
        Err(err) => assert!(
            matches!(
                mount_error(&err),
                MountError::NotAFile {
                    found: FileKind::Symlink,
                    ..
                }
            ),
            "{err}"
        ),
    }
}

/// A plain directory (a `subPath` mount, files written by hand) gets the
/// same no-follow reads as kubelet's data directory: a planted symlink,
/// for the file or a directory on the way, is refused, never followed out
/// of the mount.
#[test]
fn a_symlink_planted_in_a_plain_mount_is_refused_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = outside_dir();
    std::fs::write(dir.path().join("token"), b"plain-token-value").expect("write");
    std::os::unix::fs::symlink(outside.path().join("password"), dir.path().join("password"))
        .expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("tls")).expect("symlink");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    std::os::unix::fs::symlink(
        outside.path().join("password"),
        dir.path().join("nested").join("password"),
    )
    .expect("symlink");
    let provider = open(dir.path());
    assert_eq!(provider.rotation().expect("rotation"), Rotation::Static);
    for name in ["password", "tls/tls.key", "nested/password"] {
        assert_refused_as_symlink(provider.read(&locator(name), VersionSelector::Latest));
    }
    let got = provider
        .read(&locator("token"), VersionSelector::Latest)
        .expect("a regular file reads");
    assert_eq!(got.value.expose_secret(), b"plain-token-value");
    // list() names only what read() returns.
    let listed = provider.list().expect("list");
    assert_eq!(listed, vec![locator("token")]);
}

/// The operator's mount root may itself be reached through a symlink
/// (`/var/run/secrets/app -> /mnt/...`): only what lies under it is held
/// to no-follow.
#[test]
fn a_plain_mount_root_reached_through_a_symlink_still_reads() {
    let real = tempfile::tempdir().expect("tempdir");
    std::fs::write(real.path().join("token"), b"plain-token-value").expect("write");
    let links = tempfile::tempdir().expect("tempdir");
    let root = links.path().join("app");
    std::os::unix::fs::symlink(real.path(), &root).expect("symlink");
    let got = open(&root)
        .read(&locator("token"), VersionSelector::Latest)
        .expect("read under a symlinked root");
    assert_eq!(got.value.expose_secret(), b"plain-token-value");
}
