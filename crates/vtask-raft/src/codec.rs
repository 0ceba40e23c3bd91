//! Encoding of openraft messages into the opaque payloads of `vtask.raft.v1`,
//! in the store's binary format ([`vtask_store::codec`]): an AppendEntries
//! payload carries log entries in the bytes the log stores them in.

use openraft::raft::InstallSnapshotRequest;
use openraft::{SnapshotMeta, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vtask_proto::raft::v1::SnapshotChunk;
use vtask_store::{NodeId, TypeConfig};

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    vtask_store::codec::to_bytes(value)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, tonic::Status> {
    vtask_store::codec::from_bytes(bytes)
        .map_err(|e| tonic::Status::invalid_argument(format!("undecodable Raft payload: {e}")))
}

/// What travels in `SnapshotChunk.meta`.
#[derive(Serialize, Deserialize)]
struct ChunkMeta {
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
}

pub fn snapshot_chunk(request: InstallSnapshotRequest<TypeConfig>) -> SnapshotChunk {
    let meta = encode(&ChunkMeta {
        vote: request.vote,
        meta: request.meta,
    });
    SnapshotChunk {
        meta,
        offset: request.offset,
        data: request.data,
        done: request.done,
    }
}

pub fn install_snapshot_request(
    chunk: SnapshotChunk,
) -> Result<InstallSnapshotRequest<TypeConfig>, tonic::Status> {
    let ChunkMeta { vote, meta } = decode(&chunk.meta)?;
    Ok(InstallSnapshotRequest {
        vote,
        meta,
        offset: chunk.offset,
        data: chunk.data,
        done: chunk.done,
    })
}
