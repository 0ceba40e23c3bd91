//! The etcd equivalents of the workloads, over etcd 3.4's v3 gRPC API, so
//! that one tool measures both systems: a write is a Put of a 150-byte value
//! (about the size of a progress update on the wire) to the client's own key,
//! a linearizable get is a Range, a stale get a serializable Range.

use tonic::transport::Channel;
use tonic::Status;
use vtask_proto::etcd::etcdserverpb::kv_client::KvClient;
use vtask_proto::etcd::etcdserverpb::{PutRequest, RangeRequest};

use super::{Recorder, Workload};

pub const VALUE_BYTES: usize = 150;

pub struct Client {
    kv: KvClient<Channel>,
    key: Vec<u8>,
    value: Vec<u8>,
    offset: u64,
}

impl Client {
    /// A client whose key holds a value before the clock starts, so that
    /// reads find one.
    pub async fn setup(channel: Channel, key: String, offset: u64) -> Result<Client, Status> {
        let mut client = Client {
            kv: KvClient::new(channel),
            key: key.into_bytes(),
            value: vec![b'v'; VALUE_BYTES],
            offset,
        };
        client.put(offset).await?;
        Ok(client)
    }

    pub async fn run(mut self, workload: Workload, recorder: Recorder) {
        let mut n = self.offset;
        while recorder.running() {
            n += 1;
            match workload {
                Workload::Progress => {
                    recorder.time(self.put(n)).await;
                }
                Workload::Get => {
                    recorder.time(self.get(false)).await;
                }
                Workload::GetStale => {
                    recorder.time(self.get(true)).await;
                }
                // vtask's 5% creates are writes too: here a put like the rest.
                Workload::Mixed => {
                    if n % 20 == 1 {
                        recorder.time(self.get(false)).await;
                    } else {
                        recorder.time(self.put(n)).await;
                    }
                }
                // Refused before any client starts (see `Workload::on_etcd`).
                Workload::Lifecycle => return,
            }
        }
    }

    async fn put(&mut self, n: u64) -> Result<(), Status> {
        // A changing value, as a progress update changes the task.
        let digits = n.to_string();
        let len = digits.len().min(VALUE_BYTES);
        self.value[..len].copy_from_slice(&digits.as_bytes()[..len]);
        let request = PutRequest {
            key: self.key.clone(),
            value: self.value.clone(),
            ..Default::default()
        };
        self.kv.put(request).await?;
        Ok(())
    }

    async fn get(&mut self, serializable: bool) -> Result<(), Status> {
        let request = RangeRequest {
            key: self.key.clone(),
            serializable,
            ..Default::default()
        };
        let reply = self.kv.range(request).await?.into_inner();
        if reply.kvs.is_empty() {
            return Err(Status::not_found("the client's key is missing"));
        }
        Ok(())
    }
}
