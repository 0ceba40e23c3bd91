//! Configuration in two stages: raw values from a TOML file, `VTASKD_*`
//! environment variables and flags (in rising precedence), then one
//! validated [`Config`] whose errors name the setting and where it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::tls::TlsFiles;

/// The leader's heartbeat interval. A leader SIGKILL stops writes for about
/// the followers' leader lease (twice the election timeout) plus one vote
/// round: with 50/200 ms that measured 0.64-0.85 s here (100/600 ms: 2.2 s,
/// issue #17). The price is a shorter margin for a stalled node: on a
/// CPU-saturated 2-core machine whose three nodes share one disk (WAL fsync
/// stalls of 100-300 ms on all of them at once), 3 elections happened in
/// 10 minutes of `scripts/steady-leader.sh` at 64 clients.
pub const DEFAULT_HEARTBEAT_MS: u64 = 50;
/// The lower bound of the randomized election timeout; the upper is twice it.
pub const DEFAULT_ELECTION_TIMEOUT_MS: u64 = 200;

/// vtaskd: one node of a vtask cluster, the vSphere vim.Task API replicated with Raft.
///
/// Every setting can come from a flag, from the environment (VTASKD_<NAME>,
/// e.g. VTASKD_NODE_ID) or from the TOML file named by --config (keys as the
/// flags, with underscores: node_id, initial_cluster, ...). Flags win over the
/// environment, which wins over the file.
#[derive(Debug, Default, Parser)]
#[command(name = "vtaskd", version, about, long_about = None)]
pub struct Flags {
    /// TOML file with settings.
    #[arg(long, env = "VTASKD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id in --initial-cluster; may be left out when --advertise
    /// names this node's address there.
    #[arg(long, env = "VTASKD_NODE_ID")]
    pub node_id: Option<u64>,
    /// Address the gRPC port (public API and Raft) binds, IP:PORT, e.g.
    /// 127.0.0.1:7001, or 0.0.0.0:7001 in a container.
    #[arg(long, env = "VTASKD_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// This node's address as peers and clients reach it, HOST:PORT (a DNS
    /// name or an IP), e.g. vtask-0.vtask:7001: its entry in
    /// --initial-cluster. Given, it identifies the node, so --node-id may be
    /// left out (a StatefulSet's pods differ only by name).
    #[arg(long, env = "VTASKD_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Address of the HTTP port (/metrics, /health), e.g. 127.0.0.1:9001.
    #[arg(long, env = "VTASKD_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// Directory for the RocksDB data and snapshots; created when missing.
    #[arg(long, env = "VTASKD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Every member as ID=HOST:PORT, comma separated, HOST an IP or a DNS
    /// name, e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 or
    /// 1=vtask-1:7001,2=vtask-2:7001,3=vtask-3:7001. Names are resolved on
    /// every connection attempt, so a peer may come back at another IP.
    #[arg(long, env = "VTASKD_INITIAL_CLUSTER", value_name = "LIST")]
    pub initial_cluster: Option<String>,
    /// Instead of --initial-cluster, for a node that is new to a running
    /// cluster: members' gRPC addresses, HOST:PORT, comma separated. The node
    /// asks them to add it (as `vtask member add` would: a learner until it
    /// has caught up, then a voter) and waits. Needs --node-id and
    /// --advertise. Read only while the data directory is empty.
    #[arg(
        long,
        env = "VTASKD_JOIN",
        value_name = "ENDPOINTS",
        conflicts_with = "initial_cluster"
    )]
    pub join: Option<String>,
    /// Leader heartbeat interval in milliseconds [default: 50].
    #[arg(long, env = "VTASKD_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Election timeout lower bound in milliseconds; the upper bound is twice this, and a
    /// follower refuses to vote for that long after it last heard from its leader [default: 200].
    #[arg(long, env = "VTASKD_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
    /// Build a snapshot after this many log entries [default: 10000].
    #[arg(long, env = "VTASKD_SNAPSHOT_ENTRIES")]
    pub snapshot_entries: Option<u64>,
    /// Log entries kept after a snapshot, for followers that fall behind [default: 5000].
    #[arg(long, env = "VTASKD_KEEP_ENTRIES")]
    pub keep_entries: Option<u64>,
    /// Most commands the proposer puts into one Raft entry [default: 512].
    #[arg(long, env = "VTASKD_BATCH_MAX")]
    pub batch_max: Option<usize>,
    /// Most Raft entries the proposer has in flight at once [default: 4].
    #[arg(long, env = "VTASKD_BATCH_INFLIGHT")]
    pub batch_inflight: Option<usize>,
    /// Threads that run the node's async tasks [default: one per core]. Nodes
    /// that share a machine (a local cluster) spend less CPU waking each other
    /// with fewer.
    #[arg(long, env = "VTASKD_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "VTASKD_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// How long a finished task stays readable, in minutes; never below 10 (D16) [default: 10080, 7 days].
    #[arg(long, env = "VTASKD_RETENTION_MINUTES")]
    pub retention_minutes: Option<u64>,
    /// Task history collectors one user may hold at once (D18) [default: 32].
    #[arg(long, env = "VTASKD_MAX_COLLECTORS")]
    pub max_collectors: Option<u32>,
    /// A collector unused for this many seconds is destroyed (D24) [default: 1800].
    #[arg(long, env = "VTASKD_COLLECTOR_IDLE_SECS")]
    pub collector_idle_secs: Option<u64>,
    /// Testing only: shift this node's wall clock by this many milliseconds
    /// (may be negative), to rehearse clock skew between leaders.
    #[arg(
        long,
        env = "VTASKD_CLOCK_OFFSET_MS",
        hide = true,
        allow_hyphen_values = true
    )]
    pub clock_offset_ms: Option<i64>,
    /// Testing only: dial these peers at these addresses instead of their
    /// --initial-cluster address, as ID=HOST:PORT,... (`vtask chaos` routes
    /// each Raft link through its own fault-injecting proxy this way).
    #[arg(long, env = "VTASKD_PEER_ROUTES", hide = true, value_name = "LIST")]
    pub peer_routes: Option<String>,
    /// Users file (TOML): users, their token hashes and roles; re-read on SIGHUP.
    #[arg(long, env = "VTASKD_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Run without authentication: every caller holds every privilege and
    /// names itself with the x-vtask-user metadata. For tests and demos only.
    #[arg(long, env = "VTASKD_INSECURE")]
    pub insecure: bool,
    /// A secret file, the same on every node (32 bytes or more; `vtaskd
    /// new-token` makes one), that signs vSphere SOAP session cookies, so a
    /// session is valid on every node. Without it each node signs with a
    /// key of its own and a SOAP session works only on the node it logged in to.
    #[arg(long, env = "VTASKD_SESSION_KEY_FILE", value_name = "FILE")]
    pub session_key_file: Option<PathBuf>,
    /// This node's TLS certificate (PEM); with --tls-key and --tls-ca it turns
    /// TLS on for clients and peers (peers mutually authenticated).
    #[arg(long, env = "VTASKD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "VTASKD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA (PEM): peers must present a certificate it signed.
    #[arg(long, env = "VTASKD_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Serve plain text (no TLS) although authentication is on; say so
    /// only on a trusted network. --insecure implies it.
    #[arg(long, env = "VTASKD_PLAINTEXT")]
    pub plaintext: bool,
    /// WatchTasks streams one user may hold open on this node [default: 64].
    #[arg(long, env = "VTASKD_MAX_WATCHES_PER_USER")]
    pub max_watches_per_user: Option<usize>,
    /// WaitTask calls one user may have waiting on this node [default: 256].
    #[arg(long, env = "VTASKD_MAX_WAITS_PER_USER")]
    pub max_waits_per_user: Option<usize>,
    /// Free space to keep on the data directory's file system: below it the
    /// node refuses writes (RESOURCE_EXHAUSTED) and keeps serving reads, and
    /// takes writes again by itself once an eighth more than this is free.
    /// Bytes, or a number with KiB, MiB, GiB or TiB (K, M, G, T mean the
    /// same); 0 refuses nothing [default: 64MiB].
    #[arg(long, env = "VTASKD_DISK_RESERVE", value_name = "BYTES")]
    pub disk_reserve: Option<String>,
    /// How often the free space of the data directory is checked, in
    /// milliseconds [default: 1000].
    #[arg(long, env = "VTASKD_DISK_CHECK_INTERVAL_MS")]
    pub disk_check_interval_ms: Option<u64>,
    #[command(subcommand)]
    pub tool: Option<Tool>,
}

/// Helpers that do not start a node.
#[derive(Debug, clap::Subcommand)]
pub enum Tool {
    /// Print the SHA-256 (hex) of a token, for `token_sha256` in the users
    /// file. Reads the token from the first line of stdin when not given.
    HashToken { token: Option<String> },
    /// Print the Argon2id hash (a PHC string) of a password, for
    /// `password_hash` in the users file: vSphere clients log in with it.
    /// Reads the password from the first line of stdin when not given, so
    /// it stays out of the shell history.
    HashPassword { password: Option<String> },
    /// Print a fresh random token (32 bytes from the OS, hex).
    NewToken,
    /// Check the configuration as startup would (settings, the users file,
    /// the TLS files) without opening the store or any port; exit 0 and print
    /// a summary when it would start, 2 with the reason when not.
    CheckConfig,
    /// Seed the data directory of one node of a NEW cluster from a backup
    /// (`vtask snapshot save`): the same tasks, sessions (D27) and revisions,
    /// under a new cluster id, so a restored node never joins the old cluster.
    /// Run it once per node with the same FILE and --initial-cluster (and
    /// --cluster-id, if given), then start the nodes as usual. Refuses a
    /// directory that is not empty, and a damaged file; exit 0 and print the
    /// applied index, digest and cluster id when done, 2 on bad input, 1 on
    /// failure.
    Restore {
        /// The backup file.
        #[arg(long = "from", value_name = "FILE")]
        from: PathBuf,
        /// The new node's data directory: missing or empty.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The node's id in --initial-cluster.
        #[arg(long)]
        node_id: u64,
        /// The new cluster's members, ID=HOST:PORT,... as the nodes will
        /// start with.
        #[arg(long, value_name = "LIST")]
        initial_cluster: String,
        /// The new cluster's id [default: derived from the backup's checksum
        /// and --initial-cluster, so every node's restore agrees on it].
        #[arg(long, value_name = "ID")]
        cluster_id: Option<String>,
    },
    /// Probe a node's /health: exit 0 when it answers 200 (the node knows a
    /// leader), 1 otherwise. For container health checks, where no curl is.
    Health {
        /// The node's HTTP address [default: --http / VTASKD_HTTP; an
        /// unspecified IP such as 0.0.0.0 is probed on loopback].
        addr: Option<String>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

/// The TOML file's contents: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    node_id: Option<u64>,
    listen: Option<String>,
    advertise: Option<String>,
    http: Option<String>,
    data_dir: Option<PathBuf>,
    initial_cluster: Option<String>,
    join: Option<String>,
    heartbeat_ms: Option<u64>,
    election_timeout_ms: Option<u64>,
    snapshot_entries: Option<u64>,
    keep_entries: Option<u64>,
    batch_max: Option<usize>,
    batch_inflight: Option<usize>,
    worker_threads: Option<usize>,
    log_format: Option<String>,
    retention_minutes: Option<u64>,
    max_collectors: Option<u32>,
    collector_idle_secs: Option<u64>,
    clock_offset_ms: Option<i64>,
    peer_routes: Option<String>,
    auth_file: Option<PathBuf>,
    insecure: Option<bool>,
    session_key_file: Option<PathBuf>,
    max_watches_per_user: Option<usize>,
    max_waits_per_user: Option<usize>,
    disk_reserve: Option<ByteSize>,
    disk_check_interval_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    plaintext: Option<bool>,
}

/// A size in the config file: a number of bytes, or text as the flag takes it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ByteSize {
    Bytes(u64),
    Text(String),
}

/// How callers are authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthSetting {
    /// `insecure = true`: no authentication at all.
    Insecure,
    /// Bearer tokens from this users file.
    File(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration of one node.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: u64,
    pub listen: SocketAddr,
    /// This node's address in `initial_cluster`, as peers and clients reach it.
    pub advertise: String,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    /// Node id → gRPC address of every initial member, this node included
    /// (with --join: this node only).
    pub initial_cluster: BTreeMap<u64, String>,
    /// `--join`: members to ask to add this new node; empty otherwise.
    pub join: Vec<String>,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    pub snapshot_entries: u64,
    pub keep_entries: u64,
    pub batch_max: usize,
    pub batch_inflight: usize,
    /// `None`: tokio's default, one per core.
    pub worker_threads: Option<usize>,
    pub log_format: LogFormat,
    pub tasks: TaskSettings,
    pub clock_offset_ms: i64,
    /// Peer id → the address this node dials it at, when not its member address.
    pub peer_routes: BTreeMap<u64, String>,
    pub auth: AuthSetting,
    /// Signs SOAP session cookies; `None`: a random key of this node's.
    pub session_key_file: Option<PathBuf>,
    pub max_watches_per_user: usize,
    pub max_waits_per_user: usize,
    /// Free bytes below which the node refuses writes (0: never).
    pub disk_reserve: u64,
    pub disk_check_interval: Duration,
    /// TLS for clients and peers; `None` serves plain text.
    pub tls: Option<TlsFiles>,
}

/// Settings of the task service that every node should share: the leader's
/// values go into the log entries it proposes.
#[derive(Clone, Copy, Debug)]
pub struct TaskSettings {
    pub retention: Duration,
    pub max_collectors: u32,
    pub collector_idle: Duration,
}

/// A setting that is missing or wrong, named with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("missing setting `{0}` (flag --{1}, env VTASKD_{2}, or `{0}` in the config file)")]
    Missing(&'static str, &'static str, &'static str),
    #[error("setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Merges flags (which already include the environment) over the file.
    pub fn load(flags: Flags) -> Result<Config, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        macro_rules! pick {
            ($field:ident) => {
                flags.$field.or(file.$field)
            };
        }
        macro_rules! required {
            ($field:ident, $flag:literal, $env:literal) => {
                pick!($field).ok_or(ConfigError::Missing(stringify!($field), $flag, $env))?
            };
        }
        let listen = parse_addr("listen", &required!(listen, "listen", "LISTEN"))?;
        let http = parse_addr("http", &required!(http, "http", "HTTP"))?;
        let data_dir = required!(data_dir, "data-dir", "DATA_DIR");
        let advertise = match pick!(advertise) {
            Some(addr) => Some(host_port(&addr).map_err(|message| ConfigError::Invalid {
                key: "advertise",
                message,
            })?),
            None => None,
        };
        let join = match pick!(join) {
            Some(text) => parse_endpoints(&text)?,
            None => Vec::new(),
        };
        let initial_cluster = match (&join[..], pick!(initial_cluster)) {
            ([], Some(text)) => parse_cluster(&text)?,
            ([], None) => {
                return Err(ConfigError::Missing(
                    "initial_cluster",
                    "initial-cluster",
                    "INITIAL_CLUSTER",
                ))
            }
            (_, Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "join",
                    message: "give either join (a new node) or initial_cluster, not both".into(),
                })
            }
            (_, None) => {
                let (Some(id), Some(addr)) = (pick!(node_id), advertise.clone()) else {
                    return Err(ConfigError::Invalid {
                        key: "join",
                        message: "a joining node needs node_id and advertise (the address the members reach it at)".into(),
                    });
                };
                BTreeMap::from([(id, addr)])
            }
        };
        let node_id = match (pick!(node_id), &advertise) {
            (Some(id), _) => id,
            (None, Some(addr)) => initial_cluster
                .iter()
                .find(|(_, member)| *member == addr)
                .map(|(id, _)| *id)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "advertise",
                    message: format!(
                        "{addr:?} is no member's address in initial_cluster, so it names no node id"
                    ),
                })?,
            (None, None) => return Err(ConfigError::Missing("node_id", "node-id", "NODE_ID")),
        };
        let Some(member_addr) = initial_cluster.get(&node_id).cloned() else {
            return Err(ConfigError::Invalid {
                key: "initial_cluster",
                message: format!("does not name this node (node_id {node_id})"),
            });
        };
        if let Some(addr) = advertise.as_ref().filter(|addr| **addr != member_addr) {
            return Err(ConfigError::Invalid {
                key: "advertise",
                message: format!(
                    "{addr:?} is not node {node_id}'s address in initial_cluster ({member_addr:?}); peers dial the latter"
                ),
            });
        }
        let peer_routes = match pick!(peer_routes) {
            Some(text) => parse_members("peer_routes", &text)?,
            None => BTreeMap::new(),
        };
        if let Some(id) = peer_routes
            .keys()
            .find(|id| **id == node_id || (join.is_empty() && !initial_cluster.contains_key(id)))
        {
            return Err(ConfigError::Invalid {
                key: "peer_routes",
                message: format!("node {id} is not a peer in initial_cluster"),
            });
        }
        let heartbeat = Duration::from_millis(positive(
            "heartbeat_ms",
            pick!(heartbeat_ms).unwrap_or(DEFAULT_HEARTBEAT_MS),
        )?);
        let election_timeout = Duration::from_millis(positive(
            "election_timeout_ms",
            pick!(election_timeout_ms).unwrap_or(DEFAULT_ELECTION_TIMEOUT_MS),
        )?);
        if election_timeout <= heartbeat * 2 {
            return Err(ConfigError::Invalid {
                key: "election_timeout_ms",
                message: format!(
                    "{} ms must be more than twice heartbeat_ms ({} ms)",
                    election_timeout.as_millis(),
                    heartbeat.as_millis()
                ),
            });
        }
        let log_format = match pick!(log_format).as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    key: "log_format",
                    message: format!("{other:?} is not text or json"),
                })
            }
        };
        let retention_minutes = pick!(retention_minutes).unwrap_or(7 * 24 * 60);
        let min_minutes = vtask_model::MIN_RETENTION_MILLIS / 60_000;
        if retention_minutes < min_minutes {
            return Err(ConfigError::Invalid {
                key: "retention_minutes",
                message: format!(
                    "{retention_minutes} is below the minimum of {min_minutes} minutes (D16)"
                ),
            });
        }
        let auth = match (pick!(auth_file), flags.insecure || file.insecure.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ConfigError::Invalid {
                    key: "insecure",
                    message: "an auth_file and insecure = true contradict each other; choose one"
                        .into(),
                })
            }
            (Some(path), false) => AuthSetting::File(path),
            (None, true) => AuthSetting::Insecure,
            (None, false) => {
                return Err(ConfigError::Invalid {
                    key: "auth_file",
                    message: "no users file is configured (flag --auth-file, env VTASKD_AUTH_FILE, or `auth_file` in the config file); to run without authentication say so with --insecure or `insecure = true`".into(),
                })
            }
        };
        let tls = match (pick!(tls_cert), pick!(tls_key), pick!(tls_ca)) {
            (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca }),
            (None, None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "tls_cert",
                    message: "TLS needs all three of tls_cert, tls_key and tls_ca".into(),
                })
            }
        };
        let plaintext = flags.plaintext || file.plaintext.unwrap_or(false);
        if tls.is_none() && !plaintext && auth != AuthSetting::Insecure {
            return Err(ConfigError::Invalid {
                key: "tls_cert",
                message: "no TLS is configured (flags --tls-cert, --tls-key, --tls-ca, or the same keys in the config file); to serve plain text say so with --plaintext or `plaintext = true`".into(),
            });
        }
        if tls.is_some() && plaintext {
            return Err(ConfigError::Invalid {
                key: "plaintext",
                message: "TLS files and plaintext = true contradict each other; choose one".into(),
            });
        }
        let tasks = TaskSettings {
            retention: Duration::from_secs(retention_minutes * 60),
            max_collectors: positive(
                "max_collectors",
                pick!(max_collectors).unwrap_or(vtask_model::DEFAULT_MAX_COLLECTORS) as u64,
            )? as u32,
            collector_idle: Duration::from_secs(positive(
                "collector_idle_secs",
                pick!(collector_idle_secs)
                    .unwrap_or(vtask_model::DEFAULT_COLLECTOR_IDLE_MILLIS / 1000),
            )?),
        };
        let disk_reserve = match (flags.disk_reserve, file.disk_reserve) {
            (Some(text), _) | (None, Some(ByteSize::Text(text))) => {
                parse_bytes("disk_reserve", &text)?
            }
            (None, Some(ByteSize::Bytes(bytes))) => bytes,
            (None, None) => crate::disk::DEFAULT_RESERVE,
        };
        let disk_check_interval = Duration::from_millis(positive(
            "disk_check_interval_ms",
            pick!(disk_check_interval_ms)
                .unwrap_or(crate::disk::DEFAULT_CHECK_INTERVAL.as_millis() as u64),
        )?);
        Ok(Config {
            auth,
            disk_reserve,
            disk_check_interval,
            session_key_file: pick!(session_key_file),
            tls,
            max_watches_per_user: positive(
                "max_watches_per_user",
                pick!(max_watches_per_user).unwrap_or(crate::limits::DEFAULT_MAX_WATCHES) as u64,
            )? as usize,
            max_waits_per_user: positive(
                "max_waits_per_user",
                pick!(max_waits_per_user).unwrap_or(crate::limits::DEFAULT_MAX_WAITS) as u64,
            )? as usize,
            tasks,
            clock_offset_ms: pick!(clock_offset_ms).unwrap_or(0),
            peer_routes,
            node_id,
            listen,
            advertise: member_addr,
            http,
            data_dir,
            initial_cluster,
            join,
            heartbeat,
            election_timeout,
            snapshot_entries: positive(
                "snapshot_entries",
                pick!(snapshot_entries).unwrap_or(10_000),
            )?,
            keep_entries: pick!(keep_entries).unwrap_or(5_000),
            batch_max: positive("batch_max", pick!(batch_max).unwrap_or(512) as u64)? as usize,
            batch_inflight: positive("batch_inflight", pick!(batch_inflight).unwrap_or(4) as u64)?
                as usize,
            worker_threads: match pick!(worker_threads) {
                Some(n) => Some(positive("worker_threads", n as u64)? as usize),
                None => None,
            },
            log_format,
        })
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

fn positive(key: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            key,
            message: "must be greater than 0".into(),
        });
    }
    Ok(value)
}

/// `67108864`, `64MiB`, `64 MiB`, `64M`, `1.5GiB`: a size in bytes, the
/// units binary (K, M, G, T mean KiB, MiB, GiB, TiB).
fn parse_bytes(key: &'static str, text: &str) -> Result<u64, ConfigError> {
    let invalid = |why: &str| ConfigError::Invalid {
        key,
        message: format!("{text:?} is not a size ({why}); say e.g. 67108864, 64MiB or 1GiB"),
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return Err(invalid("unknown unit")),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(1 << shift)
            .ok_or_else(|| invalid("too large"));
    }
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 && shift > 0 => {
            let bytes = value * (1u64 << shift) as f64;
            if bytes >= u64::MAX as f64 {
                return Err(invalid("too large"));
            }
            Ok(bytes.round() as u64)
        }
        _ => Err(invalid("no number")),
    }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|e| ConfigError::Invalid {
        key,
        message: format!("{text:?} is not HOST:PORT with an IP address: {e}"),
    })
}

/// Checks `HOST:PORT`, HOST an IP address (`[...]` for IPv6) or a DNS name;
/// names are resolved when dialled, not here.
pub(crate) fn host_port(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{text:?} is not HOST:PORT (an IP address or a DNS name): {why}");
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(text.to_string());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
        Ok(_) => {}
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(bad("the host is neither an IP address nor a DNS name"));
    }
    Ok(text.to_string())
}

/// Parses `1=127.0.0.1:7001,2=vtask-2:7001`.
/// `--join`'s list: HOST:PORT, comma separated, at least one.
fn parse_endpoints(text: &str) -> Result<Vec<String>, ConfigError> {
    let endpoints = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            host_port(e).map_err(|message| ConfigError::Invalid {
                key: "join",
                message,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(ConfigError::Invalid {
            key: "join",
            message: "names no member; give HOST:PORT,...".into(),
        });
    }
    Ok(endpoints)
}

pub fn parse_cluster(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    parse_members("initial_cluster", text)
}

fn parse_members(key: &'static str, text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key, message };
    let mut members = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| invalid(format!("{part:?} is not ID=HOST:PORT")))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{id:?} is not a node id")))?;
        let addr = host_port(addr.trim()).map_err(invalid)?;
        if members.insert(id, addr).is_some() {
            return Err(invalid(format!("node {id} is named twice")));
        }
    }
    if members.is_empty() {
        return Err(invalid("names no member".into()));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(extra: &[&str]) -> Flags {
        let mut args = vec![
            "vtaskd",
            "--node-id",
            "1",
            "--listen",
            "127.0.0.1:7001",
            "--http",
            "127.0.0.1:9001",
            "--data-dir",
            "/tmp/x",
            "--initial-cluster",
            "1=127.0.0.1:7001,2=127.0.0.1:7002",
        ];
        if !extra.contains(&"--auth-file") {
            args.push("--insecure");
        }
        args.extend_from_slice(extra);
        Flags::parse_from(args)
    }

    #[test]
    fn defaults_fill_the_rest() {
        let config = Config::load(flags(&[])).unwrap();
        assert_eq!(
            config.heartbeat,
            Duration::from_millis(DEFAULT_HEARTBEAT_MS)
        );
        assert_eq!(config.initial_cluster.len(), 2);
    }

    #[test]
    fn file_values_yield_to_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vtaskd.toml");
        std::fs::write(&path, "heartbeat_ms = 50\nbatch_max = 7\n").unwrap();
        let config = Config::load(flags(&[
            "--config",
            path.to_str().unwrap(),
            "--batch-max",
            "9",
        ]))
        .unwrap();
        assert_eq!(config.heartbeat, Duration::from_millis(50));
        assert_eq!(config.batch_max, 9);
    }

    #[test]
    fn worker_threads_default_to_tokios_choice_and_are_never_zero() {
        assert_eq!(Config::load(flags(&[])).unwrap().worker_threads, None);
        let one = Config::load(flags(&["--worker-threads", "1"])).unwrap();
        assert_eq!(one.worker_threads, Some(1));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vtaskd.toml");
        std::fs::write(&path, "worker_threads = 3\n").unwrap();
        let from_file = Config::load(flags(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(from_file.worker_threads, Some(3));
        let err = Config::load(flags(&["--worker-threads", "0"])).unwrap_err();
        assert!(err.to_string().contains("worker_threads"), "{err}");
    }

    #[test]
    fn errors_name_the_setting() {
        let err = Config::load(Flags::parse_from(["vtaskd", "--node-id", "1"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing setting `listen` (flag --listen, env VTASKD_LISTEN, or `listen` in the config file)"
        );
        let mut other_node = flags(&[]);
        other_node.node_id = Some(3);
        let err = Config::load(other_node).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `initial_cluster`: does not name this node (node_id 3)"
        );
        let err = parse_cluster("1=nowhere").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("setting `initial_cluster`: \"nowhere\" is not HOST:PORT"),
            "{err}"
        );
    }

    #[test]
    fn members_are_named_by_ip_or_dns_name() {
        let members = parse_cluster(
            "1=vtask-1:7001, 2=vtask-1.vtask.default.svc.cluster.local:7001,3=[::1]:7003",
        )
        .unwrap();
        assert_eq!(members[&1], "vtask-1:7001");
        assert_eq!(members[&2], "vtask-1.vtask.default.svc.cluster.local:7001");
        assert_eq!(members[&3], "[::1]:7003");
        for bad in [
            "1=vtask_1:7001",
            "1=vtask-1:0",
            "1=vtask-1:70000",
            "1=-vtask:7001",
            "1=vtask..x:7001",
            "1=:7001",
            "1=vtask-1",
        ] {
            let err = parse_cluster(bad).unwrap_err().to_string();
            assert!(err.contains("is not HOST:PORT"), "{bad}: {err}");
        }
    }

    /// A pod knows its name, not its ordinal: --advertise picks the node id.
    fn advertised(advertise: Option<&str>, node_id: Option<&str>) -> Result<Config, ConfigError> {
        let mut args = vec![
            "vtaskd",
            "--insecure",
            "--listen",
            "0.0.0.0:7001",
            "--http",
            "0.0.0.0:9001",
            "--data-dir",
            "/tmp/x",
            "--initial-cluster",
            "1=vtask-0.vtask:7001,2=vtask-1.vtask:7001,3=vtask-2.vtask:7001",
        ];
        if let Some(advertise) = advertise {
            args.extend(["--advertise", advertise]);
        }
        if let Some(id) = node_id {
            args.extend(["--node-id", id]);
        }
        Config::load(Flags::parse_from(args))
    }

    #[test]
    fn the_advertised_address_names_the_node_and_may_differ_from_listen() {
        let config = advertised(Some("vtask-1.vtask:7001"), None).unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.advertise, "vtask-1.vtask:7001");
        assert_eq!(config.listen, "0.0.0.0:7001".parse().unwrap());
        let same = advertised(Some("vtask-1.vtask:7001"), Some("2")).unwrap();
        assert_eq!(same.node_id, 2);
        let refusals = [
            (Some("vtask-7.vtask:7001"), None, "is no member's address"),
            (
                Some("vtask-1.vtask:7001"),
                Some("3"),
                "is not node 3's address",
            ),
            // Neither: nothing names the node.
            (None, None, "missing setting `node_id`"),
        ];
        for (advertise, node_id, expected) in refusals {
            let err = advertised(advertise, node_id).unwrap_err().to_string();
            assert!(err.contains(expected), "{advertise:?} {node_id:?}: {err}");
        }
        // Without --advertise a node's own entry is its address.
        assert_eq!(
            Config::load(flags(&[])).unwrap().advertise,
            "127.0.0.1:7001"
        );
    }

    #[test]
    fn peer_routes_name_peers_only() {
        let config = Config::load(flags(&["--peer-routes", "2=127.0.0.1:17012"])).unwrap();
        assert_eq!(
            config.peer_routes.get(&2).map(String::as_str),
            Some("127.0.0.1:17012")
        );
        for bad in ["1=127.0.0.1:17011", "3=127.0.0.1:17013"] {
            let err = Config::load(flags(&["--peer-routes", bad])).unwrap_err();
            assert!(
                err.to_string().starts_with("setting `peer_routes`"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_node_needs_a_users_file_or_an_explicit_insecure() {
        let mut bare = flags(&[]);
        bare.insecure = false;
        let err = Config::load(bare).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("setting `auth_file`: no users file"),
            "{err}"
        );
        let config = Config::load(flags(&[
            "--auth-file",
            "/etc/vtask/users.toml",
            "--plaintext",
        ]))
        .unwrap();
        assert_eq!(
            config.auth,
            AuthSetting::File("/etc/vtask/users.toml".into())
        );
        assert_eq!(
            Config::load(flags(&[])).unwrap().auth,
            AuthSetting::Insecure
        );
        let mut both = flags(&["--auth-file", "/etc/vtask/users.toml", "--plaintext"]);
        both.insecure = true;
        assert!(Config::load(both).is_err());
    }

    #[test]
    fn plain_text_with_authentication_must_be_asked_for() {
        let err = Config::load(flags(&["--auth-file", "/u.toml"])).unwrap_err();
        assert!(err.to_string().contains("no TLS is configured"), "{err}");
        let tls = [
            "--tls-cert",
            "/n.pem",
            "--tls-key",
            "/n-key.pem",
            "--tls-ca",
            "/ca.pem",
        ];
        let mut args = vec!["--auth-file", "/u.toml"];
        args.extend(tls);
        let config = Config::load(flags(&args)).unwrap();
        assert_eq!(config.tls.unwrap().ca, PathBuf::from("/ca.pem"));
        let err =
            Config::load(flags(&["--auth-file", "/u.toml", "--tls-cert", "/n.pem"])).unwrap_err();
        assert!(err.to_string().contains("all three"), "{err}");
        args.push("--plaintext");
        assert!(Config::load(flags(&args)).is_err());
        // --insecure implies plain text.
        assert!(Config::load(flags(&[])).unwrap().tls.is_none());
    }

    #[test]
    fn the_disk_reserve_is_bytes_or_a_size_with_a_unit() {
        let config = Config::load(flags(&[])).unwrap();
        assert_eq!(config.disk_reserve, 64 << 20);
        assert_eq!(config.disk_check_interval, Duration::from_secs(1));
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("16MiB", 16 << 20),
            ("16 MiB", 16 << 20),
            ("16M", 16 << 20),
            ("1.5GiB", 3 << 29),
            ("2T", 2 << 40),
        ] {
            let config = Config::load(flags(&["--disk-reserve", text])).unwrap();
            assert_eq!(config.disk_reserve, bytes, "{text}");
        }
        for bad in ["", "MiB", "12 parsecs", "1e3", "1.5", "99999999999T"] {
            let err = Config::load(flags(&["--disk-reserve", bad])).unwrap_err();
            assert!(
                err.to_string().starts_with("setting `disk_reserve`"),
                "{bad}: {err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vtaskd.toml");
        for (line, bytes) in [
            ("disk_reserve = 1048576", 1 << 20),
            ("disk_reserve = \"256MiB\"", 256 << 20),
        ] {
            std::fs::write(&path, format!("{line}\ndisk_check_interval_ms = 250\n")).unwrap();
            let config = Config::load(flags(&["--config", path.to_str().unwrap()])).unwrap();
            assert_eq!(config.disk_reserve, bytes, "{line}");
            assert_eq!(config.disk_check_interval, Duration::from_millis(250));
        }
        let err = Config::load(flags(&["--disk-check-interval-ms", "0"])).unwrap_err();
        assert!(err.to_string().contains("disk_check_interval_ms"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vtaskd.toml");
        std::fs::write(&path, "heartbeat = 50\n").unwrap();
        let err = Config::load(flags(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `heartbeat`"),
            "{err}"
        );
    }
}
