//! `vtask-snapfile`: the snapshot file format, shared by the Raft snapshots
//! a node sends its followers and the backups `vtask snapshot save` writes
//! (they are the same files). Pure framing and checking: no RocksDB, no
//! openraft, so the CLI can check a backup without linking the store.
//!
//! # File format (version 2)
//!
//! ```text
//! "VTASKSNAP2\n"                       magic and version
//! u32 BE length, JSON Header           what the snapshot covers (below)
//! records:  u8 column family (index into the store's STATE_CFS),
//!           u32 BE key length, key, u32 BE value length, value
//! u8 0xFF                              end of records
//! 32 bytes                             SHA-256 of everything before it
//! ```
//!
//! Version 1 (`"VTASKSNAP1\n"`) had openraft's `SnapshotMeta` as the whole
//! header; it is still read. The checksum covers the header too, so a
//! flipped byte anywhere in the file is found.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The magic of version 1 files (header = openraft `SnapshotMeta`).
pub const MAGIC_V1: &[u8] = b"VTASKSNAP1\n";
/// The magic of version 2 files (header = [`Header`]).
pub const MAGIC_V2: &[u8] = b"VTASKSNAP2\n";
/// The version this code writes.
pub const VERSION: u32 = 2;
/// The byte that ends the records.
pub const END: u8 = 0xFF;
/// The longest header accepted (a header is a few hundred bytes).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// What a snapshot file covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// openraft's `SnapshotMeta` as JSON (last log id, membership, id);
    /// `vtask-store` reads it, this crate does not.
    pub meta: serde_json::Value,
    /// The log index of the last entry the state includes.
    pub applied_index: u64,
    /// The cluster the state was taken from (absent in version 1 files and
    /// on a cluster initialized before cluster ids).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// The state digest (`Cluster.Status`'s `state_digest`) of the state the
    /// file holds; backups carry it, Raft snapshots may leave it out.
    #[serde(default)]
    pub digest: Option<String>,
    /// How many tasks the state holds (backups).
    #[serde(default)]
    pub tasks: Option<u64>,
    /// The newest change revision in the state.
    #[serde(default)]
    pub revision: u64,
    /// When the file was written, Unix milliseconds (0: unknown).
    #[serde(default)]
    pub created_unix_ms: u64,
}

/// Why a snapshot file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

impl FileError {
    fn corrupt(what: impl Into<String>) -> FileError {
        FileError::Corrupt(what.into())
    }
}

/// One record of the state.
pub struct Record {
    pub cf: u8,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Writes a file: the header, then records, then [`Writer::finish`].
pub struct Writer<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Writer<W> {
    /// Writes the magic and the header.
    pub fn new(inner: W, header: &Header) -> std::io::Result<Writer<W>> {
        let mut writer = Writer {
            inner,
            hasher: Sha256::new(),
        };
        writer.put(MAGIC_V2)?;
        let json = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        writer.chunk(&json)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.hasher.update(bytes);
        Ok(())
    }

    fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| std::io::Error::other("value longer than 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    pub fn record(&mut self, cf: u8, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        if cf == END {
            return Err(std::io::Error::other("column family 255 is the end mark"));
        }
        self.put(&[cf])?;
        self.chunk(key)?;
        self.chunk(value)
    }

    /// Writes the end mark and the checksum; returns the inner writer and
    /// the checksum (hex).
    pub fn finish(mut self) -> std::io::Result<(W, String)> {
        self.put(&[END])?;
        let sum = self.hasher.finalize();
        self.inner.write_all(&sum)?;
        self.inner.flush()?;
        Ok((self.inner, hex(&sum)))
    }
}

/// Reads a file: [`Reader::new`] reads the header, [`Reader::next`] the
/// records; after the last one (`None`) the checksum has been verified.
pub struct Reader<R: Read> {
    inner: R,
    hasher: Sha256,
    version: u32,
    header: Header,
    done: Option<String>,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Result<Reader<R>, FileError> {
        let mut reader = Reader {
            inner,
            hasher: Sha256::new(),
            version: 0,
            header: Header::default(),
            done: None,
        };
        let mut magic = [0u8; 11];
        reader.take(&mut magic)?;
        reader.version = match &magic[..] {
            m if m == MAGIC_V1 => 1,
            m if m == MAGIC_V2 => 2,
            _ => return Err(FileError::corrupt("not a vtask snapshot file (bad magic)")),
        };
        let json = reader.chunk(MAX_HEADER_BYTES)?;
        reader.header = match reader.version {
            1 => {
                let meta: serde_json::Value = serde_json::from_slice(&json)
                    .map_err(|e| FileError::corrupt(format!("header: {e}")))?;
                let applied_index = meta
                    .pointer("/last_log_id/index")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or_default();
                Header {
                    meta,
                    applied_index,
                    ..Header::default()
                }
            }
            _ => serde_json::from_slice(&json)
                .map_err(|e| FileError::corrupt(format!("header: {e}")))?,
        };
        Ok(reader)
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), FileError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FileError::corrupt("truncated file"),
            _ => FileError::Io(e),
        })?;
        self.hasher.update(&buf[..]);
        Ok(())
    }

    fn chunk(&mut self, max: usize) -> Result<Vec<u8>, FileError> {
        let mut len = [0u8; 4];
        self.take(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > max {
            return Err(FileError::corrupt(format!("a length of {len} bytes")));
        }
        let mut bytes = Vec::new();
        (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(FileError::Io)?;
        if bytes.len() != len {
            return Err(FileError::corrupt("truncated record"));
        }
        self.hasher.update(&bytes);
        Ok(bytes)
    }

    /// The next record, or `None` after the end mark once the checksum
    /// matched.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>, FileError> {
        if self.done.is_some() {
            return Ok(None);
        }
        let mut cf = [0u8; 1];
        self.take(&mut cf)?;
        if cf[0] == END {
            let expected = std::mem::take(&mut self.hasher).finalize();
            let mut sum = [0u8; 32];
            self.inner
                .read_exact(&mut sum)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => FileError::corrupt("truncated checksum"),
                    _ => FileError::Io(e),
                })?;
            if sum[..] != expected[..] {
                return Err(FileError::corrupt("checksum mismatch"));
            }
            self.done = Some(hex(&sum));
            return Ok(None);
        }
        let key = self.chunk(u32::MAX as usize)?;
        let value = self.chunk(u32::MAX as usize)?;
        Ok(Some(Record {
            cf: cf[0],
            key,
            value,
        }))
    }

    /// The checksum (hex), once [`Reader::next`] returned `None`.
    pub fn checksum(&self) -> Option<&str> {
        self.done.as_deref()
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// What [`verify`] found in a whole file.
#[derive(Clone, Debug)]
pub struct Summary {
    pub version: u32,
    pub header: Header,
    pub records: u64,
    /// SHA-256 of the file up to the checksum, hex (the checksum itself).
    pub checksum: String,
}

/// Reads a whole file: header, every record, end mark, checksum, and that
/// nothing follows. Any damage is a [`FileError::Corrupt`].
pub fn verify(input: impl Read) -> Result<Summary, FileError> {
    let mut reader = Reader::new(input)?;
    let mut records = 0u64;
    while reader.next()?.is_some() {
        records += 1;
    }
    let checksum = reader.checksum().unwrap_or_default().to_string();
    let version = reader.version;
    let header = reader.header.clone();
    let mut rest = [0u8; 1];
    let mut inner = reader.into_inner();
    if inner.read(&mut rest)? != 0 {
        return Err(FileError::corrupt("bytes after the checksum"));
    }
    Ok(Summary {
        version,
        header,
        records,
        checksum,
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            meta: serde_json::json!({"last_log_id": {"index": 7}}),
            applied_index: 7,
            cluster_id: Some("c1".into()),
            digest: Some("ab".into()),
            tasks: Some(1),
            revision: 3,
            created_unix_ms: 1,
        };
        let mut w = Writer::new(Vec::new(), &header).unwrap();
        w.record(0, b"k", b"v").unwrap();
        w.record(5, b"k2", b"").unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn a_written_file_verifies_and_every_flipped_byte_is_found() {
        let bytes = sample();
        let summary = verify(&bytes[..]).unwrap();
        assert_eq!(summary.records, 2);
        assert_eq!(summary.header.applied_index, 7);
        assert_eq!(summary.header.cluster_id.as_deref(), Some("c1"));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad[..]).is_err(), "flipped byte {i} went unnoticed");
        }
        assert!(verify(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(verify(&longer[..]).is_err());
    }
}
