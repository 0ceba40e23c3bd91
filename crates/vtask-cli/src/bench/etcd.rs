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
                Workload::Lifecycle | Workload::Create => return,
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tonic::transport::server::TcpIncoming;
    use tonic::{Request, Response};
    use vtask_proto::etcd::etcdserverpb::kv_server::{Kv, KvServer};
    use vtask_proto::etcd::etcdserverpb::{PutResponse, RangeResponse};
    use vtask_proto::etcd::mvccpb::KeyValue;

    use super::*;
    use crate::bench::{run_one, BenchArgs, Target};
    use crate::Conn;

    /// Stands in for etcd's KV service, so the etcd side of the tool is
    /// tested where no etcd is installed.
    #[derive(Default)]
    struct FakeEtcd {
        keys: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
        linearizable: AtomicU64,
        serializable: AtomicU64,
    }

    #[tonic::async_trait]
    impl Kv for FakeEtcd {
        async fn range(
            &self,
            request: Request<RangeRequest>,
        ) -> Result<Response<RangeResponse>, Status> {
            let request = request.into_inner();
            let counter = if request.serializable {
                &self.serializable
            } else {
                &self.linearizable
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let keys = self.keys.lock().unwrap();
            let kvs = keys
                .get(&request.key)
                .map(|value| KeyValue {
                    key: request.key.clone(),
                    value: value.clone(),
                    ..Default::default()
                })
                .into_iter()
                .collect();
            Ok(Response::new(RangeResponse {
                kvs,
                ..Default::default()
            }))
        }

        async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
            let request = request.into_inner();
            if request.value.len() != VALUE_BYTES {
                return Err(Status::invalid_argument("not a 150-byte value"));
            }
            self.keys.lock().unwrap().insert(request.key, request.value);
            Ok(Response::new(PutResponse::default()))
        }
    }

    #[tokio::test]
    async fn bench_etcd_workloads_put_and_range_through_etcds_kv_service() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = TcpIncoming::from_listener(listener, true, None).unwrap();
        let fake = Arc::new(FakeEtcd::default());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(KvServer::from_arc(fake.clone()))
                .serve_with_incoming(incoming),
        );
        let conn = Conn::new(vec![addr.to_string()]);
        let args = BenchArgs {
            workloads: Vec::new(),
            clients: Vec::new(),
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            target: Target::Etcd,
            connections: Some(2),
            server_pids: Vec::new(),
        };
        for workload in [
            Workload::Progress,
            Workload::Get,
            Workload::GetStale,
            Workload::Mixed,
        ] {
            let before = fake.serializable.load(Ordering::Relaxed);
            let report = run_one(&conn, &args, workload, 3, &[]).await.unwrap();
            assert!(report.ops > 0, "{workload:?}: no operations");
            assert_eq!(report.errors, 0, "{workload:?}: {:?}", report.first_error);
            let stale_reads = fake.serializable.load(Ordering::Relaxed) - before;
            assert_eq!(stale_reads > 0, workload == Workload::GetStale);
        }
        assert_eq!(fake.keys.lock().unwrap().len(), 3, "one key per client");
        assert!(fake.linearizable.load(Ordering::Relaxed) > 0);
    }
}
