//! TLS on a live cluster: peers authenticate each other with certificates
//! from the cluster CA, clients trust that CA and authenticate with tokens,
//! and the internal Raft service refuses whoever is not a member: no
//! certificate, or a certificate from another CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;
use vtask_client::{Client, Error};
use vtask_model::{CreateTask, MoRef, TaskKey};
use vtask_proto::raft::v1::raft_service_client::RaftServiceClient;
use vtask_proto::raft::v1::ForwardRequest;
use vtask_tests::{certs, hash_token, tls_args, Cluster, ClusterConfig};

fn users(dir: &Path) -> PathBuf {
    let hash = hash_token("tls-admin");
    let path = dir.join("users.toml");
    std::fs::write(
        &path,
        format!(
            "[roles]\nadmin = [\"Task.Create\", \"Task.Update\", \"Global.CancelTask\", \"System.View\"]\n\
             [[users]]\nname = \"admin\"\ntoken_sha256 = \"{}\"\nroles = [\"admin\"]\n",
            hash
        ),
    )
    .unwrap();
    path
}

fn pem(path: PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A Forward call on `addr` with this TLS setup: how far did it get?
async fn forward(addr: &str, tls: ClientTlsConfig) -> Result<tonic::Status, String> {
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let request = ForwardRequest {
        proposal: b"not json".to_vec(),
    };
    assert!(!request.encode_to_vec().is_empty());
    match RaftServiceClient::new(channel).forward(request).await {
        Ok(_) => Ok(tonic::Status::ok("accepted")),
        Err(status) => Ok(status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_clients_meet_over_tls_and_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ours = certs(&dir.path().join("ours"));
    let theirs = certs(&dir.path().join("theirs"));
    let users = users(dir.path());
    let cluster = Cluster::start(ClusterConfig {
        extra_args: [
            vec!["--auth-file".into(), users.display().to_string()],
            tls_args(&ours),
        ]
        .concat(),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let follower_addr = cluster.nodes[&follower].grpc.clone();

    // A client that trusts the cluster CA writes through a follower, which
    // forwards to the leader over mutual TLS; every replica applies it.
    let client = Client::new(vec![follower_addr.clone()])
        .retry_for(Duration::from_secs(10))
        .tls_ca(pem(ours.join("ca.pem")))
        .token("tls-admin");
    let task = client
        .create_task(CreateTask {
            obj: MoRef::new("VirtualMachine", "vm-tls"),
            task_type_id: "com.example.tls".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    converged_and_serving(&cluster, &client, task.key).await;

    // A client that trusts another CA, and one that talks plain text, get
    // nowhere.
    for (label, stranger) in [
        (
            "another CA",
            Client::new(vec![follower_addr.clone()]).tls_ca(pem(theirs.join("ca.pem"))),
        ),
        ("plain text", Client::new(vec![follower_addr.clone()])),
    ] {
        match stranger
            .retry_for(Duration::from_millis(500))
            .token("tls-admin")
            .get_task(&task.key.to_string(), true)
            .await
        {
            Err(Error::Unavailable(_)) => {}
            other => panic!("{label}: expected no connection, got {other:?}"),
        }
    }

    // The internal service: a member's certificate gets through (the bad
    // payload is then refused by the service itself); no certificate is
    // refused by the gate; a certificate from another CA fails the handshake.
    let ca = Certificate::from_pem(pem(ours.join("ca.pem")));
    let member = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .identity(Identity::from_pem(
            pem(ours.join("node-1.pem")),
            pem(ours.join("node-1-key.pem")),
        ));
    let status = forward(&follower_addr, member).await.unwrap();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = forward(
        &follower_addr,
        ClientTlsConfig::new().ca_certificate(ca.clone()),
    )
    .await
    .unwrap();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("cluster members only"),
        "{status:?}"
    );
    let impostor = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(Identity::from_pem(
            pem(theirs.join("node-1.pem")),
            pem(theirs.join("node-1-key.pem")),
        ));
    match forward(&follower_addr, impostor).await {
        // The server rejects the certificate during the handshake; with TLS
        // 1.3 the client learns it on its first call, from the alert or from
        // the connection closing first (a race), never from an answer.
        Err(_) => {}
        Ok(status) => assert!(
            matches!(
                status.code(),
                Code::Unknown | Code::Unavailable | Code::Cancelled
            ),
            "{status:?}"
        ),
    }

    // Nothing the strangers did changed anything, and the cluster still serves.
    converged_and_serving(&cluster, &client, task.key).await;
}

/// Every replica holds the same state, and a linearizable read of `key`
/// through `client` answers.
async fn converged_and_serving(cluster: &Cluster, client: &Client, key: TaskKey) {
    cluster.converged(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        client.get_task(&key.to_string(), false).await.unwrap().key,
        key
    );
}

/// Nodes as a deployment names them: by DNS name in --initial-cluster
/// (`localhost` here, which the node certificates carry), listening on
/// 0.0.0.0, each finding its id from --advertise. Peers verify each other's
/// names over TLS, a client reaches them by name, and a leader's death
/// changes nothing acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_named_by_dns_find_their_ids_and_meet_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(&dir.path().join("certs"));
    let users = users(dir.path());
    let mut cluster = Cluster::start(ClusterConfig {
        extra_args: [
            vec!["--auth-file".into(), users.display().to_string()],
            tls_args(&certs),
        ]
        .concat(),
        advertise_host: Some("localhost".into()),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    // Each node took the id whose address it advertises.
    for id in cluster.ids() {
        let status = cluster.status(id).await.unwrap();
        assert_eq!(status.node_id, id, "{status:?}");
    }
    let endpoints: Vec<String> = cluster.nodes.values().map(|n| n.grpc.clone()).collect();
    assert!(
        endpoints.iter().all(|e| e.starts_with("localhost:")),
        "{endpoints:?}"
    );
    let client = Client::new(endpoints)
        .retry_for(Duration::from_secs(20))
        .tls_ca(pem(certs.join("ca.pem")))
        .token("tls-admin");
    let task = client
        .create_task(CreateTask {
            obj: MoRef::new("VirtualMachine", "vm-named"),
            task_type_id: "com.example.named".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    cluster.kill(leader);
    let second = client
        .create_task(CreateTask {
            obj: MoRef::new("VirtualMachine", "vm-named"),
            task_type_id: "com.example.named".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    cluster.spawn(leader).unwrap();
    cluster.converged(Duration::from_secs(30)).await.unwrap();
    for key in [task.key, second.key] {
        let got = client.get_task(&key.to_string(), false).await.unwrap();
        assert_eq!(got.key, key);
    }
}
