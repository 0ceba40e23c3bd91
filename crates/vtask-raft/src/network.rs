//! openraft's network over tonic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use vtask_proto::raft::v1::raft_service_client::RaftServiceClient;
use vtask_proto::raft::v1::RaftRequest;
use vtask_store::{NodeId, TypeConfig};

use crate::codec::{self, decode, encode};
use crate::{SharedClusterId, MAX_MESSAGE_BYTES};

/// Creates the clients openraft uses to reach each peer; the channels are
/// shared and kept for the life of the node.
#[derive(Clone, Default)]
pub struct Network {
    channels: Arc<Mutex<HashMap<(NodeId, String), Channel>>>,
    /// Peers this node dials somewhere other than their member address.
    routes: Arc<HashMap<NodeId, String>>,
    /// Mutual TLS to the peers: the cluster CA and this node's certificate.
    tls: Option<ClientTlsConfig>,
    /// The cluster this node belongs to, sent with every call
    /// ([`crate::CLUSTER_ID_HEADER`]) so that a node of another cluster
    /// refuses it.
    cluster_id: SharedClusterId,
}

impl Network {
    /// A network that dials the peers in `routes` at the given addresses
    /// instead of their member addresses. Member addresses are the same on
    /// every node (they are in the replicated membership), so this is the
    /// only way one node's links can differ from another's: `vtask chaos`
    /// puts a fault-injecting proxy on each directed link this way.
    pub fn with_routes(routes: HashMap<NodeId, String>) -> Network {
        Network {
            channels: Arc::default(),
            routes: Arc::new(routes),
            tls: None,
            cluster_id: SharedClusterId::default(),
        }
    }

    /// Sends this cluster id (shared: the node learns it at its first
    /// contact) with every call.
    pub fn with_cluster_id(mut self, cluster_id: SharedClusterId) -> Network {
        self.cluster_id = cluster_id;
        self
    }

    /// Dials every peer over TLS with this configuration (which carries
    /// this node's certificate, so peers can tell a member from a client).
    pub fn with_tls(mut self, tls: Option<ClientTlsConfig>) -> Network {
        self.tls = tls;
        self
    }

    /// The channel to `addr`, created on first use. Connecting is lazy, so a
    /// peer that is down costs nothing until a call is made.
    pub fn channel(&self, target: NodeId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let addr = self.routes.get(&target).map_or(addr, String::as_str);
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(&(target, addr.to_string())) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert((target, addr.to_string()), channel.clone());
        Ok(channel)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let client = self.channel(target, &node.addr).ok().map(|channel| {
            RaftServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        });
        Peer {
            target,
            addr: node.addr.clone(),
            client,
            cluster_id: self.cluster_id.clone(),
        }
    }
}

/// The connection to one peer.
pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<RaftServiceClient<Channel>>,
    cluster_id: SharedClusterId,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl Peer {
    fn client<E: std::error::Error>(&self) -> RpcResult<RaftServiceClient<Channel>, E> {
        self.client.clone().ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "node {} has an invalid address {:?}",
                self.target, self.addr
            ))))
        })
    }

    /// Turns the reply into openraft's result: a transport failure, or the
    /// remote node's `Result` as it sent it.
    fn reply<T, E>(
        &self,
        reply: Result<tonic::Response<vtask_proto::raft::v1::RaftReply>, tonic::Status>,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let reply = reply.map_err(|status| transport_error(&status))?;
        let result: Result<T, E> = decode(&reply.into_inner().payload)
            .map_err(|status| RPCError::Network(NetworkError::new(&status)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                BasicNode::new(&self.addr),
                e,
            ))
        })
    }
}

fn transport_error<E: std::error::Error>(status: &tonic::Status) -> RPCError<NodeId, BasicNode, E> {
    match status.code() {
        // Refused or reset connections: openraft backs off before retrying.
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(status)),
        _ => RPCError::Network(NetworkError::new(status)),
    }
}

fn with_deadline<T>(
    message: T,
    option: &RPCOption,
    cluster_id: &SharedClusterId,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(option.hard_ttl());
    crate::add_cluster_id(&mut request, cluster_id);
    request
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        let mut client = self.client()?;
        let started = std::time::Instant::now();
        let reply = client
            .append_entries(with_deadline(
                RaftRequest {
                    payload: encode(&rpc),
                },
                &option,
                &self.cluster_id,
            ))
            .await;
        crate::APPEND_ENTRIES.record(started.elapsed());
        self.reply(reply)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let mut client = self.client()?;
        let reply = client
            .install_snapshot(with_deadline(
                codec::snapshot_chunk(rpc),
                &option,
                &self.cluster_id,
            ))
            .await;
        self.reply(reply)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        let mut client = self.client()?;
        let reply = client
            .vote(with_deadline(
                RaftRequest {
                    payload: encode(&rpc),
                },
                &option,
                &self.cluster_id,
            ))
            .await;
        self.reply(reply)
    }
}
