//! The HTTP port: `/metrics` (Prometheus text), `/health`, `/status`
//! (JSON, with the state digest) for operators, probes and tests, and the
//! web view at `/ui` (`ui.rs`) and the vSphere SOAP door at `/sdk` (`soap.rs`).
//!
//! On a TLS node the port speaks both: a connection whose first byte opens
//! a TLS handshake (0x16) gets TLS with the node's certificate and every
//! route; a plain-text connection gets the probes' routes only (`/health`,
//! `/metrics`, `/status`: no credentials, no task), and `/ui` and `/sdk` answer with a
//! redirect to https on the same port. So health checks (`vtaskd health`,
//! compose and Kubernetes probes) keep working unchanged, and a token never
//! crosses plain text on a node that has TLS.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

use crate::node::Node;
use crate::service::TaskService;
use crate::tls::TlsFiles;

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a new connection may take to send its first byte, and a TLS
/// client its handshake.
const FIRST_BYTES: Duration = Duration::from_secs(10);
/// How long open connections get to finish once the node stops.
const DRAIN: Duration = Duration::from_secs(5);

pub async fn serve(
    addr: SocketAddr,
    node: Node,
    tasks: TaskService,
    sdk: Router,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = tls
        .as_ref()
        .map(crate::tls::http_config)
        .transpose()?
        .map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probes = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(node.clone());
    let ui = crate::ui::Ui::new(tasks, node.id, acceptor.is_some(), stop_rx);
    let full = probes.clone().merge(crate::ui::routes(ui)).merge(sdk);
    let plain = match acceptor {
        None => full.clone(),
        Some(_) => probes.fallback(crate::ui::tls_only),
    };
    let listener =
        listen(addr).map_err(|e| anyhow::anyhow!("binding the HTTP port {addr}: {e}"))?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!("HTTP port {addr}: accepting: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small replies and events: without nodelay, Nagle's algorithm and
        // delayed ACKs hold each for ~40 ms.
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (full, plain, acceptor) = (full.clone(), plain.clone(), acceptor.clone());
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_connection(stream, full, watcher).await;
            };
            let mut first = [0u8; 1];
            match tokio::time::timeout(FIRST_BYTES, stream.peek(&mut first)).await {
                Ok(Ok(1)) => {}
                _ => return,
            }
            if first[0] != TLS_HANDSHAKE {
                return serve_connection(stream, plain, watcher).await;
            }
            match tokio::time::timeout(FIRST_BYTES, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, full, watcher).await,
                Ok(Err(e)) => tracing::debug!("HTTP port: TLS handshake: {e}"),
                Err(_) => {}
            }
        });
    }
    // Event streams end; idle connections close, busy ones finish their reply.
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP port: connections still open after {DRAIN:?}; closing them");
    }
    Ok(())
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes, or the
/// node stops and its last reply is done.
async fn serve_connection<S>(
    stream: S,
    routes: Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(routes));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("HTTP port: {e}");
    }
}

async fn metrics(State(node): State<Node>) -> String {
    node.metrics.render(&node.gauges(), &node.disk.state())
}

/// `GET /health` on the node at `addr` (HOST:PORT; an unspecified IP is
/// probed on loopback), for `vtaskd health`: the body when the answer is
/// 200, the status line or the failure otherwise. Blocking and small on
/// purpose: it runs as a container's health check, once every few seconds.
pub fn probe_health(addr: &str, timeout: std::time::Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};

    let mut targets: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolving: {e}"))?
        .collect();
    for target in &mut targets {
        if target.ip().is_unspecified() {
            target.set_ip(match target {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
    }
    let target = targets.first().ok_or("resolves to no address")?;
    let mut stream =
        TcpStream::connect_timeout(target, timeout).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut reply = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut reply)
        .map_err(|e| format!("reading: {e}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(body.to_string())
    } else {
        Err(format!("{status_line}: {}", body.trim_end()))
    }
}

/// 200 when this node knows a leader (it can serve requests), 503 otherwise
/// (also once Raft has stopped on an error, just before the node exits).
///
/// A node whose disk is low stays 200 and says so in the body: it still
/// serves every read, and on a follower Raft still replicates to it. As a
/// readiness probe (Kubernetes, compose) a 503 would take its reads away
/// too, and when the leader's disk is low it would take every node's reads
/// away, though none of them could write any better; the refused writes
/// answer RESOURCE_EXHAUSTED with the node and its free space, and
/// `vtask_disk_low` on /metrics is what to alert on.
async fn health(State(node): State<Node>) -> (StatusCode, String) {
    let (leader, failed) = {
        let metrics = node.raft.metrics();
        let metrics = metrics.borrow();
        (
            metrics.current_leader,
            metrics
                .running_state
                .as_ref()
                .err()
                .map(ToString::to_string),
        )
    };
    let disk = node.disk.state();
    let disk_note = format!(
        "; disk{}: {} free, reserve {}{}",
        if disk.low { " low" } else { "" },
        crate::disk::human(disk.free),
        crate::disk::human(disk.reserve),
        if disk.low { ", writes refused" } else { "" },
    );
    match (failed, leader) {
        (Some(fatal), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("raft stopped: {fatal}{disk_note}\n"),
        ),
        (None, Some(leader)) => (
            StatusCode::OK,
            format!("ok: leader is node {leader}{disk_note}\n"),
        ),
        (None, None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no leader known{disk_note}\n"),
        ),
    }
}

async fn status(State(node): State<Node>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let gauges = node.gauges();
    let disk = node.disk.state();
    let leader = node.raft.metrics().borrow().current_leader;
    let read = node.read.clone();
    let digest = tokio::task::spawn_blocking(move || read.digest()).await;
    let (digest_index, digest) = match digest {
        Ok(Ok((index, digest))) => (index, digest),
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"error": e.to_string()})),
            )
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"error": e.to_string()})),
            )
        }
    };
    let body = serde_json::json!({
        "nodeId": node.id,
        "leaderId": leader,
        "term": gauges.term,
        "isLeader": gauges.is_leader,
        "lastLogIndex": gauges.last_log_index,
        "appliedIndex": digest_index,
        "snapshotIndex": gauges.snapshot_index,
        "stateDigest": digest,
        "disk": {
            "freeBytes": disk.free,
            "reserveBytes": disk.reserve,
            "low": disk.low,
        },
    });
    (StatusCode::OK, axum::Json(body))
}

/// How many connections may wait to be accepted. The default of 128 (what
/// `tokio::net::TcpListener::bind` asks for here) dropped the SYNs of 256
/// clients connecting at once, and each then waited a second for its
/// retransmission (`vtask bench --clients 256`).
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` for one of the node's doors.
pub(crate) fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted node binds its port again at once, not after TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
