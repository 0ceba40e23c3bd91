//! Snapshot files: built from a RocksDB point-in-time view, installed
//! atomically in one `WriteBatch`. The file format is `vtask-snapfile`'s
//! (version 2; version 1 files are still read); a backup
//! (`vtask snapshot save`) is such a file with the state digest, the task
//! count and the cluster id of origin in its header ([`write_backup`]), and
//! `vtaskd restore` seeds a new cluster's data directory from one
//! ([`restore`]).
//!
//! The current snapshot is `snapshots/current.snap`; a new one is written to
//! a temporary file, fsynced and renamed over it. openraft streams the file's
//! bytes to followers in chunks of `snapshot_max_chunk_size`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use openraft::storage::Snapshot;
use openraft::{BasicNode, CommittedLeaderId, LogId, Membership, SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, WriteBatch};
use vtask_snapfile::{FileError, Header, Reader, Writer};

use crate::db::{decode, encode, Store, StoreError, CF_RAFT_META, CF_SM_META, STATE_CFS};
use crate::state_machine::view_digest;
use crate::{NodeId, TypeConfig};

pub(crate) const CURRENT: &str = "current.snap";

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;
type View<'a> = rocksdb::SnapshotWithThreadMode<'a, rocksdb::DB>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, what: &str) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("corrupt snapshot: {what}"),
        ),
    }
}

fn file_error(path: &Path) -> impl Fn(FileError) -> StoreError + '_ {
    move |e| match e {
        FileError::Io(source) => io(path)(source),
        FileError::Corrupt(what) => corrupt(path, &what),
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The snapshot metadata of the state in `view`.
fn view_meta(store: &Store, view: &View<'_>) -> Result<Meta, StoreError> {
    let meta_cf = store.cf(CF_SM_META);
    let read = |key: &[u8]| view.get_cf(meta_cf, key).map_err(|e| store.rocks(e));
    let last_log_id: Option<LogId<NodeId>> = match read(b"last_applied")? {
        Some(bytes) => decode(CF_SM_META, &bytes)?,
        None => None,
    };
    let last_membership: StoredMembership<NodeId, openraft::BasicNode> = match read(b"membership")?
    {
        Some(bytes) => decode(CF_SM_META, &bytes)?,
        None => StoredMembership::default(),
    };
    let nanos = now_nanos();
    let snapshot_id = match last_log_id {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id.term, id.index),
        None => format!("0-0-{nanos}"),
    };
    Ok(Meta {
        last_log_id,
        last_membership,
        snapshot_id,
    })
}

fn view_revision(store: &Store, view: &View<'_>) -> Result<u64, StoreError> {
    match view
        .get_cf(store.cf(CF_SM_META), b"revision")
        .map_err(|e| store.rocks(e))?
    {
        Some(bytes) => decode(CF_SM_META, &bytes),
        None => Ok(0),
    }
}

/// Writes the state in `view` as a snapshot file to `out`. With `digest`,
/// the header carries the state digest and the task count (one more pass
/// over the view; backups want it, Raft snapshots skip it).
fn write_view<W: Write>(
    store: &Store,
    view: &View<'_>,
    out: W,
    digest: bool,
) -> Result<(W, Header), StoreError> {
    let meta = view_meta(store, view)?;
    let (digest, tasks) = if digest {
        let (hex, tasks) = view_digest(store, view)?;
        (Some(hex), Some(tasks))
    } else {
        (None, None)
    };
    let header = Header {
        // The header stays JSON (one per file, read by people and tools);
        // openraft's metadata has string keys and plain values only.
        meta: serde_json::to_value(&meta).expect("snapshot metadata serializes to JSON"),
        applied_index: meta.last_log_id.map_or(0, |id| id.index),
        cluster_id: store.cluster_id()?,
        digest,
        tasks,
        revision: view_revision(store, view)?,
        created_unix_ms: (now_nanos() / 1_000_000) as u64,
    };
    let path = store.snapshot_dir();
    let mut writer = Writer::new(out, &header).map_err(io(&path))?;
    for (cf_index, name) in STATE_CFS.iter().enumerate() {
        for item in view.iterator_cf(store.cf(name), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| store.rocks(e))?;
            writer
                .record(cf_index as u8, &key, &value)
                .map_err(io(&path))?;
        }
    }
    let (out, _) = writer.finish().map_err(io(&path))?;
    Ok((out, header))
}

/// Writes a snapshot of the applied state to `current.snap`.
pub(crate) fn build(store: &Store) -> Result<(), StoreError> {
    let view = store.db.snapshot();
    let dir = store.snapshot_dir();
    let tmp = dir.join(format!("building-{}.snap", now_nanos()));
    removed_on_error(&tmp, || {
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let (out, _) = write_view(store, &view, BufWriter::new(file), false)?;
        let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        publish(&tmp, &dir)
    })
}

/// Runs `write`, which writes the file `tmp`; if it fails, removes what it
/// wrote, so a write cut short (ENOSPC on a full disk, say) leaves no
/// partial snapshot taking the space a restart needs.
fn removed_on_error(
    tmp: &Path,
    write: impl FnOnce() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let result = write();
    if result.is_err() {
        if let Err(e) = std::fs::remove_file(tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %tmp.display(), "removing a snapshot file cut short: {e}");
            }
        }
    }
    result
}

/// Writes a backup of the applied state, as of one point-in-time view taken
/// now, to `out`: a snapshot file whose header carries the state digest,
/// the task count and this cluster's id. Returns the header.
pub(crate) fn write_backup(store: &Store, out: impl Write) -> Result<Header, StoreError> {
    let view = store.db.snapshot();
    write_view(store, &view, out, true).map(|(_, header)| header)
}

/// Renames `tmp` to `current.snap` and makes the rename durable.
fn publish(tmp: &Path, dir: &Path) -> Result<(), StoreError> {
    let current = dir.join(CURRENT);
    std::fs::rename(tmp, &current).map_err(io(&current))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The openraft metadata of a snapshot file's header.
fn header_meta(header: &Header, path: &Path) -> Result<Meta, StoreError> {
    serde_json::from_value(header.meta.clone())
        .map_err(|e| corrupt(path, &format!("snapshot metadata: {e}")))
}

/// The current snapshot, positioned at its start, if there is one.
pub(crate) async fn current(store: &Store) -> Result<Option<Snapshot<TypeConfig>>, StoreError> {
    let path = store.snapshot_dir().join(CURRENT);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let reader = Reader::new(BufReader::new(&mut file)).map_err(file_error(&path))?;
    let meta = header_meta(reader.header(), &path)?;
    drop(reader);
    file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(tokio::fs::File::from_std(file)),
    }))
}

/// Reads every record of a snapshot file into `batch`, each checked to
/// decode as what its family holds, after deleting the state there is; the
/// checksum is verified before this returns. Returns the header.
fn read_into(
    store: &Store,
    input: impl Read,
    batch: &mut WriteBatch,
    path: &Path,
) -> Result<Header, StoreError> {
    let mut reader = Reader::new(input).map_err(file_error(path))?;
    for name in STATE_CFS {
        // No key of ours starts with 0xFF (u64 numbers far below 2^56, UTF-8 ids).
        batch.delete_range_cf(store.cf(name), [].as_slice(), [0xFFu8; 64].as_slice());
    }
    while let Some(record) = reader.next().map_err(file_error(path))? {
        let name = STATE_CFS
            .get(record.cf as usize)
            .ok_or_else(|| corrupt(path, "unknown column family"))?;
        // A record that this version cannot read would be found only after
        // the write, by the reload; refuse the snapshot before it.
        crate::values::visit(name, &record.key, &record.value, &mut crate::values::Check)
            .map_err(|why| corrupt(path, &why))?;
        batch.put_cf(store.cf(name), record.key, record.value);
    }
    Ok(reader.header().clone())
}

/// Replaces the state machine with the snapshot in `file`, in one synced
/// `WriteBatch`, then keeps the file as the current snapshot.
pub(crate) fn install(store: &Store, meta: &Meta, file: File) -> Result<(), StoreError> {
    let dir = store.snapshot_dir();
    let tmp = dir.join(format!("installing-{}.snap", now_nanos()));
    removed_on_error(&tmp, || install_via(store, meta, file, &tmp, &dir))
}

fn install_via(
    store: &Store,
    meta: &Meta,
    mut file: File,
    tmp: &Path,
    dir: &Path,
) -> Result<(), StoreError> {
    file.seek(SeekFrom::Start(0)).map_err(io(tmp))?;
    // Copy as we read, so the copy becomes the current snapshot afterwards.
    let copy = File::create(tmp).map_err(io(tmp))?;
    let mut tee = TeeReader {
        inner: BufReader::new(file),
        copy: BufWriter::new(copy),
    };
    let mut batch = WriteBatch::default();
    let header = read_into(store, &mut tee, &mut batch, tmp)?;
    if header_meta(&header, tmp)?.last_log_id != meta.last_log_id {
        return Err(corrupt(tmp, "snapshot file does not match its metadata"));
    }
    // The snapshot's own metadata decides what is applied.
    batch.put_cf(
        store.cf(CF_SM_META),
        b"last_applied",
        encode(&meta.last_log_id),
    );
    batch.put_cf(
        store.cf(CF_SM_META),
        b"membership",
        encode(&meta.last_membership),
    );
    store.write_synced(batch)?;

    let copy = tee.copy.into_inner().map_err(|e| io(tmp)(e.into_error()))?;
    copy.sync_all().map_err(io(tmp))?;
    publish(tmp, dir)
}

/// What [`restore`] wrote.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The backup's header.
    pub header: Header,
    /// The state digest of the restored data directory (equal to the
    /// backup's).
    pub digest: String,
}

/// Seeds the empty (or missing) data directory `dir` with the state in the
/// backup `file`, for one node of a new cluster with the voters `members`
/// and the id `cluster_id`.
///
/// The state machine gets the backup's state with `last_applied` at the
/// backup's applied index under term 0, and the new membership at that log
/// id; the Raft log stays empty and the vote unset. At its first start
/// openraft sees a state machine ahead of an empty log, purges the log up
/// to `last_applied` (so the log starts right after it) and builds a
/// snapshot from the state; the nodes then elect a leader in term 1 and the
/// next entry is the backup's index + 1. Revisions, task numbers and
/// sessions continue from the backup's counters. Term 0 keeps the vote of
/// the first election (term 1) above every log id the node holds.
///
/// The file is verified whole before `dir` is touched, and `dir` is removed
/// again if anything fails, so a failed restore leaves no half-written
/// directory behind; a non-empty `dir` is refused.
pub fn restore(
    file: &Path,
    dir: &Path,
    members: &BTreeMap<NodeId, String>,
    cluster_id: &str,
) -> Result<Restored, StoreError> {
    let open_file = || File::open(file).map_err(io(file));
    let summary = vtask_snapfile::verify(BufReader::new(open_file()?)).map_err(file_error(file))?;
    if summary.header.cluster_id.as_deref() == Some(cluster_id) {
        return Err(StoreError::Restore(format!(
            "the new cluster id {cluster_id} is the id of the cluster the backup came from; a restored cluster needs an id of its own"
        )));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StoreError::Restore(format!(
                    "{} is not empty; restore seeds a new data directory only",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir)(e)),
    }
    let existed = dir.exists();
    let result = seed(file, dir, members, cluster_id, &summary.header);
    if result.is_err() {
        // Leave nothing half-written behind: as it was, missing or empty.
        let _ = std::fs::remove_dir_all(dir);
        if existed {
            let _ = std::fs::create_dir(dir);
        }
    }
    result
}

fn seed(
    file: &Path,
    dir: &Path,
    members: &BTreeMap<NodeId, String>,
    cluster_id: &str,
    expected: &Header,
) -> Result<Restored, StoreError> {
    let store = Store::open(dir)?;
    let mut batch = WriteBatch::default();
    let input = BufReader::new(File::open(file).map_err(io(file))?);
    let header = read_into(&store, input, &mut batch, file)?;
    if header != *expected {
        return Err(corrupt(file, "the file changed while it was restored"));
    }
    let log_id = LogId::new(CommittedLeaderId::new(0, 0), header.applied_index);
    let voters = members.keys().copied().collect();
    let nodes: BTreeMap<NodeId, BasicNode> = members
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    let membership = StoredMembership::new(Some(log_id), Membership::new(vec![voters], nodes));
    let meta = store.cf(CF_SM_META);
    batch.put_cf(meta, b"last_applied", encode(&Some(log_id)));
    batch.put_cf(meta, b"membership", encode(&membership));
    batch.put_cf(
        store.cf(CF_RAFT_META),
        crate::db::CLUSTER_ID_KEY,
        encode(&cluster_id),
    );
    store.write_synced(batch)?;
    let view = store.db.snapshot();
    let (digest, _) = view_digest(&store, &view)?;
    drop(view);
    if let Some(saved) = &header.digest {
        if *saved != digest {
            return Err(StoreError::Restore(format!(
                "the restored state has digest {digest}, the backup says {saved}"
            )));
        }
    }
    store.check_format()?;
    Ok(Restored { header, digest })
}

/// Reads from `inner` and writes what it read to `copy`.
struct TeeReader<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}
