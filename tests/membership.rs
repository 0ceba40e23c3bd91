//! Membership, leader transfer and rolling restarts (issue #15, items 1-3),
//! with real `vtaskd` processes: a node that joins with `--join` catches up
//! from a snapshot and becomes a voter; a learner stays one until promoted;
//! two changes at once get one clear InvalidState and never a half-applied
//! membership; a removed node stops; removing the leader hands over first;
//! `vtask leader transfer` and SIGTERM on the leader move the leadership
//! with no failed call; a rolling restart of every node under load, with 3
//! and with 5 nodes, ends with zero failed calls and zero lost writes.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vtask_model::{CreateTask, MoRef};
use vtask_proto::v1::Role;
use vtask_tests::{vtask_bin, Cluster, ClusterConfig};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `vtask --endpoints E ARGS`, off the async workers.
async fn vtask(endpoints: &str, args: &[&str]) -> Run {
    let mut command = Command::new(vtask_bin());
    command
        .args(["--endpoints", endpoints])
        .args(args)
        .env("VTASK_USER", "admin");
    tokio::task::spawn_blocking(move || {
        let output = command.output().expect("vtask runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Voters and learners as node `id` sees them.
async fn membership(cluster: &Cluster, id: u64) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let status = cluster.status(id).await.expect("status");
    let mut voters = BTreeSet::new();
    let mut learners = BTreeSet::new();
    for m in status.members {
        if m.role == Role::Learner as i32 {
            learners.insert(m.node_id);
        } else {
            voters.insert(m.node_id);
        }
    }
    (voters, learners)
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn create(vm: &str) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.members".into(),
        cancelable: true,
        ..CreateTask::default()
    }
}

/// Writers that create tasks without pause, each with its own client (and
/// so its own retries), until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(Instant, String)>>>,
    failures: Arc<Mutex<Vec<String>>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    clients: usize,
}

impl Load {
    fn start(endpoints: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..clients)
            .map(|i| {
                let client = vtask_client::Client::with_id(
                    endpoints.split(',').map(String::from).collect(),
                    format!("members-load-{i}-{}", std::process::id()),
                )
                .user("loader")
                .retry_for(Duration::from_secs(30));
                let (stop, acknowledged, failures) =
                    (stop.clone(), acknowledged.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match client.create_task(create(&format!("vm-{i}-{n}"))).await {
                            Ok(info) => acknowledged
                                .lock()
                                .unwrap()
                                .push((Instant::now(), info.key.to_string())),
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acknowledged,
            failures,
            writers,
            clients,
        }
    }

    fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    async fn wait_for(&self, more: usize) {
        let target = self.count() + more;
        wait_until("writes under load", Duration::from_secs(30), || async {
            self.count() >= target
        })
        .await;
    }

    /// The longest pause between two acknowledgements from `since` to now.
    fn gap_since(&self, since: Instant) -> Duration {
        let times: Vec<Instant> = self
            .acknowledged
            .lock()
            .unwrap()
            .iter()
            .map(|(at, _)| *at)
            .collect();
        longest_pause(times, since, Instant::now())
    }

    /// Stops the writers and checks what they saw since `began`: no call
    /// failed, the nodes converge, and every acknowledged task is on node
    /// `reader`. Prints the figures under `what`.
    async fn check(self, cluster: &Cluster, what: &str, began: Instant, reader: u64) {
        let ended = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            writer.await.unwrap();
        }
        let acknowledged = std::mem::take(&mut *self.acknowledged.lock().unwrap());
        let gap = longest_pause(
            acknowledged.iter().map(|(at, _)| *at).collect(),
            began,
            ended,
        );
        let keys: Vec<String> = acknowledged.into_iter().map(|(_, key)| key).collect();
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        eprintln!(
            "{what} under load (C={}): {} writes acknowledged, {} failed, longest write gap {} ms",
            self.clients,
            keys.len(),
            failures.len(),
            gap.as_millis()
        );
        assert!(failures.is_empty(), "failed calls: {failures:?}");
        cluster.converged(Duration::from_secs(30)).await.unwrap();
        all_present(cluster, reader, &keys).await;
    }
}

/// The longest pause between two of `times` (or an edge) within `from..to`.
fn longest_pause(mut times: Vec<Instant>, from: Instant, to: Instant) -> Duration {
    times.retain(|at| *at >= from && *at <= to);
    times.sort();
    let mut longest = Duration::ZERO;
    let mut previous = from;
    for at in times.into_iter().chain([to]) {
        longest = longest.max(at - previous);
        previous = at;
    }
    longest
}

/// Every acknowledged task is there, read linearizably from node `id`.
async fn all_present(cluster: &Cluster, id: u64, keys: &[String]) {
    let client = vtask_client::Client::new(vec![cluster.nodes[&id].grpc.clone()]).user("checker");
    for key in keys {
        client
            .get_task(key, false)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} is lost: {e}"));
    }
}

/// More than `election_timeout_max` (400 ms by default).
const LEASE: Duration = Duration::from_millis(500);

async fn leader_of(cluster: &Cluster) -> u64 {
    cluster
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("a leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_node_catches_up_from_a_snapshot_becomes_a_voter_leaves_when_removed_and_rejoins_empty(
) {
    let mut cluster = Cluster::start(ClusterConfig {
        snapshot_entries: 200,
        keep_entries: 50,
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let endpoints = cluster.endpoints();
    let writer =
        vtask_client::Client::new(endpoints.split(',').map(String::from).collect()).user("writer");
    for n in 0..600 {
        writer
            .create_task(create(&format!("vm-{n}")))
            .await
            .unwrap();
    }
    cluster.add_node(4, true).unwrap();
    cluster.spawn(4).unwrap();
    let started = Instant::now();
    wait_until(
        "node 4 becomes a voter",
        Duration::from_secs(60),
        || async { membership(&cluster, 1).await.0.contains(&4) },
    )
    .await;
    eprintln!(
        "node 4 joined with --join and was a voter after {} ms",
        started.elapsed().as_millis()
    );
    let digest = cluster.converged(Duration::from_secs(30)).await.unwrap();
    assert!(!digest.is_empty());
    let log = std::fs::read_to_string(&cluster.nodes[&4].log).unwrap();
    assert!(
        log.contains("joined the cluster as a voter"),
        "node 4's log: {log}"
    );
    // The log was compacted long before node 4 existed: it must have
    // caught up from a snapshot.
    assert!(
        cluster.status(4).await.unwrap().applied_index > 600,
        "node 4 has the whole state"
    );

    let listed = vtask(&endpoints, &["member", "list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("4"))
        .unwrap_or_else(|| panic!("node 4 is listed: {}", listed.stdout));
    assert!(row.contains(&cluster.nodes[&4].grpc), "{row}");
    assert!(row.contains("voter") || row.contains("leader"), "{row}");

    // A second add of the same node changes nothing; another address for
    // it is refused.
    let again = vtask(&endpoints, &["member", "add", "4", &cluster.nodes[&4].grpc]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
    let moved = vtask(&endpoints, &["member", "add", "4", "127.0.0.1:1"]).await;
    assert_eq!(moved.code, 1, "{}", moved.stdout);
    assert!(
        moved.stderr.contains("already a member"),
        "{}",
        moved.stderr
    );

    // Removed, node 4 stops by itself and says why.
    if leader_of(&cluster).await == 4 {
        let moved = vtask(&endpoints, &["leader", "transfer", "1"]).await;
        assert_eq!(moved.code, 0, "{}", moved.stderr);
    }
    let victim = 4;
    let removed = vtask(&endpoints, &["member", "remove", &victim.to_string()]).await;
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    let exit = cluster.wait_exit(victim, Duration::from_secs(15)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "the removed node stops cleanly: {exit:?}\n{}",
        cluster.logs()
    );
    let log = std::fs::read_to_string(&cluster.nodes[&victim].log).unwrap();
    assert!(log.contains("was removed from the cluster"), "{log}");
    let (voters, learners) = membership(&cluster, 1).await;
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert!(learners.is_empty());
    writer.create_task(create("vm-after")).await.unwrap();

    // Back with an empty disk under its old id, it replays its own removal
    // on the way (the log holds it) and must not take that for its present.
    std::fs::remove_dir_all(&cluster.nodes[&4].data_dir).unwrap();
    cluster.spawn(4).unwrap();
    wait_until(
        "node 4 is a voter again",
        Duration::from_secs(60),
        || async { membership(&cluster, 1).await.0.contains(&4) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(
        cluster.wait_exit(4, Duration::ZERO).await.is_none(),
        "the re-added node keeps serving\n{}",
        cluster.logs()
    );
    writer.create_task(create("vm-back")).await.unwrap();
    cluster.converged(Duration::from_secs(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_replicates_without_voting_until_promoted() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints = cluster.endpoints();
    cluster.add_node(4, false).unwrap();
    cluster.spawn(4).unwrap();
    let address = cluster.nodes[&4].grpc.clone();
    let added = vtask(&endpoints, &["member", "add", "4", &address, "--learner"]).await;
    assert_eq!(added.code, 0, "{}\n{}", added.stdout, added.stderr);
    assert!(added.stdout.contains("learner"), "{}", added.stdout);
    let writer =
        vtask_client::Client::new(endpoints.split(',').map(String::from).collect()).user("writer");
    for n in 0..20 {
        writer
            .create_task(create(&format!("vm-{n}")))
            .await
            .unwrap();
    }
    cluster.converged(Duration::from_secs(20)).await.unwrap();
    let (voters, learners) = membership(&cluster, 1).await;
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert_eq!(learners, BTreeSet::from([4]));
    let me = cluster.status(4).await.unwrap();
    assert!(
        me.members
            .iter()
            .any(|m| m.node_id == 4 && m.role == Role::Learner as i32),
        "node 4 knows it is a learner: {me:?}"
    );
    // The leader knows how far behind each member is.
    let leader = leader_of(&cluster).await;
    let seen = cluster.status(leader).await.unwrap();
    let four = seen.members.iter().find(|m| m.node_id == 4).unwrap();
    assert!(
        four.lag.is_some() && four.matched_index.is_some(),
        "{four:?}"
    );

    let promoted = vtask(&endpoints, &["member", "promote", "4"]).await;
    assert_eq!(promoted.code, 0, "{}\n{}", promoted.stdout, promoted.stderr);
    let (voters, learners) = membership(&cluster, 1).await;
    assert_eq!(voters, BTreeSet::from([1, 2, 3, 4]));
    assert!(learners.is_empty());

    // Promoting an unknown node is an error that names it.
    let unknown = vtask(&endpoints, &["member", "promote", "9"]).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("node 9 is not a member"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_change_while_one_is_under_way_is_refused_and_nothing_is_half_applied() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints = cluster.endpoints();
    // Node 4 is not running yet, so adding it as a voter waits for it to
    // catch up: the change stays under way.
    cluster.add_node(4, false).unwrap();
    let address = cluster.nodes[&4].grpc.clone();
    let first = {
        let endpoints = endpoints.clone();
        tokio::spawn(async move { vtask(&endpoints, &["member", "add", "4", &address]).await })
    };
    wait_until("node 4 is a learner", Duration::from_secs(10), || async {
        membership(&cluster, 1).await.1.contains(&4)
    })
    .await;
    let second = vtask(&endpoints, &["member", "remove", "3"]).await;
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("InvalidState") && second.stderr.contains("under way"),
        "{}",
        second.stderr
    );
    let transfer = vtask(&endpoints, &["leader", "transfer"]).await;
    assert_eq!(transfer.code, 1, "{}", transfer.stderr);
    // The first change goes on once node 4 runs.
    cluster.spawn(4).unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    for id in 1..=4 {
        let (voters, learners) = membership(&cluster, id).await;
        assert_eq!(voters, BTreeSet::from([1, 2, 3, 4]), "as node {id} sees it");
        assert!(learners.is_empty());
    }
    cluster.converged(Duration::from_secs(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_transfer_and_sigterm_on_the_leader_hand_over_without_a_failed_call() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints = cluster.endpoints();
    let load = Load::start(&endpoints, 16);
    load.wait_for(200).await;
    let began = Instant::now();

    // To a named voter.
    // A leader younger than a lease waits that out first (membership.rs):
    // give it one, as a cluster in service has.
    tokio::time::sleep(LEASE).await;
    let leader = leader_of(&cluster).await;
    let target = if leader == 3 { 1 } else { leader + 1 };
    let started = Instant::now();
    let moved = vtask(&endpoints, &["leader", "transfer", &target.to_string()]).await;
    assert_eq!(moved.code, 0, "{}\n{}", moved.stdout, moved.stderr);
    assert!(
        moved
            .stdout
            .contains(&format!("node {target} is the leader")),
        "{}",
        moved.stdout
    );
    assert_eq!(leader_of(&cluster).await, target);
    load.wait_for(200).await;
    eprintln!(
        "vtask leader transfer {target}: call {} ms, longest write gap {} ms",
        started.elapsed().as_millis(),
        load.gap_since(started).as_millis()
    );

    // To whoever is most caught up.
    // A leader younger than a lease waits that out first (membership.rs):
    // give it one, as a cluster in service has.
    tokio::time::sleep(LEASE).await;
    let started = Instant::now();
    let moved = vtask(&endpoints, &["leader", "transfer"]).await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let leader = leader_of(&cluster).await;
    assert_ne!(leader, target);
    load.wait_for(200).await;
    eprintln!(
        "vtask leader transfer: longest write gap {} ms",
        load.gap_since(started).as_millis()
    );

    // SIGTERM on the leader: it hands over, then stops cleanly.
    // A leader younger than a lease waits that out first (membership.rs):
    // give it one, as a cluster in service has.
    tokio::time::sleep(LEASE).await;
    let started = Instant::now();
    assert!(cluster.stop(leader), "the leader exits 0 on SIGTERM");
    let log = std::fs::read_to_string(&cluster.nodes[&leader].log).unwrap();
    assert!(
        log.contains("handed the leadership over before stopping"),
        "{log}"
    );
    load.wait_for(200).await;
    eprintln!(
        "SIGTERM on the leader: longest write gap {} ms",
        load.gap_since(started).as_millis()
    );
    let started = Instant::now();
    cluster.spawn(leader).unwrap();
    load.wait_for(200).await;
    eprintln!(
        "restarting the old leader: longest write gap {} ms",
        load.gap_since(started).as_millis()
    );
    load.check(&cluster, "3 transfers", began, 1).await;

    // Transferring to a node that is no voter is refused, and says why.
    let nobody = vtask(&endpoints, &["leader", "transfer", "9"]).await;
    assert_eq!(nobody.code, 1);
    assert!(nobody.stderr.contains("not a voter"), "{}", nobody.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_the_leader_hands_over_first() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints = cluster.endpoints();
    let load = Load::start(&endpoints, 4);
    load.wait_for(100).await;
    let began = Instant::now();
    let leader = leader_of(&cluster).await;
    let removed = vtask(&endpoints, &["member", "remove", &leader.to_string()]).await;
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    let exit = cluster.wait_exit(leader, Duration::from_secs(15)).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    load.wait_for(100).await;
    let survivor = cluster.running()[0];
    load.check(&cluster, "removing the leader", began, survivor)
        .await;
    let (voters, _) = membership(&cluster, survivor).await;
    assert_eq!(voters.len(), 2);
    assert!(!voters.contains(&leader));
}

/// Restarts every node in turn (SIGTERM, start again, wait until it has
/// caught up) under load; nothing may fail and nothing may be lost.
async fn rolling_restart(nodes: u64) {
    let mut cluster = Cluster::start(ClusterConfig {
        nodes,
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let endpoints = cluster.endpoints();
    let load = Load::start(&endpoints, 16);
    load.wait_for(200).await;
    let began = Instant::now();
    // Followers first, the leader last: as an operator would, though any
    // order must work.
    let leader = leader_of(&cluster).await;
    let mut order: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    order.push(leader);
    for id in order {
        assert!(cluster.stop(id), "node {id} exits 0 on SIGTERM");
        load.wait_for(50).await;
        cluster.spawn(id).unwrap();
        wait_until(
            "the restarted node catches up",
            Duration::from_secs(30),
            || async {
                let Ok(me) = cluster.status(id).await else {
                    return false;
                };
                let Some(leader) = me.leader_id else {
                    return false;
                };
                let Ok(lead) = cluster.status(leader).await else {
                    return false;
                };
                me.applied_index + 100 >= lead.applied_index
            },
        )
        .await;
        load.wait_for(50).await;
    }
    load.check(
        &cluster,
        &format!("rolling restart of {nodes} nodes"),
        began,
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_three_nodes_under_load_fails_no_call() {
    rolling_restart(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_five_nodes_under_load_fails_no_call() {
    rolling_restart(5).await;
}
