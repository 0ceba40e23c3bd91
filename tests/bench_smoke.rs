//! `vtask bench` against a real three-node cluster for a few seconds, so the
//! load generator cannot rot: every workload must complete operations
//! without a single error, and the report must carry the servers' CPU time.
//! (The figures themselves are for `just bench`, not for tests.)

use std::path::{Path, PathBuf};
use std::process::Command;

use vtask_tests::{Cluster, ClusterConfig};

/// The `vtask` binary of this build, next to `vtaskd`, or `$VTASK_BIN`.
fn vtask_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VTASK_BIN") {
        return PathBuf::from(bin);
    }
    vtask_tests::vtaskd_bin().with_file_name("vtask")
}

/// The pids of this cluster's vtaskd processes: other clusters may run
/// beside it, so they are told apart by their data directory.
fn cluster_pids(dir: &Path) -> Vec<u32> {
    let dir = dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let entry = entry.expect("/proc entry");
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("vtaskd") && cmdline.contains(&dir) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_workload_without_errors() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterConfig::default()).await?;
    let endpoints = cluster
        .nodes
        .values()
        .map(|n| n.grpc.clone())
        .collect::<Vec<_>>()
        .join(",");
    let pids = cluster_pids(cluster.dir());
    assert_eq!(pids.len(), 3, "vtaskd processes of this cluster: {pids:?}");
    let pid_list = pids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");

    let output = tokio::task::spawn_blocking(move || {
        Command::new(vtask_bin())
            .args(["--endpoints", &endpoints, "-o", "json", "bench"])
            .args(["progress,lifecycle,get,get-stale,mixed", "--clients", "4"])
            .args(["--duration", "1s", "--warmup", "300ms"])
            .args(["--server-pids", &pid_list])
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "vtask bench failed: {stderr}\n{}",
        cluster.logs()
    );

    let reports = stdout
        .lines()
        .map(serde_json::from_str::<serde_json::Value>)
        .collect::<Result<Vec<_>, _>>()?;
    let workloads: Vec<&str> = reports
        .iter()
        .filter_map(|r| r["workload"].as_str())
        .collect();
    assert_eq!(
        workloads,
        ["progress", "lifecycle", "get", "get-stale", "mixed"]
    );
    for report in &reports {
        assert!(report["ops"].as_u64() > Some(0), "no operations: {report}");
        assert_eq!(report["errors"].as_u64(), Some(0), "errors: {report}");
        assert_eq!(report["clients"].as_u64(), Some(4));
        assert!(report["p99Ms"].as_f64() > Some(0.0), "no latency: {report}");
        assert_eq!(report["serverPids"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            report["missingServerPids"].as_array().map(Vec::len),
            Some(0)
        );
        assert!(
            report["serverCpuMsPer1000Ops"].as_f64().is_some(),
            "no CPU figure: {report}"
        );
    }
    cluster
        .converged(std::time::Duration::from_secs(10))
        .await?;
    Ok(())
}
