//! openraft's storage conformance suite (`openraft::testing::Suite`) run against the redb log
//! store and state machine, each case on fresh files in a temp directory.

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use super::{StorageError, TypeConfig};

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RedbBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(&dir.path().join("log.redb")).expect("open log");
        let sm = StateMachineStore::open(
            &dir.path().join("state.redb"),
            &dir.path().join("snapshot.bin"),
        )
        .expect("open sm");
        Ok((dir, log, sm))
    }
}

#[test]
#[allow(clippy::unwrap_used)]
fn openraft_storage_suite() {
    // The suite runs each case on a runtime of its own.
    Suite::test_all(RedbBuilder).unwrap();
}
