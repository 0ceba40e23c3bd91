//! `vtask watch`: a WatchTasks stream that reconnects (to the next endpoint,
//! from the last revision it saw) when the node it reads from goes away.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use vtask_model::{State, TaskInfo};
use vtask_proto::convert::status_to_fault;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, watch_tasks_request::Selector, ChangeKind};

use crate::output::task_json;
use crate::{Conn, Failure, Format};

/// Follows the selected tasks. For a single task, returns when it ends:
/// 0 on success, 1 on error.
pub async fn run(
    conn: &Conn,
    format: Format,
    selector: Selector,
    from: u64,
) -> Result<u8, Failure> {
    let single = matches!(selector, Selector::Task(_));
    let mut bars = (format == Format::Table && std::io::stdout().is_terminal()).then(Bars::default);
    let mut next = from;
    let mut endpoint = 0;
    let mut failures = 0;
    loop {
        let addr = &conn.endpoints()[endpoint % conn.endpoints().len()];
        let request = v1::WatchTasksRequest {
            selector: Some(selector.clone()),
            start_revision: next,
        };
        let stream = TaskManagerClient::new(Conn::channel(addr)?)
            .watch_tasks(conn.request(request))
            .await;
        let mut stream = match stream {
            Ok(stream) => stream.into_inner(),
            Err(status) => {
                if let Some(fault) = status_to_fault(&status) {
                    return Err(Failure::Fault(fault));
                }
                failures += 1;
                if failures > 50 {
                    return Err(Failure::Unavailable(format!(
                        "no node serves the watch (last: {addr}: {})",
                        status.message()
                    )));
                }
                endpoint += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        failures = 0;
        loop {
            match stream.message().await {
                Ok(Some(event)) => {
                    let kind = ChangeKind::try_from(event.kind).unwrap_or(ChangeKind::Unspecified);
                    let info = event
                        .info
                        .map(TaskInfo::try_from)
                        .transpose()
                        .map_err(Failure::Fault)?;
                    // A CURRENT event is part of a snapshot at its revision;
                    // resuming must replay from the revision after it.
                    next = event.revision + 1;
                    match (&mut bars, &info) {
                        (Some(bars), Some(info)) => bars.show(info),
                        (Some(_), None) => {}
                        (None, _) => print_event(format, event.revision, kind, info.as_ref()),
                    }
                    if let (true, Some(info)) = (single, &info) {
                        match info.state {
                            State::Success => return Ok(0),
                            State::Error => return Ok(1),
                            State::Queued | State::Running => {}
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    // The node went away: resume elsewhere from where we were.
                    endpoint += 1;
                    break;
                }
            }
        }
    }
}

fn print_event(format: Format, revision: u64, kind: ChangeKind, info: Option<&TaskInfo>) {
    let kind_name = match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Removed => "removed",
        ChangeKind::Current => "current",
        ChangeKind::Resync => "resync",
        ChangeKind::Synced => "synced",
        ChangeKind::Unspecified => "unknown",
    };
    match format {
        Format::Json => {
            let mut value = serde_json::json!({"revision": revision, "kind": kind_name});
            if let Some(info) = info {
                value["info"] = task_json(info);
            }
            println!("{value}");
        }
        Format::Key => {
            if let Some(info) = info {
                println!("{}", info.key);
            }
        }
        Format::Table => match info {
            Some(info) => {
                let progress = info
                    .progress
                    .map(|p| format!("{p:>3}%"))
                    .unwrap_or_else(|| "   -".into());
                let cancelled = if info.cancelled { " cancelled" } else { "" };
                let error = info
                    .error
                    .as_ref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default();
                println!(
                    "{revision:>8} {kind_name:<8} {:<12} {:<8} {progress}{cancelled}{error}",
                    info.key.to_string(),
                    info.state.as_str()
                );
            }
            None => println!("{revision:>8} {kind_name}"),
        },
    }
}

/// A live progress bar per task, for a person at a terminal.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: BTreeMap<vtask_model::TaskKey, ProgressBar>,
}

impl Bars {
    fn show(&mut self, info: &TaskInfo) {
        let multi = &self.multi;
        let bar = self.bars.entry(info.key).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(100));
            let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(info.key.to_string());
            bar
        });
        bar.set_position(info.progress.unwrap_or(0).clamp(0, 100) as u64);
        let cancelled = if info.cancelled {
            " (cancel requested)"
        } else {
            ""
        };
        let message = match &info.error {
            Some(error) => format!("{}{cancelled}: {error}", info.state),
            None => format!("{}{cancelled}", info.state),
        };
        if info.state.is_terminal() {
            // Keep the last reported progress: a task may end below 100%.
            bar.abandon_with_message(message);
        } else {
            bar.set_message(message);
        }
    }
}
