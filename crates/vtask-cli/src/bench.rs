//! `vtask bench`: a load generator for figures, not a test. Each client owns
//! one running task and sends UpdateProgress back to back (the `progress`
//! workload of issue #6), with its own client id and rising sequence numbers.

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, RequestHeader};

use crate::{Conn, Failure, Format};

pub struct BenchArgs {
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

struct ClientResult {
    latencies: Vec<Duration>,
    errors: u64,
}

async fn one_client(
    channel: Channel,
    id: String,
    args: &BenchArgs,
    start: Instant,
) -> Result<ClientResult, Failure> {
    let header = |seq| {
        Some(RequestHeader {
            client_id: id.clone(),
            seq,
        })
    };
    let mut manager = TaskManagerClient::new(channel.clone());
    let mut tasks = TaskClient::new(channel);
    let create = v1::CreateTaskRequest {
        header: header(1),
        obj: Some(v1::ManagedObjectReference {
            r#type: "VirtualMachine".into(),
            value: id.clone(),
        }),
        task_type_id: "vtask.bench".into(),
        ..Default::default()
    };
    let status = |s: tonic::Status| Failure::Unavailable(format!("bench setup: {}", s.message()));
    let key = manager
        .create_task(create)
        .await
        .map_err(status)?
        .into_inner()
        .info
        .map(|i| i.key)
        .unwrap_or_default();
    let running = v1::SetTaskStateRequest {
        header: header(2),
        task: key.clone(),
        state: v1::TaskInfoState::Running as i32,
        ..Default::default()
    };
    tasks.set_task_state(running).await.map_err(status)?;
    let mut result = ClientResult {
        latencies: Vec::new(),
        errors: 0,
    };
    let end = start + args.warmup + args.duration;
    let mut seq = 2;
    while Instant::now() < end {
        seq += 1;
        let request = v1::UpdateProgressRequest {
            header: header(seq),
            task: key.clone(),
            percent_done: (seq % 101) as i32,
            ..Default::default()
        };
        let sent = Instant::now();
        let ok = tasks.update_progress(request).await.is_ok();
        if sent >= start + args.warmup {
            if ok {
                result.latencies.push(sent.elapsed());
            } else {
                result.errors += 1;
            }
        }
    }
    Ok(result)
}

pub async fn run(conn: &Conn, format: Format, args: BenchArgs) -> Result<(), Failure> {
    let start = Instant::now() + Duration::from_millis(500);
    let mut handles = Vec::new();
    for c in 0..args.clients {
        let channel = Conn::channel(&conn.endpoints()[c % conn.endpoints().len()])?;
        let id = format!("{}-bench-{c}", conn.client_id());
        let args = BenchArgs {
            clients: args.clients,
            duration: args.duration,
            warmup: args.warmup,
        };
        handles.push(tokio::spawn(async move {
            one_client(channel, id, &args, start).await
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let result = handle
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))??;
        latencies.extend(result.latencies);
        errors += result.errors;
    }
    latencies.sort();
    let ops = latencies.len();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((ops as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let throughput = ops as f64 / args.duration.as_secs_f64();
    match format {
        Format::Json | Format::Key => println!(
            "{}",
            serde_json::json!({
                "workload": "progress", "clients": args.clients, "seconds": args.duration.as_secs_f64(),
                "ops": ops, "opsPerSec": throughput, "errors": errors,
                "p50Ms": quantile(0.5), "p90Ms": quantile(0.9), "p99Ms": quantile(0.99), "p999Ms": quantile(0.999),
            })
        ),
        Format::Table => {
            println!(
                "workload progress, {} clients, {:?} after {:?} warm-up",
                args.clients, args.duration, args.warmup
            );
            println!("ops {ops}  ops/s {throughput:.0}  errors {errors}");
            println!(
                "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}",
                quantile(0.5),
                quantile(0.9),
                quantile(0.99),
                quantile(0.999)
            );
        }
    }
    Ok(())
}
