//! `vtask watch`: prints the events of a [`vtask_client::Watch`], which
//! reconnects (to the next endpoint, after the last change it delivered)
//! when the node it reads from goes away.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use vtask_client::{WatchKind, WatchSelector};
use vtask_model::{State, TaskInfo};

use crate::output::task_json;
use crate::{Conn, Failure, Format};

/// Follows the selected tasks. For a single task, returns when it ends:
/// 0 on success, 1 on error.
pub async fn run(
    conn: &Conn,
    format: Format,
    selector: WatchSelector,
    from: u64,
) -> Result<u8, Failure> {
    let single = matches!(selector, WatchSelector::Task(_));
    let mut bars = (format == Format::Table && std::io::stdout().is_terminal()).then(Bars::default);
    let mut watch = conn.watch(selector, from);
    loop {
        let event = watch.next().await?;
        match (&mut bars, &event.info) {
            (Some(bars), Some(info)) => bars.show(info),
            (Some(_), None) => {}
            (None, info) => print_event(format, event.revision, event.kind, info.as_ref()),
        }
        if let (true, Some(info)) = (single, &event.info) {
            match info.state {
                State::Success => return Ok(0),
                State::Error => return Ok(1),
                State::Queued | State::Running => {}
            }
        }
    }
}

fn print_event(format: Format, revision: u64, kind: WatchKind, info: Option<&TaskInfo>) {
    let kind_name = match kind {
        WatchKind::Created => "created",
        WatchKind::Updated => "updated",
        WatchKind::Removed => "removed",
        WatchKind::Current => "current",
        WatchKind::Resync => "resync",
        WatchKind::Synced => "synced",
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
