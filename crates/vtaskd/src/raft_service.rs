//! The internal `vtask.raft.v1.RaftService`: what peers call on this node.

use tonic::{Request, Response, Status};
use vtask_proto::raft::v1::raft_service_server::RaftService;
use vtask_proto::raft::v1::{ForwardReply, ForwardRequest, RaftReply, RaftRequest, SnapshotChunk};
use vtask_raft::codec::{decode, encode, install_snapshot_request};

use crate::node::{Forwarded, Node};

/// A follower's side of AppendEntries: decode, append (with its fsync), reply.
pub static APPEND_ENTRIES_SERVED: vtask_store::latency::Histogram =
    vtask_store::latency::Histogram::new(
        "vtask_raft_append_entries_served_seconds",
        "Time this node took to serve one AppendEntries call from its leader, fsync included.",
    );

pub struct RaftServer {
    node: Node,
}

impl RaftServer {
    pub fn new(node: Node) -> RaftServer {
        RaftServer { node }
    }

    /// Refuses a call from a node of another cluster (a restored cluster's
    /// node calling the cluster it was restored from, say) before it is read.
    async fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let theirs = request
            .metadata()
            .get(vtask_raft::CLUSTER_ID_HEADER)
            .map(|v| v.to_str().unwrap_or("(not text)"));
        self.node
            .admit(theirs)
            .await
            .map_err(Status::failed_precondition)
    }
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        self.admit(&request).await?;
        let started = std::time::Instant::now();
        let rpc = decode(&request.into_inner().payload)?;
        let result = self.node.raft.append_entries(rpc).await;
        let reply = RaftReply {
            payload: encode(&result),
        };
        APPEND_ENTRIES_SERVED.record(started.elapsed());
        Ok(Response::new(reply))
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        self.admit(&request).await?;
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
        self.admit(&request).await?;
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
        // A new node (`--join`) knows no cluster id yet: asking to be added
        // is the one call it may make without one. Any other call is
        // refused before it is read, as on the other methods.
        let has_id = request
            .metadata()
            .get(vtask_raft::CLUSTER_ID_HEADER)
            .is_some();
        if has_id {
            self.admit(&request).await?;
        }
        let (metadata, extensions, body) = request.into_parts();
        let call: Result<Forwarded, Status> = decode(&body.proposal);
        let asks_to_join = matches!(
            call,
            Ok(Forwarded::Membership(
                crate::membership::MembershipChange::Add { .. }
            ))
        );
        if !has_id && !asks_to_join {
            self.admit(&Request::from_parts(metadata, extensions, ()))
                .await?;
        }
        let call = call?;
        let result = self.node.serve_forwarded(call).await;
        Ok(Response::new(ForwardReply {
            reply: encode(&result),
        }))
    }
}
