//! A local cluster the runner starts itself: `vtaskd` processes on loopback
//! ports, each with its own data directory and log file, and a
//! fault-injecting [`Proxy`] on every directed Raft link.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;
use vtask_proto::v1::cluster_client::ClusterClient;
use vtask_proto::v1::{Role, StatusRequest, StatusResponse};

use crate::proxy::{LinkState, Proxy};
use crate::runner::RunError;

/// How a node process is doing, as far as the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// SIGSTOP: alive, but answers nothing until SIGCONT.
    Paused,
    Down,
}

pub struct NodeProcess {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

pub struct LocalCluster {
    pub nodes: BTreeMap<u64, NodeProcess>,
    /// (from, to) → the proxy node `from` dials `to` through.
    proxies: BTreeMap<(u64, u64), Proxy>,
    vtaskd: PathBuf,
    initial_cluster: String,
    /// Exits the runner did not cause: (node, status).
    pub unexpected_exits: Vec<(u64, String)>,
}

/// `n` distinct free ports on loopback, for the nodes of a local cluster.
/// The listeners stay open until all are picked: a port released at once
/// may come back from the next bind (two nodes of one cluster once got the
/// same gRPC port), and no port is handed out twice in this process.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        held.push(listener);
    }
    Ok(ports)
}

impl LocalCluster {
    /// Starts `nodes` vtaskd processes under `dir` and waits for a leader.
    pub async fn start(vtaskd: &Path, dir: &Path, nodes: u64) -> Result<LocalCluster, RunError> {
        if !vtaskd.is_file() {
            return Err(RunError::Cluster(format!(
                "no vtaskd binary at {} (give its path with --vtaskd)",
                vtaskd.display()
            )));
        }
        let mut processes = BTreeMap::new();
        let mut ports = free_ports(2 * nodes as usize)
            .map_err(|e| RunError::Cluster(format!("finding free ports: {e}")))?
            .into_iter();
        for id in 1..=nodes {
            let node_dir = dir.join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| RunError::Cluster(format!("creating {}: {e}", node_dir.display())))?;
            processes.insert(
                id,
                NodeProcess {
                    id,
                    grpc: format!("127.0.0.1:{}", ports.next().expect("two ports per node")),
                    http: format!("127.0.0.1:{}", ports.next().expect("two ports per node")),
                    data_dir: node_dir.join("data"),
                    log: node_dir.join("vtaskd.log"),
                    child: None,
                    paused: false,
                },
            );
        }
        let mut proxies = BTreeMap::new();
        for from in processes.keys() {
            for (to, node) in &processes {
                if from != to {
                    let proxy = Proxy::start(node.grpc.clone())
                        .await
                        .map_err(|e| RunError::Cluster(format!("starting a proxy: {e}")))?;
                    proxies.insert((*from, *to), proxy);
                }
            }
        }
        let initial_cluster = processes
            .values()
            .map(|n| format!("{}={}", n.id, n.grpc))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = LocalCluster {
            nodes: processes,
            proxies,
            vtaskd: vtaskd.to_path_buf(),
            initial_cluster,
            unexpected_exits: Vec::new(),
        };
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        cluster.wait_for_leader(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.grpc.clone()).collect()
    }

    pub fn liveness(&self, id: u64) -> Liveness {
        match self.nodes.get(&id) {
            Some(n) if n.child.is_some() && n.paused => Liveness::Paused,
            Some(n) if n.child.is_some() => Liveness::Running,
            _ => Liveness::Down,
        }
    }

    /// Starts node `id` (again) with its data directory.
    pub fn spawn(&mut self, id: u64) -> Result<(), RunError> {
        let routes = self
            .proxies
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), proxy)| format!("{to}={}", proxy.addr()))
            .collect::<Vec<_>>()
            .join(",");
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| RunError::Cluster(format!("no node {id}")))?;
        if node.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| RunError::Cluster(format!("opening {}: {e}", node.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| RunError::Cluster(format!("opening {}: {e}", node.log.display())))?;
        let mut command = Command::new(&self.vtaskd);
        command
            // Chaos histories are about replication, not authentication.
            .arg("--insecure")
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(&node.grpc)
            .arg("--http")
            .arg(&node.http)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--initial-cluster")
            .arg(&self.initial_cluster);
        if !routes.is_empty() {
            command.arg("--peer-routes").arg(routes);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| RunError::Cluster(format!("starting {}: {e}", self.vtaskd.display())))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    fn signal(&mut self, id: u64, signal: i32) {
        if let Some(child) = self.nodes.get_mut(&id).and_then(|n| n.child.as_mut()) {
            // SAFETY: kill(2) on a child we spawned and have not reaped yet,
            // so its pid cannot have been reused.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// SIGKILL: gone at once, with whatever it had not fsynced.
    pub async fn kill(&mut self, id: u64) {
        self.signal(id, libc::SIGKILL);
        self.reap(id, Duration::from_secs(10)).await;
    }

    /// SIGTERM and wait for a clean exit (SIGKILL after 15 s).
    pub async fn terminate(&mut self, id: u64) {
        if self.liveness(id) == Liveness::Paused {
            self.resume(id);
        }
        self.signal(id, libc::SIGTERM);
        if !self.reap(id, Duration::from_secs(15)).await {
            self.kill(id).await;
        }
    }

    pub fn pause(&mut self, id: u64) {
        self.signal(id, libc::SIGSTOP);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.paused = node.child.is_some();
        }
    }

    pub fn resume(&mut self, id: u64) {
        self.signal(id, libc::SIGCONT);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.paused = false;
        }
    }

    /// Waits for node `id` to exit; true if it did within `timeout`.
    async fn reap(&mut self, id: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(node) = self.nodes.get_mut(&id) else {
                return true;
            };
            let Some(child) = node.child.as_mut() else {
                return true;
            };
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    node.child = None;
                    node.paused = false;
                    return true;
                }
                Ok(None) if Instant::now() >= deadline => return false,
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Notes and restarts nodes that exited without being told to.
    pub fn restart_crashed(&mut self) -> Result<(), RunError> {
        let mut crashed = Vec::new();
        for node in self.nodes.values_mut() {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    crashed.push((node.id, status.to_string()));
                    node.child = None;
                    node.paused = false;
                }
            }
        }
        for (id, status) in crashed {
            self.unexpected_exits.push((id, status));
            self.spawn(id)?;
        }
        Ok(())
    }

    pub fn set_link(&self, from: u64, to: u64, state: LinkState) {
        if let Some(proxy) = self.proxies.get(&(from, to)) {
            proxy.set(state);
        }
    }

    pub fn heal_links(&self) {
        for proxy in self.proxies.values() {
            proxy.set(LinkState::default());
        }
    }

    /// Every node running and unpaused, every link healed.
    pub async fn heal_all(&mut self) -> Result<(), RunError> {
        self.heal_links();
        for id in self.ids() {
            match self.liveness(id) {
                Liveness::Paused => self.resume(id),
                Liveness::Down => self.spawn(id)?,
                Liveness::Running => {}
            }
        }
        self.restart_crashed()
    }

    /// A client for membership calls, on every running node.
    pub fn admin(&self) -> vtask_client::Client {
        let endpoints = self
            .ids()
            .into_iter()
            .filter(|id| self.liveness(*id) == Liveness::Running)
            .map(|id| self.nodes[&id].grpc.clone())
            .collect();
        vtask_client::Client::new(endpoints)
            .user("chaos")
            .retry_for(Duration::from_secs(30))
    }

    /// The `member` fault: removes node `id` (it stops by itself), wipes
    /// its data directory, starts it again empty and adds it back, waiting
    /// until it is a caught-up voter. A refused removal (no quorum just
    /// now) is reported, not a failure; a node that cannot be added back is.
    pub async fn replace_member(&mut self, id: u64) -> Result<String, RunError> {
        let started = Instant::now();
        if let Err(e) = self.admin().remove_member(id).await {
            return Ok(format!("n{id}: removal refused: {e}"));
        }
        // A removed node stops serving and exits by itself.
        if !self.reap(id, Duration::from_secs(15)).await {
            self.kill(id).await;
        }
        let removed_ms = started.elapsed().as_millis();
        let node = &self.nodes[&id];
        if node.data_dir.exists() {
            std::fs::remove_dir_all(&node.data_dir).map_err(|e| {
                RunError::Cluster(format!("wiping {}: {e}", node.data_dir.display()))
            })?;
        }
        let address = node.grpc.clone();
        self.spawn(id)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match self.admin().add_member(id, &address, false).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("chaos: adding n{id} back: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(RunError::Cluster(format!(
                        "n{id} was removed but could not be added back within 120 s: {e}"
                    )))
                }
            }
        }
        Ok(format!(
            "n{id} removed ({removed_ms} ms), disk wiped, added back and caught up ({} ms in all)",
            started.elapsed().as_millis()
        ))
    }

    /// The node that reports itself leader, asking the running nodes.
    pub async fn leader(&self) -> Option<u64> {
        for id in self.ids() {
            if self.liveness(id) != Liveness::Running {
                continue;
            }
            if let Ok(status) = self.status(id).await {
                let me = status.members.iter().find(|m| m.node_id == id);
                if status.leader_id == Some(id) && me.is_some_and(|m| m.role == Role::Leader as i32)
                {
                    return Some(id);
                }
            }
        }
        None
    }

    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, RunError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.leader().await {
                return Ok(id);
            }
            if Instant::now() >= deadline {
                return Err(RunError::Cluster(format!(
                    "no leader within {timeout:?}; node logs are in {}",
                    self.log_dir().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn status(&self, id: u64) -> Result<StatusResponse, RunError> {
        let node = self
            .nodes
            .get(&id)
            .ok_or_else(|| RunError::Cluster(format!("no node {id}")))?;
        node_status(&node.grpc).await
    }

    pub fn log_dir(&self) -> PathBuf {
        self.nodes
            .values()
            .next()
            .and_then(|n| n.log.parent().and_then(Path::parent))
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// SIGKILL every node; used when the run ends or fails.
    pub async fn shutdown(&mut self) {
        for id in self.ids() {
            self.resume(id);
            self.kill(id).await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // No node may outlive the runner, even when it fails half-way.
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `Cluster.Status` of the node at `addr`, with a short deadline.
pub async fn node_status(addr: &str) -> Result<StatusResponse, RunError> {
    let channel = vtask_client::Client::channel(addr)
        .map_err(|e| RunError::Cluster(format!("{addr}: {e}")))?;
    let mut request = tonic::Request::new(StatusRequest {});
    request.set_timeout(Duration::from_secs(1));
    ClusterClient::new(channel)
        .status(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| RunError::Cluster(format!("{addr}: {}", s.message())))
}
