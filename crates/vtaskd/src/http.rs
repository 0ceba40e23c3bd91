//! The HTTP port: `/metrics` (Prometheus text), `/health`, and `/status`
//! (JSON, with the state digest) for operators and tests.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::node::Node;

pub async fn serve(
    addr: SocketAddr,
    node: Node,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(node);
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
