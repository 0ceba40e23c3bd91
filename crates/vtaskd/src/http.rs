//! The HTTP port: `/metrics` (Prometheus text), `/health`, and `/status`
//! (JSON, with the state digest) for operators and tests, and the vSphere
//! SOAP door at `/sdk` (`soap.rs`).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::node::Node;

pub async fn serve(
    addr: SocketAddr,
    node: Node,
    sdk: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(node)
        .merge(sdk);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the HTTP port {addr}: {e}"))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn metrics(State(node): State<Node>) -> String {
    node.metrics.render(&node.gauges())
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

/// 200 when this node knows a leader (it can serve requests), 503 otherwise.
async fn health(State(node): State<Node>) -> (StatusCode, String) {
    let leader = node.raft.metrics().borrow().current_leader;
    match leader {
        Some(leader) => (StatusCode::OK, format!("ok: leader is node {leader}\n")),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no leader known\n".into()),
    }
}

async fn status(State(node): State<Node>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let gauges = node.gauges();
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
    });
    (StatusCode::OK, axum::Json(body))
}
