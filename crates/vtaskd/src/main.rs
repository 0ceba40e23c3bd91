//! `vtaskd`: one node of a vtask cluster.
//!
//! Startup: read the configuration, open the store, start Raft (the lowest
//! member of a new cluster initializes it), then serve the public gRPC API
//! and the internal Raft service on one port, and `/metrics`, `/health` and
//! the web view (`/ui`) on another.
//! Shutdown (SIGTERM or SIGINT): a leader hands its leadership to a caught-up
//! voter, then the node stops accepting, lets in-flight calls finish, stops
//! Raft and exits 0; a node removed from the cluster stops the same way. If
//! Raft stops by itself (a write of the store failed: a full disk, an I/O
//! error), the node stops serving the same way and exits 1, saying why, for
//! its supervisor to restart it once the cause is gone.

mod api;
mod auth;
mod config;
mod disk;
mod housekeeping;
mod http;
mod limits;
mod longrunning;
mod membership;
mod metrics;
mod node;
#[cfg(debug_assertions)]
mod planted;
mod proposer;
mod raft_service;
mod service;
mod soap;
mod tls;
mod ui;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sha2::Digest;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use vtask_proto::raft::v1::raft_service_server::RaftServiceServer;

use crate::auth::Auth;
use crate::config::{AuthSetting, Config, Flags, LogFormat, Tool};
use crate::node::Node;

pub type Raft = openraft::Raft<vtask_store::TypeConfig>;

// Every request allocates many small, short-lived buffers (HTTP/2 frames,
// protobuf and JSON values, log entries); glibc's malloc cost about a tenth
// of a node's CPU under load (issue #6).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut flags = Flags::parse();
    match flags.tool.take() {
        Some(Tool::CheckConfig) => return check_config(flags),
        Some(tool) => return run_tool(tool, &flags),
        None => {}
    }
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vtaskd: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.worker_threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
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

fn run_tool(tool: Tool, flags: &Flags) -> ExitCode {
    match tool {
        Tool::Health { addr, timeout_ms } => {
            let Some(addr) = addr.or_else(|| flags.http.clone()) else {
                eprintln!("vtaskd health: no address (give ADDR, --http or VTASKD_HTTP)");
                return ExitCode::from(2);
            };
            match http::probe_health(&addr, std::time::Duration::from_millis(timeout_ms)) {
                Ok(body) => {
                    print!("{body}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vtaskd health: {addr}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Tool::HashToken { token } => {
            let Some(token) = argument_or_stdin(token, "token") else {
                return ExitCode::FAILURE;
            };
            if token.is_empty() || token.len() > auth::MAX_TOKEN_LEN {
                eprintln!("vtaskd: a token is 1 to {} bytes long", auth::MAX_TOKEN_LEN);
                return ExitCode::from(2);
            }
            println!("{}", auth::to_hex(&auth::sha256(&token)));
            ExitCode::SUCCESS
        }
        Tool::HashPassword { password } => {
            let Some(password) = argument_or_stdin(password, "password") else {
                return ExitCode::FAILURE;
            };
            if password.is_empty() || password.len() > auth::MAX_TOKEN_LEN {
                eprintln!(
                    "vtaskd: a password is 1 to {} bytes long",
                    auth::MAX_TOKEN_LEN
                );
                return ExitCode::from(2);
            }
            match auth::hash_password(&password) {
                Ok(phc) => {
                    println!("{phc}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vtaskd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Tool::CheckConfig => unreachable!("main runs check-config with the flags it owns"),
        Tool::Restore {
            from,
            data_dir,
            node_id,
            initial_cluster,
            cluster_id,
        } => restore(&from, &data_dir, node_id, &initial_cluster, cluster_id),
        Tool::NewToken => match auth::random_token() {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vtaskd: reading /dev/urandom: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `vtaskd restore`: seeds one node's data directory of a new cluster from
/// a backup file (see `vtask_store::restore`).
fn restore(
    from: &std::path::Path,
    data_dir: &std::path::Path,
    node_id: u64,
    initial_cluster: &str,
    cluster_id: Option<String>,
) -> ExitCode {
    let members = match config::parse_cluster(initial_cluster) {
        Ok(members) => members,
        Err(e) => {
            eprintln!("vtaskd restore: {e}");
            return ExitCode::from(2);
        }
    };
    if !members.contains_key(&node_id) {
        eprintln!("vtaskd restore: node {node_id} is not in --initial-cluster");
        return ExitCode::from(2);
    }
    let cluster_id = match cluster_id {
        Some(id)
            if id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') =>
        {
            eprintln!("vtaskd restore: --cluster-id is 1 to 128 letters, digits, '-', '_' or '.'");
            return ExitCode::from(2);
        }
        Some(id) => id,
        None => {
            // The same on every node: the backup's checksum and the members.
            let summary = match std::fs::File::open(from)
                .map_err(vtask_store::snapfile::FileError::Io)
                .and_then(|f| vtask_store::snapfile::verify(std::io::BufReader::new(f)))
            {
                Ok(summary) => summary,
                Err(e) => {
                    eprintln!("vtaskd restore: {}: {e}", from.display());
                    return ExitCode::from(2);
                }
            };
            let members: Vec<String> = members.iter().map(|(id, a)| format!("{id}={a}")).collect();
            let seed = format!("{}\n{}", summary.checksum, members.join(","));
            auth::to_hex(&sha2::Sha256::digest(seed.as_bytes()))[..32].to_string()
        }
    };
    match vtask_store::restore(from, data_dir, &members, &cluster_id) {
        Ok(restored) => {
            println!(
                "vtaskd restore: node {node_id}: restored {} at applied index {}, digest {}, {} tasks, revision {}; new cluster id {cluster_id} (origin {})",
                data_dir.display(),
                restored.header.applied_index,
                restored.digest,
                restored.header.tasks.unwrap_or_default(),
                restored.header.revision,
                restored.header.cluster_id.as_deref().unwrap_or("unknown"),
            );
            ExitCode::SUCCESS
        }
        Err(e @ (vtask_store::StoreError::Restore(_) | vtask_store::StoreError::Io { .. })) => {
            eprintln!("vtaskd restore: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("vtaskd restore: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A tool's secret argument, or else the first line of stdin (`None`, said
/// on stderr, when stdin cannot be read).
fn argument_or_stdin(given: Option<String>, what: &str) -> Option<String> {
    if given.is_some() {
        return given;
    }
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("vtaskd: reading the {what} from stdin: {e}");
        return None;
    }
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `vtaskd check-config`: everything startup reads before it opens the
/// store, so a deploy (systemd's ExecStartPre, a CI step) fails early and
/// says why.
fn check_config(flags: Flags) -> ExitCode {
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vtaskd check-config: {e}");
            return ExitCode::from(2);
        }
    };
    let users = match &config.auth {
        AuthSetting::Insecure => "authentication OFF (insecure)".to_string(),
        AuthSetting::File(path) => match auth::Users::load(path) {
            Ok(users) => format!("{} users from {}", users.len(), path.display()),
            Err(e) => {
                eprintln!("vtaskd check-config: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let sessions = match soap::session_key(config.session_key_file.as_deref()) {
        Ok(_) => match &config.session_key_file {
            Some(path) => format!("SOAP sessions signed with {}", path.display()),
            None => "SOAP sessions valid on this node only (no --session-key-file)".to_string(),
        },
        Err(e) => {
            eprintln!("vtaskd check-config: {e}");
            return ExitCode::from(2);
        }
    };
    let transport = match &config.tls {
        None => "plain text".to_string(),
        Some(files) => match tls::server_config(files) {
            Ok(_) => format!("TLS, certificate {}", files.cert.display()),
            Err(e) => {
                eprintln!("vtaskd check-config: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let members: Vec<String> = config
        .initial_cluster
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect();
    println!(
        "vtaskd check-config: ok: node {} of {}, advertised as {}, listening on {} (HTTP {}), data in {} (writes refused below {} free), {}, {}, {}",
        config.node_id,
        members.join(","),
        config.advertise,
        config.listen,
        config.http,
        config.data_dir.display(),
        disk::human(config.disk_reserve),
        transport,
        users,
        sessions,
    );
    ExitCode::SUCCESS
}

/// The caller resolution this node's configuration asks for.
fn start_auth(setting: &AuthSetting) -> anyhow::Result<Auth> {
    match setting {
        AuthSetting::Insecure => {
            tracing::warn!(
                "INSECURE: authentication is OFF (insecure = true). Every caller holds every privilege and may name itself with x-vtask-user. Never run a shared cluster like this."
            );
            Ok(Auth::Insecure)
        }
        AuthSetting::File(path) => {
            let auth = Auth::from_file(path)?;
            tracing::info!(file = %path.display(), "authentication by bearer token; SIGHUP re-reads the users file");
            Ok(auth)
        }
    }
}

/// SIGHUP re-reads the users file; a file that does not load leaves the
/// users as they were, and the log says why.
fn reload_on_sighup(auth: Auth) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match auth.reload() {
                Ok(users) => tracing::info!(users, "SIGHUP: users file reloaded"),
                Err(e) => tracing::error!("SIGHUP: {e}; keeping the previous users"),
            }
        }
    });
    Ok(())
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
    tracing::info!(node_id = config.node_id, listen = %config.listen, advertise = %config.advertise, http = %config.http, data_dir = %config.data_dir.display(), "starting");
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
    let auth = start_auth(&config.auth)?;
    reload_on_sighup(auth.clone())?;
    let gate = service::Gate {
        auth,
        watches: limits::OpenCalls::new(
            "watches",
            "max_watches_per_user",
            config.max_watches_per_user,
        ),
        waits: limits::OpenCalls::new("waits", "max_waits_per_user", config.max_waits_per_user),
    };
    let node = Node::start(&config).await?;
    housekeeping::start(node.clone());
    let tasks = service::TaskService::new(node.clone(), gate);
    if config.session_key_file.is_none() && !tasks.auth().is_insecure() {
        tracing::warn!("no --session-key-file: vSphere SOAP sessions are valid on this node only; give every node the same key file");
    }
    let sdk = soap::router(
        tasks.clone(),
        soap::session_key(config.session_key_file.as_deref())?,
        soap::about(&config.initial_cluster),
    );
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
    health_reporter
        .set_serving::<vtask_proto::google::longrunning::operations_server::OperationsServer<
            longrunning::LongRunning,
        >>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vtask_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let listener = http::listen(config.listen)
        .with_context(|| format!("binding the gRPC port {}", config.listen))?;
    let mut server = tonic::transport::Server::builder().tcp_nodelay(true);
    let raft_service = RaftServiceServer::new(raft_service::RaftServer::new(node.clone()))
        .max_decoding_message_size(vtask_raft::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(vtask_raft::MAX_MESSAGE_BYTES);
    let members_only = config.tls.is_some();
    match &config.tls {
        Some(files) => {
            server = server
                .tls_config(tls::server_config(files)?)
                .context("TLS settings")?;
            tracing::info!(cert = %files.cert.display(), ca = %files.ca.display(), "TLS on; the Raft service takes cluster members only");
        }
        None => tracing::warn!(
            "PLAIN TEXT: no TLS. Tokens cross the network in the clear, and anyone who reaches this port can call the internal Raft service (append entries, forward requests in any user's name). Use only on a trusted network."
        ),
    }
    let grpc = server
        .add_service(health_service)
        .add_service(reflection)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            raft_service,
            move |request: tonic::Request<()>| {
                if members_only {
                    tls::members_only(request)
                } else {
                    Ok(request)
                }
            },
        ))
        .add_service(api::task_service(tasks.clone()))
        .add_service(api::task_manager_service(tasks.clone()))
        .add_service(longrunning::operations_service(tasks.clone()))
        .add_service(api::cluster_service(tasks.clone()))
        .serve_with_incoming_shutdown(
            // Without nodelay on every accepted socket, Nagle's algorithm and
            // delayed ACKs add ~40 ms to each small reply.
            tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
                .map_err(|e| anyhow::anyhow!("listening on {}: {e}", config.listen))?,
            stopped(),
        );
    let http = http::serve(
        config.http,
        node.clone(),
        tasks,
        sdk,
        config.tls.clone(),
        stopped(),
    );

    let grpc = tokio::spawn(grpc);
    let http = tokio::spawn(http);
    tracing::info!("serving");
    // Raft stops by itself only when a write of the log, the vote or the
    // state machine failed (ENOSPC past the disk reserve, an I/O error): it
    // never acknowledged the entry it could not write, and it serves nothing
    // more. A node that went on would answer stale reads and fail every
    // write for good; exiting says so loudly, and a restart (systemd's
    // Restart=on-failure, Kubernetes) reopens the store, which RocksDB
    // recovers to its last synced write, once there is room again.
    let mut removed = node.removed.subscribe();
    let failed = tokio::select! {
        () = shutdown => {
            node.hand_over_before_stopping().await;
            None
        }
        _ = removed.wait_for(|removed| *removed) => None,
        reason = node.raft_failed() => Some(reason),
    };
    if let Some(reason) = &failed {
        let disk = node.disk.state();
        tracing::error!(
            free = disk.free,
            reserve = disk.reserve,
            "Raft stopped: {reason}; stopping this node ({} free in {}). Nothing it acknowledged is lost; free space or fix the disk, then start it again",
            disk::human(disk.free),
            node.disk.dir().display(),
        );
    }
    let _ = stop_tx.send(true);
    let grpc_result = grpc.await;
    let http_result = http.await;
    if failed.is_none() {
        if let Err(e) = node.raft.shutdown().await {
            tracing::warn!("stopping Raft: {e}");
        }
    }
    grpc_result
        .context("gRPC server task")?
        .context("gRPC server")?;
    http_result.context("HTTP server task")??;
    if let Some(reason) = failed {
        anyhow::bail!("Raft stopped on an error, so the node stopped: {reason}");
    }
    tracing::info!("stopped");
    Ok(())
}
