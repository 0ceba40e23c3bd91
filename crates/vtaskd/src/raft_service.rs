//! The internal `vtask.raft.v1.RaftService`: what peers call on this node.

use tonic::{Request, Response, Status};
use vtask_proto::raft::v1::raft_service_server::RaftService;
use vtask_proto::raft::v1::{ForwardReply, ForwardRequest, RaftReply, RaftRequest, SnapshotChunk};
use vtask_raft::codec::{decode, encode, install_snapshot_request};

use crate::node::{Forwarded, Node};

pub struct RaftServer {
    node: Node,
}

impl RaftServer {
    pub fn new(node: Node) -> RaftServer {
        RaftServer { node }
    }
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc = decode(&request.into_inner().payload)?;
        let result = self.node.raft.append_entries(rpc).await;
        Ok(Response::new(RaftReply {
            payload: encode(&result),
        }))
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc = decode(&request.into_inner().payload)?;
        let result = self.node.raft.vote(rpc).await;
        Ok(Response::new(RaftReply {
            payload: encode(&result),
        }))
    }

    async fn install_snapshot(
        &self,
        request: Request<SnapshotChunk>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc = install_snapshot_request(request.into_inner())?;
        let result = self.node.raft.install_snapshot(rpc).await;
        Ok(Response::new(RaftReply {
            payload: encode(&result),
        }))
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardReply>, Status> {
        let call: Forwarded = decode(&request.into_inner().proposal)?;
        let result = self.node.serve_forwarded(call).await;
        Ok(Response::new(ForwardReply {
            reply: encode(&result),
        }))
    }
}
