//! `vtaskd`: one node of a vtask cluster.
//!
//! Startup: read the configuration, open the store, start Raft (the lowest
//! member of a new cluster initializes it), then serve the public gRPC API
//! and the internal Raft service on one port and `/metrics` on another.
//! Shutdown (SIGTERM or SIGINT): stop accepting, let in-flight calls finish,
//! stop Raft, exit 0.

mod api;
mod config;
mod housekeeping;
mod http;
mod metrics;
mod node;
#[cfg(debug_assertions)]
mod planted;
mod proposer;
mod raft_service;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use vtask_proto::raft::v1::raft_service_server::RaftServiceServer;

use crate::config::{Config, Flags, LogFormat};
use crate::node::Node;

pub type Raft = openraft::Raft<vtask_store::TypeConfig>;

fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vtaskd: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vtaskd: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vtaskd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Runs the node until `shutdown` completes, then stops it cleanly.
async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tracing::info!(node_id = config.node_id, listen = %config.listen, http = %config.http, data_dir = %config.data_dir.display(), "starting");
    if config.clock_offset_ms != 0 {
        tracing::warn!(
            offset_ms = config.clock_offset_ms,
            "this node's clock is shifted for testing (--clock-offset-ms)"
        );
        proposer::set_clock_offset(config.clock_offset_ms);
    }
    #[cfg(debug_assertions)]
    if let Some(bug) = planted::enable_from_env()? {
        tracing::warn!(
            bug,
            "PLANTED BUG ENABLED: this node is deliberately broken (debug build, {})",
            planted::ENV
        );
    }
    let node = Node::start(&config).await?;
    housekeeping::start(node.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let (mut health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<vtask_proto::v1::task_server::TaskServer<api::TaskApi>>()
        .await;
    health_reporter.set_serving::<vtask_proto::v1::task_manager_server::TaskManagerServer<api::TaskManagerApi>>().await;
    health_reporter
        .set_serving::<vtask_proto::v1::cluster_server::ClusterServer<api::ClusterApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vtask_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the gRPC port {}", config.listen))?;
    let grpc = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            RaftServiceServer::new(raft_service::RaftServer::new(node.clone()))
                .max_decoding_message_size(vtask_raft::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(vtask_raft::MAX_MESSAGE_BYTES),
        )
        .add_service(api::task_service(node.clone()))
        .add_service(api::task_manager_service(node.clone()))
        .add_service(api::cluster_service(node.clone()))
        .serve_with_incoming_shutdown(
            // Without nodelay on every accepted socket, Nagle's algorithm and
            // delayed ACKs add ~40 ms to each small reply.
            tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
                .map_err(|e| anyhow::anyhow!("listening on {}: {e}", config.listen))?,
            stopped(),
        );
    let http = http::serve(config.http, node.clone(), stopped());

    let grpc = tokio::spawn(grpc);
    let http = tokio::spawn(http);
    tracing::info!("serving");
    shutdown.await;
    let _ = stop_tx.send(true);
    let grpc_result = grpc.await;
    let http_result = http.await;
    if let Err(e) = node.raft.shutdown().await {
        tracing::warn!("stopping Raft: {e}");
    }
    grpc_result
        .context("gRPC server task")?
        .context("gRPC server")?;
    http_result.context("HTTP server task")??;
    tracing::info!("stopped");
    Ok(())
}
