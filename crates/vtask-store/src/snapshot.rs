//! Snapshot files: built from a RocksDB point-in-time view, installed
//! atomically in one `WriteBatch`.
//!
//! # File format (version 1)
//!
//! ```text
//! "VTASKSNAP1\n"                       magic and version
//! u32 BE length, JSON SnapshotMeta     what the snapshot covers
//! records:  u8 column family (index into STATE_CFS),
//!           u32 BE key length, key, u32 BE value length, value
//! u8 0xFF                              end of records
//! 32 bytes                             SHA-256 of everything before it
//! ```
//!
//! The current snapshot is `snapshots/current.snap`; a new one is written to
//! a temporary file, fsynced and renamed over it. openraft streams the file's
//! bytes to followers in chunks of `snapshot_max_chunk_size`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use openraft::storage::Snapshot;
use openraft::{LogId, SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use sha2::{Digest, Sha256};

use crate::db::{
    decode, encode, Store, StoreError, CF_CHANGES, CF_COLLECTORS, CF_HISTORY, CF_INDEX, CF_REPLIES,
    CF_SESSIONS, CF_SM_META, CF_TASKS, STATE_CFS,
};
use crate::types::{ChangeRecord, Session};
use crate::{NodeId, TypeConfig};

const MAGIC: &[u8] = b"VTASKSNAP1\n";
const END: u8 = 0xFF;
const CURRENT: &str = "current.snap";

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

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

/// Writes a snapshot of the applied state to `current.snap`.
pub(crate) fn build(store: &Store) -> Result<(), StoreError> {
    let view = store.db.snapshot();
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
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let snapshot_id = match last_log_id {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id.term, id.index),
        None => format!("0-0-{nanos}"),
    };
    let meta = Meta {
        last_log_id,
        last_membership,
        snapshot_id,
    };

    let dir = store.snapshot_dir();
    let tmp = dir.join(format!("building-{nanos}.snap"));
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut out = HashingWriter {
        inner: BufWriter::new(file),
        hasher: Sha256::new(),
    };
    write_header(&mut out, &meta).map_err(io(&tmp))?;
    for (cf_index, name) in STATE_CFS.iter().enumerate() {
        for item in view.iterator_cf(store.cf(name), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| store.rocks(e))?;
            out.write_all(&[cf_index as u8]).map_err(io(&tmp))?;
            write_chunk(&mut out, &key).map_err(io(&tmp))?;
            write_chunk(&mut out, &value).map_err(io(&tmp))?;
        }
    }
    out.write_all(&[END]).map_err(io(&tmp))?;
    let digest = out.hasher.finalize();
    let mut inner = out.inner;
    inner.write_all(&digest).map_err(io(&tmp))?;
    let file = inner.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io(&tmp))?;
    publish(&tmp, &dir)
}

/// Renames `tmp` to `current.snap` and makes the rename durable.
fn publish(tmp: &Path, dir: &Path) -> Result<(), StoreError> {
    let current = dir.join(CURRENT);
    std::fs::rename(tmp, &current).map_err(io(&current))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn write_header(out: &mut impl Write, meta: &Meta) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    write_chunk(out, &encode(meta))
}

fn write_chunk(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("value longer than 4 GiB"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

fn read_chunk(input: &mut impl Read, path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(io(path))?;
    let len = u32::from_be_bytes(len) as usize;
    let mut bytes = Vec::new();
    input
        .by_ref()
        .take(len as u64)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() != len {
        return Err(corrupt(path, "truncated record"));
    }
    Ok(bytes)
}

fn read_header(input: &mut impl Read, path: &Path) -> Result<Meta, StoreError> {
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic).map_err(io(path))?;
    if magic != MAGIC {
        return Err(corrupt(path, "bad magic"));
    }
    decode(CF_SM_META, &read_chunk(input, path)?)
}

/// The current snapshot, positioned at its start, if there is one.
pub(crate) async fn current(store: &Store) -> Result<Option<Snapshot<TypeConfig>>, StoreError> {
    let path = store.snapshot_dir().join(CURRENT);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let meta = read_header(&mut BufReader::new(&mut file), &path)?;
    file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(tokio::fs::File::from_std(file)),
    }))
}

/// Replaces the state machine with the snapshot in `file`, in one synced
/// `WriteBatch`, then keeps the file as the current snapshot.
pub(crate) fn install(store: &Store, meta: &Meta, mut file: File) -> Result<(), StoreError> {
    let dir = store.snapshot_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = dir.join(format!("installing-{nanos}.snap"));
    file.seek(SeekFrom::Start(0)).map_err(io(&tmp))?;
    // Copy as we read, so the copy becomes the current snapshot afterwards.
    let copy = File::create(&tmp).map_err(io(&tmp))?;
    let mut input = HashingReader {
        inner: TeeReader {
            inner: BufReader::new(file),
            copy: BufWriter::new(copy),
        },
        hasher: Sha256::new(),
    };
    let header = read_header(&mut input, &tmp)?;
    if header.last_log_id != meta.last_log_id {
        return Err(corrupt(&tmp, "snapshot file does not match its metadata"));
    }
    let mut batch = WriteBatch::default();
    for name in STATE_CFS {
        // No key of ours starts with 0xFF (u64 numbers far below 2^56, UTF-8 ids).
        batch.delete_range_cf(store.cf(name), [].as_slice(), [0xFFu8; 64].as_slice());
    }
    loop {
        let mut cf_index = [0u8; 1];
        input.read_exact(&mut cf_index).map_err(io(&tmp))?;
        if cf_index[0] == END {
            break;
        }
        let name = STATE_CFS
            .get(cf_index[0] as usize)
            .ok_or_else(|| corrupt(&tmp, "unknown column family"))?;
        let key = read_chunk(&mut input, &tmp)?;
        let value = read_chunk(&mut input, &tmp)?;
        // A record that this version cannot read would be found only after
        // the write, by the reload; refuse the snapshot before it.
        check_record(name, &key, &value).map_err(|why| corrupt(&tmp, &why))?;
        batch.put_cf(store.cf(name), key, value);
    }
    let expected = input.hasher.finalize();
    let mut tee = input.inner;
    let mut digest = [0u8; 32];
    tee.read_exact(&mut digest).map_err(io(&tmp))?;
    if digest[..] != expected[..] {
        return Err(corrupt(&tmp, "checksum mismatch"));
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
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    store
        .db
        .write_opt(batch, &opts)
        .map_err(|e| store.rocks(e))?;

    let copy = tee
        .copy
        .into_inner()
        .map_err(|e| io(&tmp)(e.into_error()))?;
    copy.sync_all().map_err(io(&tmp))?;
    publish(&tmp, &dir)
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
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

/// Whether one snapshot record decodes as what its family holds.
fn check_record(cf: &'static str, key: &[u8], value: &[u8]) -> Result<(), String> {
    fn is<T: serde::de::DeserializeOwned>(cf: &'static str, value: &[u8]) -> Result<(), String> {
        decode::<T>(cf, value).map(drop).map_err(|e| e.to_string())
    }
    match cf {
        CF_TASKS => is::<vtask_model::Task>(cf, value),
        CF_SESSIONS => is::<Session>(cf, value),
        CF_REPLIES => is::<vtask_model::Outcome>(cf, value),
        CF_CHANGES => is::<ChangeRecord>(cf, value),
        CF_COLLECTORS => is::<vtask_model::Collector>(cf, value),
        CF_INDEX | CF_HISTORY if value.is_empty() => Ok(()),
        CF_INDEX | CF_HISTORY => Err(format!("a {cf} entry with a value")),
        CF_SM_META => match key {
            b"last_applied" => is::<Option<LogId<NodeId>>>(cf, value),
            b"membership" => is::<StoredMembership<NodeId, openraft::BasicNode>>(cf, value),
            b"counters" => is::<vtask_model::Counters>(cf, value),
            b"revision" | b"pruned_through" => is::<u64>(cf, value),
            b"format" => is::<u32>(cf, value),
            other => Err(format!(
                "unknown state key {:?}",
                String::from_utf8_lossy(other)
            )),
        },
        other => Err(format!("unknown column family {other}")),
    }
}
