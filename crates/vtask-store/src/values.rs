//! What every stored value is, written once: [`visit`] names the type of
//! the value under each key of each column family, and a [`ValueVisitor`]
//! does one thing with it. Two visitors use the table: the snapshot check
//! (every record of a snapshot file must decode before it is installed) and
//! the upgrade of a format 3 (JSON) data directory to format 4 at open.

use openraft::{LogId, StoredMembership, Vote};
use rocksdb::{IteratorMode, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;
use vtask_model::Outcome;

use crate::codec;
use crate::db::{
    format_bytes, parse_format, Store, StoreError, CF_CHANGES, CF_COLLECTORS, CF_HISTORY, CF_INDEX,
    CF_RAFT_LOG, CF_RAFT_META, CF_REPLIES, CF_SESSIONS, CF_SM_META, CF_TASKS, CLUSTER_ID_KEY,
    FORMAT_VERSION, STATE_CFS,
};
use crate::types::{ChangeRecord, Session, StoredReply};
use crate::{NodeId, TypeConfig};

/// The most values the upgrade rewrites in one `WriteBatch`.
const MIGRATE_BATCH: usize = 4096;

/// What to do with one stored value, given its type. Each method returns the
/// bytes to store instead, if any.
pub(crate) trait ValueVisitor {
    fn value<T: Serialize + DeserializeOwned>(
        &mut self,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, String>;
    /// A `replies` value: [`StoredReply`] now, a bare `Outcome` in format 3.
    fn stored_reply(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// `sm_meta/format`.
    fn format(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

/// Hands the value under `key` in `cf` to `visitor` as what it is.
pub(crate) fn visit(
    cf: &str,
    key: &[u8],
    bytes: &[u8],
    visitor: &mut impl ValueVisitor,
) -> Result<Option<Vec<u8>>, String> {
    match cf {
        CF_TASKS => visitor.value::<vtask_model::Task>(bytes),
        CF_SESSIONS => visitor.value::<Session>(bytes),
        CF_REPLIES => visitor.stored_reply(bytes),
        CF_CHANGES => visitor.value::<ChangeRecord>(bytes),
        CF_COLLECTORS => visitor.value::<vtask_model::Collector>(bytes),
        CF_INDEX | CF_HISTORY if bytes.is_empty() => Ok(None),
        CF_INDEX | CF_HISTORY => Err(format!("a {cf} entry with a value")),
        CF_SM_META => match key {
            b"last_applied" => visitor.value::<Option<LogId<NodeId>>>(bytes),
            b"membership" => visitor.value::<StoredMembership<NodeId, openraft::BasicNode>>(bytes),
            b"counters" => visitor.value::<vtask_model::Counters>(bytes),
            b"revision" | b"pruned_through" => visitor.value::<u64>(bytes),
            b"format" => visitor.format(bytes),
            other => Err(format!(
                "unknown state key {:?}",
                String::from_utf8_lossy(other)
            )),
        },
        CF_RAFT_LOG => visitor.value::<openraft::Entry<TypeConfig>>(bytes),
        CF_RAFT_META => match key {
            b"vote" => visitor.value::<Vote<NodeId>>(bytes),
            b"committed" | b"last_purged" => visitor.value::<Option<LogId<NodeId>>>(bytes),
            CLUSTER_ID_KEY => visitor.value::<String>(bytes),
            other => Err(format!(
                "unknown Raft key {:?}",
                String::from_utf8_lossy(other)
            )),
        },
        other => Err(format!("unknown column family {other}")),
    }
}

/// Checks that a value decodes as what its key holds in this format.
pub(crate) struct Check;

impl ValueVisitor for Check {
    fn value<T: Serialize + DeserializeOwned>(
        &mut self,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        match codec::from_bytes::<T>(bytes) {
            Ok(_) => Ok(None),
            Err(_) if serde_json::from_slice::<T>(bytes).is_ok() => Err(format!(
                "a JSON value (value format 3); this version reads format {FORMAT_VERSION}: restore the backup with the version that wrote it, start this version on that data directory to upgrade it, and take a new backup"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    fn stored_reply(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.value::<StoredReply>(bytes)
    }

    fn format(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match parse_format(bytes) {
            Some(FORMAT_VERSION) => Ok(None),
            Some(other) => Err(format!(
                "value format {other}, this version reads {FORMAT_VERSION}"
            )),
            None => Err(format!(
                "format {:?} is not a version",
                String::from_utf8_lossy(bytes)
            )),
        }
    }
}

/// Rewrites a format 3 (JSON) value in this format; a value already
/// rewritten (by an upgrade that was cut short) is left as it is.
struct FromJson;

impl ValueVisitor for FromJson {
    fn value<T: Serialize + DeserializeOwned>(
        &mut self,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        from_json::<T, T>(bytes, |value| value)
    }

    fn stored_reply(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        from_json::<Outcome, StoredReply>(bytes, StoredReply::Outcome)
    }

    fn format(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

/// `bytes` as the JSON of an `Old`, re-encoded as `into(old)`; `None` when
/// they already decode as a `New`.
fn from_json<Old: DeserializeOwned, New: Serialize + DeserializeOwned>(
    bytes: &[u8],
    into: impl FnOnce(Old) -> New,
) -> Result<Option<Vec<u8>>, String> {
    // No MessagePack value of these families is valid JSON (they are maps,
    // strings or nil), except the numbers of sm_meta, which the upgrade
    // rewrites last, in the write that records the new format.
    match serde_json::from_slice::<Old>(bytes) {
        Ok(old) => Ok(Some(codec::to_bytes(&into(old)))),
        Err(json) => match codec::from_bytes::<New>(bytes) {
            Ok(_) => Ok(None),
            Err(_) => Err(format!("neither JSON ({json}) nor this version's format")),
        },
    }
}

/// Puts into `batch` the new bytes `visitor` gives for each value of `cf`;
/// with `flush_every`, writes the batch (unsynced) each time it holds that
/// many. Returns how many values it rewrote.
fn rewrite_family(
    store: &Store,
    cf: &'static str,
    visitor: &mut impl ValueVisitor,
    batch: &mut WriteBatch,
    flush_every: Option<usize>,
) -> Result<u64, StoreError> {
    let handle = store.cf(cf);
    let mut rewritten = 0;
    for item in store.db.iterator_cf(handle, IteratorMode::Start) {
        let (key, value) = item.map_err(|e| store.rocks(e))?;
        let bytes = visit(cf, &key, &value, visitor).map_err(|why| StoreError::Migrate {
            path: store.dir.clone(),
            why: format!("{cf} key {key:?}: {why}"),
        })?;
        if let Some(bytes) = bytes {
            batch.put_cf(handle, &key, bytes);
            rewritten += 1;
        }
        if flush_every.is_some_and(|n| batch.len() >= n) {
            store
                .db
                .write(std::mem::take(batch))
                .map_err(|e| store.rocks(e))?;
        }
    }
    Ok(rewritten)
}

/// Upgrades a format 3 store in place: every value of every family is
/// rewritten from JSON, then `sm_meta` and the new format in one synced
/// write, so a crash at any point leaves a store that the next open upgrades
/// again (values already rewritten are skipped). The current snapshot file,
/// whose records are JSON, is rebuilt from the upgraded state. Returns how
/// many values were rewritten.
pub(crate) fn migrate_from_json(store: &Store) -> Result<u64, StoreError> {
    let mut rewritten = 0;
    let families = [CF_RAFT_LOG, CF_RAFT_META]
        .into_iter()
        .chain(STATE_CFS.into_iter().filter(|cf| *cf != CF_SM_META));
    for cf in families {
        let mut batch = WriteBatch::default();
        rewritten += rewrite_family(store, cf, &mut FromJson, &mut batch, Some(MIGRATE_BATCH))?;
        store.db.write(batch).map_err(|e| store.rocks(e))?;
    }
    let mut batch = WriteBatch::default();
    rewritten += rewrite_family(store, CF_SM_META, &mut FromJson, &mut batch, None)?;
    batch.put_cf(
        store.cf(CF_SM_META),
        b"format",
        format_bytes(FORMAT_VERSION),
    );
    store.write_synced(batch)?;
    if store.snapshot_dir().join(crate::snapshot::CURRENT).exists() {
        crate::snapshot::build(store)?;
    }
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload};
    use vtask_model::{Caller, Command, CreateTask, MoRef, Privileges, Reply, TaskKey, Timestamp};

    use super::*;
    use crate::{Batch, ClientRef, Request};

    /// The reverse of the upgrade, for tests only: turns a format 4 store
    /// into the format 3 store an older vtaskd would have written.
    struct ToJson<'a>(&'a Store);

    impl ValueVisitor for ToJson<'_> {
        fn value<T: Serialize + DeserializeOwned>(
            &mut self,
            bytes: &[u8],
        ) -> Result<Option<Vec<u8>>, String> {
            let value: T = codec::from_bytes(bytes).map_err(|e| e.to_string())?;
            Ok(Some(serde_json::to_vec(&value).unwrap()))
        }

        fn stored_reply(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
            let outcome: Outcome = match codec::from_bytes(bytes).map_err(|e| e.to_string())? {
                StoredReply::Outcome(outcome) => outcome,
                StoredReply::Change { revision, .. } => {
                    let record: ChangeRecord = self
                        .0
                        .get(CF_CHANGES, &revision.to_be_bytes())
                        .map_err(|e| e.to_string())?
                        .expect("the change a reply refers to");
                    Ok(Reply::Task { info: record.info })
                }
            };
            Ok(Some(serde_json::to_vec(&outcome).unwrap()))
        }

        fn format(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Ok(Some(b"3".to_vec()))
        }
    }

    fn downgrade(store: &Store) {
        // Replies first: they read the change records in this format.
        let families = [CF_REPLIES, CF_RAFT_LOG, CF_RAFT_META]
            .into_iter()
            .chain(STATE_CFS.into_iter().filter(|cf| *cf != CF_REPLIES));
        for cf in families {
            let mut batch = WriteBatch::default();
            rewrite_family(store, cf, &mut ToJson(store), &mut batch, None).unwrap();
            store.db.write(batch).unwrap();
        }
    }

    fn request(seq: u64, command: Command) -> Request {
        Request {
            client: Some(ClientRef {
                id: "client-1".into(),
                seq,
            }),
            caller: Caller::user("alice", Privileges::ALL),
            command,
        }
    }

    fn entry(index: u64, requests: Vec<Request>) -> openraft::Entry<TypeConfig> {
        openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch {
                time: Timestamp::from_micros(1_700_000_000_000_000 + index as i64),
                requests: requests.into(),
            }),
        }
    }

    fn create() -> Command {
        Command::CreateTask(CreateTask {
            obj: MoRef::new("VirtualMachine", "vm-1"),
            task_type_id: "com.example.Deploy".into(),
            cancelable: true,
            ..Default::default()
        })
    }

    fn progress(percent_done: i32) -> Command {
        Command::UpdateProgress {
            task: "task-1".into(),
            percent_done,
            progress_details: None,
            api_version: Default::default(),
        }
    }

    /// The reply to the last request of `entry`.
    async fn apply(sm: &mut crate::StateMachine, entry: openraft::Entry<TypeConfig>) -> Outcome {
        let mut replies = sm.apply(vec![entry]).await.unwrap();
        replies.pop().unwrap().outcomes.pop().unwrap()
    }

    fn progress_of(sm: &crate::StateMachine) -> Option<i32> {
        let task = sm.read_view().task(TaskKey(1)).unwrap().unwrap();
        task.info.progress
    }

    /// A format 3 store, as the previous vtaskd left it: task-1 created,
    /// started and moved to 40%, the log entries that did it, and a vote. Returns the
    /// replies.
    async fn format_3_store(dir: &std::path::Path) -> Vec<Outcome> {
        let (mut log, mut sm) = crate::open(dir).unwrap();
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        let running = Command::SetTaskState {
            task: "task-1".into(),
            state: vtask_model::State::Running,
            result: None,
            fault: None,
        };
        let entries = [
            entry(1, vec![request(1, create())]),
            entry(2, vec![request(2, running), request(3, progress(40))]),
        ];
        let mut outcomes = Vec::new();
        for e in &entries {
            outcomes.push(apply(&mut sm, e.clone()).await);
        }
        drop((log, sm));
        let store = Store::open_unchecked(dir).unwrap();
        for e in &entries {
            let key = e.log_id.index.to_be_bytes();
            store
                .db
                .put_cf(store.cf(CF_RAFT_LOG), key, codec::to_bytes(e))
                .unwrap();
        }
        downgrade(&store);
        outcomes
    }

    #[tokio::test]
    async fn a_format_3_store_is_upgraded_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = format_3_store(dir.path()).await;
        {
            // Format 3 as an older vtaskd wrote it: JSON, and the format key says so.
            let store = Store::open_unchecked(dir.path()).unwrap();
            let task = store
                .db
                .get_cf(store.cf(CF_TASKS), 1u64.to_be_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(task[0], b'{');
            // A format 3 backup's records are refused with what to do.
            let why = visit(CF_TASKS, b"k", &task, &mut Check).unwrap_err();
            assert!(
                why.contains("value format 3")
                    && why.contains("restore the backup with the version that wrote it"),
                "{why}"
            );
            let format = store
                .db
                .get_cf(store.cf(CF_SM_META), b"format")
                .unwrap()
                .unwrap();
            assert_eq!(format, b"3");
        }
        let (mut log, mut sm) = crate::open(dir.path()).unwrap();
        // The same state, the same log, the same vote, now in format 4.
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(1, 1)));
        let entries = log.try_get_log_entries(1..3).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert!(
            matches!(&entries[1].payload, EntryPayload::Normal(b) if b.requests[1].command == progress(40))
        );
        assert_eq!(progress_of(&sm), Some(40));
        // Retries are answered from the upgraded replies; new calls apply.
        assert_eq!(
            apply(&mut sm, entry(3, vec![request(1, create())])).await,
            outcomes[0]
        );
        assert_eq!(
            apply(&mut sm, entry(4, vec![request(3, progress(40))])).await,
            outcomes[1]
        );
        let next = apply(&mut sm, entry(5, vec![request(4, progress(70))])).await;
        assert_eq!(next.unwrap().info().unwrap().progress, Some(70));
        drop((log, sm));
        {
            let store = Store::open_unchecked(dir.path()).unwrap();
            let format = store
                .db
                .get_cf(store.cf(CF_SM_META), b"format")
                .unwrap()
                .unwrap();
            assert_eq!(format, b"4");
            let task = store
                .db
                .get_cf(store.cf(CF_TASKS), 1u64.to_be_bytes())
                .unwrap()
                .unwrap();
            assert!(codec::from_bytes::<vtask_model::Task>(&task).is_ok());
        }
        let (_, sm) = crate::open(dir.path()).unwrap();
        assert_eq!(progress_of(&sm), Some(70));
    }

    #[tokio::test]
    async fn an_upgrade_cut_short_is_finished_by_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = format_3_store(dir.path()).await;
        let whole = tempfile::tempdir().unwrap();
        format_3_store(whole.path()).await;
        let digest = crate::open(whole.path())
            .unwrap()
            .1
            .read_view()
            .digest()
            .unwrap();
        {
            // Cut short: tasks, the log and the replies rewritten, the rest not.
            let store = Store::open_unchecked(dir.path()).unwrap();
            for cf in [CF_TASKS, CF_RAFT_LOG, CF_REPLIES] {
                let handle = store.cf(cf);
                let mut batch = WriteBatch::default();
                for item in store.db.iterator_cf(handle, IteratorMode::Start) {
                    let (key, value) = item.unwrap();
                    let bytes = visit(cf, &key, &value, &mut FromJson).unwrap().unwrap();
                    batch.put_cf(handle, &key, bytes);
                }
                store.db.write(batch).unwrap();
            }
        }
        let (_, mut sm) = crate::open(dir.path()).unwrap();
        assert_eq!(
            sm.read_view().digest().unwrap(),
            digest,
            "as if never cut short"
        );
        assert_eq!(
            apply(&mut sm, entry(3, vec![request(3, progress(40))])).await,
            outcomes[1]
        );
    }

    #[test]
    fn an_unknown_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::open(dir.path()).unwrap());
        for (stored, expect) in [
            (&b"2"[..], "holds value format 2"),
            (b"5", "holds value format 5"),
            (b"x", "not a format version"),
        ] {
            {
                let store = Store::open_unchecked(dir.path()).unwrap();
                store
                    .db
                    .put_cf(store.cf(CF_SM_META), b"format", stored)
                    .unwrap();
            }
            let error = crate::open(dir.path()).err().expect("refused").to_string();
            assert!(error.contains(expect), "{error}");
            if stored != b"x" {
                assert!(
                    error.contains("start it with the vtaskd that wrote the directory"),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn a_snapshot_record_in_json_is_refused_with_what_to_do() {
        let task = serde_json::to_vec(&BTreeMap::from([("x", 1)])).unwrap();
        assert!(visit(CF_TASKS, b"k", &task, &mut Check).is_err());
        let revision = serde_json::to_vec(&5u64).unwrap();
        // JSON `5` is a MessagePack number too: only the format key tells.
        assert!(visit(CF_SM_META, b"revision", &revision, &mut Check).is_ok());
        let why = visit(CF_SM_META, b"format", b"3", &mut Check).unwrap_err();
        assert!(
            why.contains("value format 3, this version reads 4"),
            "{why}"
        );
    }
}
