//! A harness for whole-cluster tests: real `vtaskd` processes on loopback,
//! each with its own RocksDB directory, started, killed and restarted as the
//! test says.
//!
//! The `vtaskd` binary is found next to the test executable's directory
//! (`target/<profile>/vtaskd`, built by `cargo build --bins` before the tests)
//! or at `$VTASKD_BIN`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tonic::transport::Channel;
use vtask_proto::v1::cluster_client::ClusterClient;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{Role, StatusRequest, StatusResponse};

/// Settings that tests change to provoke snapshots and the like.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: u64,
    pub snapshot_entries: u64,
    pub keep_entries: u64,
    /// More vtaskd flags for every node, e.g. `--retention-minutes 10`;
    /// `{id}` in a flag becomes the node's id (`--tls-cert certs/node-{id}.pem`).
    /// With `--tls-ca CA`, the harness talks TLS to the nodes, trusting CA.
    pub extra_args: Vec<String>,
    /// Name the nodes by this host name instead of 127.0.0.1, as a
    /// deployment names them by DNS: `--initial-cluster 1=HOST:PORT,...`,
    /// each node listening on `0.0.0.0:PORT` with `--advertise HOST:PORT`
    /// and no `--node-id` (it finds its id from the advertised address).
    pub advertise_host: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            nodes: 3,
            snapshot_entries: 10_000,
            keep_entries: 5_000,
            extra_args: Vec::new(),
            advertise_host: None,
        }
    }
}

pub struct NodeProcess {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// How the node names its cluster when it starts: `--initial-cluster`
    /// with the cluster's list unless set (`--join ...`, say).
    pub membership_args: Option<Vec<String>>,
    child: Option<Child>,
}

pub struct Cluster {
    pub nodes: BTreeMap<u64, NodeProcess>,
    config: ClusterConfig,
    initial_cluster: String,
    dir: tempfile::TempDir,
}

/// The vtaskd binary of this build.
pub fn vtaskd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VTASKD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/vtaskd
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile_dir.join("vtaskd")
}

/// A cluster CA and certificates for nodes 1-3 in `dir`, made by
/// `scripts/certs.sh` as for the dev cluster; returns `dir`.
pub fn certs(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/certs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg("3")
        .output()
        .expect("running scripts/certs.sh");
    assert!(out.status.success(), "scripts/certs.sh: {out:?}");
    dir.to_path_buf()
}

/// The vtaskd flags that give every node its certificate from `certs`
/// (made by [`certs`]) and the cluster CA.
pub fn tls_args(certs: &Path) -> Vec<String> {
    let file = |name: &str| certs.join(name).display().to_string();
    vec![
        "--tls-cert".into(),
        file("node-{id}.pem"),
        "--tls-key".into(),
        file("node-{id}-key.pem"),
        "--tls-ca".into(),
        file("ca.pem"),
    ]
}

/// The users-file hash of `token`, from `vtaskd hash-token`.
pub fn hash_token(token: &str) -> String {
    let out = Command::new(vtaskd_bin())
        .args(["hash-token", token])
        .output()
        .expect("running vtaskd hash-token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The vtask CLI of this build, beside vtaskd, or at `$VTASK_BIN`.
pub fn vtask_bin() -> PathBuf {
    match std::env::var_os("VTASK_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => vtaskd_bin().with_file_name("vtask"),
    }
}

impl Cluster {
    /// Starts a cluster and waits until it has a leader.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster::prepare(config)?;
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        cluster.wait_ready(Duration::from_secs(20)).await?;
        Ok(cluster)
    }

    /// A cluster's ports and directories, no node started yet (a test may
    /// seed the data directories first, as `vtaskd restore` does).
    pub fn prepare(config: ClusterConfig) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("vtask-cluster-")
            .tempdir()?;
        let mut nodes = BTreeMap::new();
        let host = config.advertise_host.as_deref().unwrap_or("127.0.0.1");
        let mut ports = vtask_check::cluster::free_ports(2 * config.nodes as usize)?.into_iter();
        for id in 1..=config.nodes {
            let node_dir = dir.path().join(format!("node-{id}"));
            nodes.insert(
                id,
                NodeProcess {
                    id,
                    grpc: format!("{host}:{}", ports.next().expect("a port per node")),
                    http: format!("127.0.0.1:{}", ports.next().expect("a port per node")),
                    data_dir: node_dir.join("data"),
                    log: node_dir.join("vtaskd.log"),
                    membership_args: None,
                    child: None,
                },
            );
            std::fs::create_dir_all(&node_dir)?;
        }
        let initial_cluster = nodes
            .values()
            .map(|n| format!("{}={}", n.id, n.grpc))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Cluster {
            nodes,
            config,
            initial_cluster,
            dir,
        })
    }

    /// The `--initial-cluster` every node starts with.
    pub fn initial_cluster(&self) -> &str {
        &self.initial_cluster
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every node's gRPC address, comma separated, as `--endpoints` takes them.
    pub fn endpoints(&self) -> String {
        self.nodes
            .values()
            .map(|n| n.grpc.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every node's gRPC address, the leader's first, so that a client
    /// starts on the leader and a leader kill takes its node away.
    pub async fn leader_first_endpoints(&self) -> anyhow::Result<(Vec<String>, u64)> {
        let leader = self.wait_for_leader(Duration::from_secs(10)).await?;
        let mut endpoints = vec![self.nodes[&leader].grpc.clone()];
        endpoints.extend(
            self.nodes
                .values()
                .filter(|n| n.id != leader)
                .map(|n| n.grpc.clone()),
        );
        Ok((endpoints, leader))
    }

    /// A new node `id` (its own ports, an empty data directory), not started:
    /// with `join`, it starts with `--join` naming the running members;
    /// otherwise with `--initial-cluster` naming them and itself, so that it
    /// waits for the leader to add it (`vtask member add`).
    pub fn add_node(&mut self, id: u64, join: bool) -> anyhow::Result<()> {
        if self.nodes.contains_key(&id) {
            bail!("node {id} exists");
        }
        let mut ports = vtask_check::cluster::free_ports(2)?.into_iter();
        let node_dir = self.dir.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&node_dir)?;
        let grpc = format!("127.0.0.1:{}", ports.next().expect("two ports"));
        let membership_args = if join {
            vec![
                "--join".to_string(),
                self.endpoints(),
                "--advertise".to_string(),
                grpc.clone(),
            ]
        } else {
            vec![
                "--initial-cluster".to_string(),
                format!("{},{id}={grpc}", self.initial_cluster),
            ]
        };
        self.nodes.insert(
            id,
            NodeProcess {
                id,
                grpc,
                http: format!("127.0.0.1:{}", ports.next().expect("two ports")),
                data_dir: node_dir.join("data"),
                log: node_dir.join("vtaskd.log"),
                membership_args: Some(membership_args),
                child: None,
            },
        );
        Ok(())
    }

    /// Waits up to `timeout` for node `id` to exit by itself; its status.
    pub async fn wait_exit(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let node = self.nodes.get_mut(&id)?;
            let status = node.child.as_mut()?.try_wait().ok()?;
            if let Some(status) = status {
                node.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The flags nodes get when they are next spawned.
    pub fn config_mut(&mut self) -> &mut ClusterConfig {
        &mut self.config
    }

    /// Starts (or restarts) node `id` with its existing data directory.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let initial_cluster = self.initial_cluster.clone();
        let config = self.config.clone();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if node.child.is_some() {
            bail!("node {id} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        // A cluster without a users file runs insecure, so tests that are not
        // about authentication name their callers with x-vtask-user.
        let insecure = !config.extra_args.iter().any(|a| a == "--auth-file");
        let identity = match &config.advertise_host {
            None => vec![
                "--node-id".to_string(),
                id.to_string(),
                "--listen".into(),
                node.grpc.clone(),
            ],
            Some(_) => {
                let port = node.grpc.rsplit_once(':').context("HOST:PORT")?.1;
                vec![
                    "--advertise".to_string(),
                    node.grpc.clone(),
                    "--listen".into(),
                    format!("0.0.0.0:{port}"),
                ]
            }
        };
        let membership_args = node
            .membership_args
            .clone()
            .unwrap_or_else(|| vec!["--initial-cluster".into(), initial_cluster]);
        let child = Command::new(vtaskd_bin())
            .args(insecure.then_some("--insecure"))
            .args(identity)
            .arg("--http")
            .arg(&node.http)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(membership_args)
            .arg("--snapshot-entries")
            .arg(config.snapshot_entries.to_string())
            .arg("--keep-entries")
            .arg(config.keep_entries.to_string())
            .args(
                config
                    .extra_args
                    .iter()
                    .map(|a| a.replace("{id}", &id.to_string())),
            )
            .env("RUST_LOG", "info,openraft=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", vtaskd_bin().display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILL: the process dies at once, with whatever was not fsynced lost.
    pub fn kill(&mut self, id: u64) {
        self.signal(id, libc::SIGKILL);
    }

    /// SIGTERM, then wait for the node to exit; returns whether it exited
    /// cleanly (status 0), as a graceful shutdown must.
    pub fn stop(&mut self, id: u64) -> bool {
        self.signal(id, libc::SIGTERM)
            .is_some_and(|status| status.success())
    }

    /// SIGHUP: the node re-reads its users file (and keeps running).
    pub fn hangup(&self, id: u64) -> bool {
        match self.nodes.get(&id).and_then(|n| n.child.as_ref()) {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            Some(child) => unsafe { libc::kill(child.id() as i32, libc::SIGHUP) == 0 },
            None => false,
        }
    }

    fn signal(&mut self, id: u64, signal: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.nodes.get_mut(&id)?.child.take()?;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        child.wait().ok()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// The CA file the nodes' certificates chain to, when they run TLS.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        let args = &self.config.extra_args;
        let at = args.iter().position(|a| a == "--tls-ca")?;
        args.get(at + 1).map(PathBuf::from)
    }

    fn endpoint(&self, addr: &str) -> anyhow::Result<tonic::transport::Endpoint> {
        Ok(match self.tls_ca() {
            None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?,
            Some(ca) => tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(
                    tonic::transport::Certificate::from_pem(std::fs::read(&ca)?),
                ))?,
        })
    }

    pub async fn channel(&self, id: u64) -> anyhow::Result<Channel> {
        let addr = &self.nodes.get(&id).context("no such node")?.grpc;
        Ok(self
            .endpoint(addr)?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .connect_lazy())
    }

    pub async fn tasks(&self, id: u64) -> anyhow::Result<TaskClient<Channel>> {
        Ok(TaskClient::new(self.channel(id).await?))
    }

    pub async fn manager(&self, id: u64) -> anyhow::Result<TaskManagerClient<Channel>> {
        Ok(TaskManagerClient::new(self.channel(id).await?))
    }

    pub async fn status(&self, id: u64) -> anyhow::Result<StatusResponse> {
        let mut client = ClusterClient::new(self.channel(id).await?);
        Ok(client.status(StatusRequest {}).await?.into_inner())
    }

    /// The body of node `id`'s `GET /metrics` (plain HTTP on its `--http`
    /// address).
    pub async fn metrics(&self, id: u64) -> anyhow::Result<String> {
        let (status, body) = self.http_get(id, "/metrics").await?;
        if status != 200 {
            bail!("GET /metrics on node {id}: {status} {body}");
        }
        Ok(body)
    }

    /// `GET path` on node `id`'s HTTP port (plain text): the status code
    /// and the body.
    pub async fn http_get(&self, id: u64, path: &str) -> anyhow::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let node = self.nodes.get(&id).context("no such node")?;
        let mut stream = tokio::net::TcpStream::connect(&node.http).await?;
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    node.http
                )
                .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("an HTTP response without a body")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("GET {path} on node {id}: no status in {head:?}"))?;
        Ok((status, body.to_string()))
    }

    /// Waits until every running node serves gRPC and knows the leader.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        self.wait_for_leader(timeout).await?;
        loop {
            let mut ready = true;
            for id in self.running() {
                ready &= self.status(id).await.is_ok_and(|s| s.leader_id.is_some());
            }
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "not every node was ready within {timeout:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a running node reports itself leader; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            for id in self.running() {
                if let Ok(status) = self.status(id).await {
                    let me = status.members.iter().find(|m| m.node_id == id);
                    if status.leader_id == Some(id)
                        && me.is_some_and(|m| m.role == Role::Leader as i32)
                    {
                        return Ok(id);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no leader within {timeout:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every running node has applied the same index and
    /// reports the same state digest; returns that digest.
    pub async fn converged(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for id in self.running() {
                match self.status(id).await {
                    Ok(s) => seen.push((id, s.applied_index, s.state_digest)),
                    Err(e) => seen.push((id, 0, format!("unreachable: {e}"))),
                }
            }
            let first = seen.first().cloned();
            if let Some((_, index, digest)) = &first {
                if *index > 0 && seen.iter().all(|(_, i, d)| i == index && d == digest) {
                    return Ok(digest.clone());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes did not converge within {timeout:?}: {seen:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in self.nodes.values() {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!(
                "--- node {} ({}) ---\n",
                node.id,
                node.log.display()
            ));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
        if std::thread::panicking() || std::env::var_os("VTASK_KEEP_CLUSTER").is_some() {
            // Keep the data and logs of a failed test for a post-mortem.
            let path =
                std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")).keep();
            eprintln!("cluster data kept in {}", path.display());
        }
    }
}
