//! Both auth-profile stores in core keep the store contract.

#![allow(clippy::expect_used, reason = "test code: a failure is a panic")]

use std::path::PathBuf;

use tyrum_secrets_core::{AuthProfileStore, JsonFileAuthProfileStore};
use tyrum_secrets_testkit::profile_store::ProfileStoreFixture;

mod memory {
    tyrum_secrets_testkit::profile_store_contract!(
        tyrum_secrets_core::MemoryAuthProfileStore::new()
    );
}

/// A JSON-file store in a temporary directory, reopened from its path.
struct FileFixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: JsonFileAuthProfileStore,
}

impl FileFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("profiles.json");
        let store = JsonFileAuthProfileStore::open(&path).expect("the store opens");
        Self {
            _dir: dir,
            path,
            store,
        }
    }
}

impl ProfileStoreFixture for FileFixture {
    fn store(&self) -> &dyn AuthProfileStore {
        &self.store
    }

    fn reopen(&self) -> Option<Box<dyn AuthProfileStore>> {
        Some(Box::new(
            JsonFileAuthProfileStore::open(&self.path).expect("the store reopens"),
        ))
    }
}

mod json_file {
    use super::FileFixture;
    tyrum_secrets_testkit::profile_store_contract!(FileFixture::new());
}
