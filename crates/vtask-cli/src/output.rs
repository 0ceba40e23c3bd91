//! Everything `vtask` prints: one place that talks to people.

use vtask_model::{AnyValue, MethodFault, TaskInfo, TaskReason, Timestamp};
use vtask_proto::v1;

use crate::Format;

/// `2026-11-28T22:52:25.123456Z` for a time in microseconds since the epoch.
pub fn rfc3339(time: Timestamp) -> String {
    let micros = time.as_micros();
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// TaskInfo as vSphere's JSON: the model's serde names, times in RFC 3339.
pub fn task_json(info: &TaskInfo) -> serde_json::Value {
    let mut value = serde_json::to_value(info).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "task".into(),
            serde_json::json!({"type": "Task", "value": info.key.to_string()}),
        );
        for (field, time) in [
            ("queueTime", Some(info.queue_time)),
            ("startTime", info.start_time),
            ("completeTime", info.complete_time),
        ] {
            if let Some(time) = time {
                object.insert(field.into(), serde_json::Value::String(rfc3339(time)));
            }
        }
    }
    value
}

fn any_value(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) | AnyValue::Json(s) => s.clone(),
        AnyValue::Long(n) => n.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::DateTime(t) => rfc3339(*t),
        AnyValue::MoRef(m) => m.to_string(),
    }
}

pub fn print_task(format: Format, info: &TaskInfo) {
    match format {
        Format::Key => println!("{}", info.key),
        Format::Json => println!("{}", task_json(info)),
        Format::Table => {
            let yes_no = |b: bool| if b { "yes" } else { "no" };
            println!("key:            {}", info.key);
            println!("state:          {}", info.state);
            println!(
                "cancelled:      {}  (cancelable: {})",
                yes_no(info.cancelled),
                yes_no(info.cancelable)
            );
            if let Some(progress) = info.progress {
                println!("progress:       {progress}%");
            }
            println!("descriptionId:  {}", info.description_id);
            if let Some(description) = &info.description {
                let text = description
                    .message
                    .clone()
                    .unwrap_or_else(|| description.key.clone());
                println!("description:    {text}");
            }
            if let Some(entity) = &info.entity {
                match &info.entity_name {
                    Some(name) => println!("entity:         {entity} ({name})"),
                    None => println!("entity:         {entity}"),
                }
            }
            let reason = match &info.reason {
                TaskReason::User { user_name } => format!("user {user_name}"),
                TaskReason::System => "system".into(),
                TaskReason::Alarm { alarm_name, .. } => format!("alarm {alarm_name}"),
                TaskReason::Schedule { name, .. } => format!("schedule {name}"),
            };
            println!("reason:         {reason}");
            println!("queueTime:      {}", rfc3339(info.queue_time));
            if let Some(t) = info.start_time {
                println!("startTime:      {}", rfc3339(t));
            }
            if let Some(t) = info.complete_time {
                println!("completeTime:   {}", rfc3339(t));
            }
            if let Some(error) = &info.error {
                println!("error:          {error}");
            }
            if let Some(result) = &info.result {
                println!("result:         {}", any_value(result));
            }
            if let Some(parent) = &info.parent_task_key {
                println!("parentTaskKey:  {parent}");
            }
            if let Some(root) = &info.root_task_key {
                println!("rootTaskKey:    {root}");
            }
        }
    }
}

/// A new collector: its name, then its latest page.
pub fn print_collector(format: Format, name: &str, page: &[TaskInfo]) {
    match format {
        Format::Key => println!("{name}"),
        Format::Json => {
            let page: Vec<_> = page.iter().map(task_json).collect();
            println!(
                "{}",
                serde_json::json!({"collector": name, "latestPage": page})
            );
        }
        Format::Table => {
            println!("collector: {name}");
            print_tasks(format, page);
        }
    }
}

pub fn print_tasks(format: Format, tasks: &[TaskInfo]) {
    match format {
        Format::Table => print!("{}", task_table(tasks)),
        Format::Json | Format::Key => tasks.iter().for_each(|info| print_task(format, info)),
    }
}

/// The task table: a header, then a line per task, every line ended by a
/// newline and without trailing blanks (a task without an entity leaves its
/// last column empty).
fn task_table(tasks: &[TaskInfo]) -> String {
    let mut table = String::new();
    let mut line = |text: String| {
        table.push_str(text.trim_end());
        table.push('\n');
    };
    line(format!(
        "{:<14} {:<8} {:>8} {:<9} {:<30} ENTITY",
        "KEY", "STATE", "PROGRESS", "CANCELLED", "TYPE"
    ));
    for info in tasks {
        let progress = info
            .progress
            .map(|p| format!("{p}%"))
            .unwrap_or_else(|| "-".into());
        let entity = info
            .entity
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        line(format!(
            "{:<14} {:<8} {:>8} {:<9} {:<30} {entity}",
            info.key.to_string(),
            info.state.as_str(),
            progress,
            if info.cancelled { "yes" } else { "no" },
            info.description_id
        ));
    }
    table
}

/// A fault goes to stderr, so that stdout stays clean for scripts.
pub fn print_fault(fault: &MethodFault) {
    eprintln!("vtask: {}: {}", fault.kind.type_name(), fault.message());
}

pub fn print_cluster(format: Format, statuses: &[(String, Result<v1::StatusResponse, String>)]) {
    match format {
        Format::Json | Format::Key => {
            for (addr, status) in statuses {
                let value = match status {
                    Ok(s) => serde_json::json!({
                        "endpoint": addr,
                        "nodeId": s.node_id,
                        "leaderId": s.leader_id,
                        "role": role(s),
                        "term": s.term,
                        "lastLogIndex": s.last_log_index,
                        "appliedIndex": s.applied_index,
                        "stateDigest": s.state_digest,
                        "clusterId": s.cluster_id,
                    }),
                    Err(e) => serde_json::json!({"endpoint": addr, "error": e}),
                };
                println!("{value}");
            }
        }
        Format::Table => {
            println!(
                "{:<18} {:>4} {:<9} {:>5} {:>9} {:>9}  DIGEST",
                "ENDPOINT", "NODE", "ROLE", "TERM", "LAST LOG", "APPLIED"
            );
            for (addr, status) in statuses {
                match status {
                    Ok(s) => println!(
                        "{addr:<18} {:>4} {:<9} {:>5} {:>9} {:>9}  {}",
                        s.node_id,
                        role(s),
                        s.term,
                        s.last_log_index,
                        s.applied_index,
                        &s.state_digest[..s.state_digest.len().min(16)]
                    ),
                    Err(e) => println!("{addr:<18} unreachable: {e}"),
                }
            }
        }
    }
}

/// `vtask member list`: the members as one node (the leader, if it could be
/// reached) sees them.
pub fn print_members(format: Format, status: &v1::StatusResponse) {
    print_member_rows(format, &status.members, status.leader_id);
}

/// The outcome of `vtask member add|promote|remove`.
pub fn print_membership_change(format: Format, reply: &v1::MembershipResponse) {
    match format {
        Format::Table => {
            if reply.unchanged {
                println!("nothing to change (log index {})", reply.log_index);
            } else {
                println!(
                    "membership changed at log index {} by leader {}",
                    reply.log_index, reply.leader_id
                );
            }
            print_member_rows(format, &reply.members, Some(reply.leader_id));
        }
        _ => {
            let value = serde_json::json!({
                "logIndex": reply.log_index,
                "leaderId": reply.leader_id,
                "unchanged": reply.unchanged,
            });
            println!("{value}");
            print_member_rows(format, &reply.members, Some(reply.leader_id));
        }
    }
}

fn print_member_rows(format: Format, members: &[v1::Member], leader: Option<u64>) {
    let role = |m: &v1::Member| match v1::Role::try_from(m.role).ok() {
        Some(v1::Role::Learner) => "learner",
        _ if leader == Some(m.node_id) => "leader",
        Some(v1::Role::Candidate) => "candidate",
        _ => "voter",
    };
    match format {
        Format::Table => {
            println!(
                "{:>4} {:<24} {:<9} {:>9} {:>7}",
                "ID", "ADDRESS", "ROLE", "MATCHED", "LAG"
            );
            let or_dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            for m in members {
                println!(
                    "{:>4} {:<24} {:<9} {:>9} {:>7}",
                    m.node_id,
                    m.address,
                    role(m),
                    or_dash(m.matched_index),
                    or_dash(m.lag)
                );
            }
        }
        _ => {
            for m in members {
                let value = serde_json::json!({
                    "nodeId": m.node_id,
                    "address": m.address,
                    "role": role(m),
                    "matchedIndex": m.matched_index,
                    "lag": m.lag,
                });
                println!("{value}");
            }
        }
    }
}

fn role(status: &v1::StatusResponse) -> &'static str {
    let me = status.members.iter().find(|m| m.node_id == status.node_id);
    match me.and_then(|m| v1::Role::try_from(m.role).ok()) {
        Some(v1::Role::Leader) => "leader",
        Some(v1::Role::Follower) => "follower",
        Some(v1::Role::Candidate) => "candidate",
        Some(v1::Role::Learner) => "learner",
        _ => "unknown",
    }
}

/// The changes of one task, oldest first.
pub fn print_history(format: Format, changes: &[v1::TaskChange]) -> Result<(), crate::Failure> {
    if format == Format::Table {
        println!(
            "{:>8} {:<27} {:<19} {:<12} {:>5} {:>7}  STATE",
            "REVISION", "TIME", "METHOD", "ACTOR", "TERM", "INDEX"
        );
    }
    for change in changes {
        let info = change
            .info
            .clone()
            .map(TaskInfo::try_from)
            .transpose()
            .map_err(crate::Failure::Fault)?;
        let time = change
            .time
            .map(|t| vtask_proto::convert::timestamp_from_proto(&t, "time"))
            .transpose()
            .map_err(crate::Failure::Fault)?;
        let time = time.map(rfc3339).unwrap_or_default();
        let actor = change.actor.clone().unwrap_or_else(|| "(vtask)".into());
        match format {
            Format::Table => {
                let state = info.as_ref().map(|i| {
                    let progress = i.progress.map(|p| format!(" {p}%")).unwrap_or_default();
                    format!("{}{progress}", i.state)
                });
                println!(
                    "{:>8} {time:<27} {:<19} {actor:<12} {:>5} {:>7}  {}",
                    change.revision,
                    change.method,
                    change.term,
                    change.index,
                    state.unwrap_or_default()
                );
            }
            Format::Json | Format::Key => {
                let mut value = serde_json::json!({
                    "revision": change.revision, "method": change.method, "actor": change.actor,
                    "time": time, "term": change.term, "index": change.index,
                });
                if let Some(info) = &info {
                    value["info"] = task_json(info);
                }
                println!("{value}");
            }
        }
    }
    Ok(())
}

/// A backup file's header and check (`vtask snapshot save|status`).
pub fn print_snapshot(
    format: Format,
    file: &std::path::Path,
    summary: &vtask_snapfile::Summary,
    info: Option<&v1::SnapshotInfo>,
) {
    let h = &summary.header;
    match format {
        Format::Json | Format::Key => println!(
            "{}",
            serde_json::json!({
                "file": file.display().to_string(),
                "formatVersion": summary.version,
                "clusterId": h.cluster_id,
                "appliedIndex": h.applied_index,
                "tasks": h.tasks,
                "revision": h.revision,
                "stateDigest": h.digest,
                "createdUnixMs": h.created_unix_ms,
                "records": summary.records,
                "checksum": summary.checksum,
                "checksumOk": true,
                "savedFrom": info.map(|_| true),
            })
        ),
        Format::Table => {
            println!("file            {}", file.display());
            println!("format version  {}", summary.version);
            println!(
                "origin cluster  {}",
                h.cluster_id.as_deref().unwrap_or("(none)")
            );
            println!("applied index   {}", h.applied_index);
            match h.tasks {
                Some(tasks) => println!("tasks           {tasks}"),
                None => println!("tasks           (not recorded)"),
            }
            println!("revision        {}", h.revision);
            println!(
                "state digest    {}",
                h.digest.as_deref().unwrap_or("(not recorded)")
            );
            println!("records         {}", summary.records);
            println!("checksum        ok (sha256 {})", summary.checksum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_renders_utc() {
        assert_eq!(
            rfc3339(Timestamp::from_micros(0)),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_micros(1_795_906_345_123_456)),
            "2026-11-28T22:52:25.123456Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_micros(951_782_400_000_000)),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
