//! Task history collectors (spec §8.2, D18–D24): replicated objects with a
//! filter, a cursor and a `latestPage`, changed only by log entries so that a
//! collector survives a leader change and reads on from where it was.
//!
//! The collector's list is every task that matches its filter, oldest first.
//! Task keys are handed out in creation order, so "oldest first" is key
//! order, and the cursor is a task number: tasks numbered at or below it are
//! behind the cursor. `latestPage` holds snapshots of the newest `page_size`
//! matching tasks, newest first (D22), refreshed when a task is created and
//! when a task changes state (D21), not on progress or description updates.

use serde::{Deserialize, Serialize};

use crate::command::{Caller, Change, Counters, Privilege, Reply, Task, TaskTable};
use crate::filter::TaskFilterSpec;
use crate::types::{FaultKind, MethodFault, MoRef, TaskInfo, TaskKey, Timestamp};

/// D19: the page size of a new collector, and what 0 asks for.
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// D19: the largest page, and the most tasks one ReadNext/ReadPrevious returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// D18: collectors one principal may hold at once, unless configured.
pub const DEFAULT_MAX_COLLECTORS: u32 = 32;
/// D24: a collector unused for this long is destroyed, unless configured.
pub const DEFAULT_COLLECTOR_IDLE_MILLIS: u64 = 30 * 60 * 1000;

/// The vSphere managed object type of a collector.
pub const COLLECTOR_TYPE: &str = "TaskHistoryCollector";

/// A collector's name, `collector-<n>`: numbers come from a replicated
/// counter and are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CollectorId(pub u64);

impl CollectorId {
    /// Parses `collector-<n>` with one spelling per number, like task keys.
    pub fn parse(text: &str) -> Option<CollectorId> {
        crate::types::parse_numbered(text, "collector-").map(CollectorId)
    }

    pub fn moref(self) -> MoRef {
        MoRef::new(COLLECTOR_TYPE, self.to_string())
    }
}

impl std::fmt::Display for CollectorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "collector-{}", self.0)
    }
}

/// One TaskHistoryCollector, as every replica stores it (D24).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collector {
    pub id: CollectorId,
    /// The principal that created it; only it may use it.
    pub owner: String,
    pub filter: TaskFilterSpec,
    pub page_size: u32,
    /// Tasks numbered at or below this are behind the cursor; 0 is rewound.
    pub cursor: u64,
    /// Entry time of the last command that used it (D24 idle expiry).
    pub last_used: Timestamp,
    /// Newest first (D22).
    pub latest_page: Vec<TaskInfo>,
}

/// The collector commands' arguments that do not name a collector.
pub(crate) fn create(
    table: &impl TaskTable,
    caller: &Caller,
    filter: &TaskFilterSpec,
    max_per_owner: u32,
    now: Timestamp,
) -> Result<(Reply, Vec<Change>, Counters), MethodFault> {
    let owner = match caller {
        Caller::User { name, privileges } => {
            if !privileges.contains(Privilege::SystemView) {
                return Err(no_view(name));
            }
            name.clone()
        }
        Caller::Anonymous => return Err(MethodFault::new(FaultKind::NotAuthenticated)),
        Caller::System => {
            return Err(MethodFault::invalid_argument(
                "caller",
                "A specified parameter was not correct: collectors belong to a user",
            ))
        }
    };
    filter.validate()?;
    let held = table
        .collectors()
        .iter()
        .filter(|c| c.owner == owner)
        .count();
    if held >= max_per_owner as usize {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: too many task collectors: {owner} already holds {held} of the {max_per_owner} allowed (D18); destroy one first"
        )));
    }
    let mut counters = table.counters();
    counters.last_collector = counters.last_collector.checked_add(1).ok_or_else(|| {
        MethodFault::new(FaultKind::SystemError {
            reason: "no more collector ids can be allocated".into(),
        })
    })?;
    let mut collector = Collector {
        id: CollectorId(counters.last_collector),
        owner,
        filter: filter.clone(),
        page_size: DEFAULT_PAGE_SIZE,
        cursor: 0,
        last_used: now,
        latest_page: Vec::new(),
    };
    collector.latest_page = newest_matching(
        table,
        &collector.filter,
        u64::MAX,
        collector.page_size as usize,
        &[],
    );
    let reply = Reply::Collector {
        collector: collector.id,
        latest_page: collector.latest_page.clone(),
    };
    Ok((reply, vec![Change::PutCollector(collector)], counters))
}

fn no_view(name: &str) -> MethodFault {
    MethodFault::with_message(
        FaultKind::NoPermission {
            object: None,
            privilege_id: Some(Privilege::SystemView.id().into()),
        },
        format!(
            "Permission to perform this operation was denied: {name} lacks {}",
            Privilege::SystemView.id()
        ),
    )
}

/// What a caller does with an existing collector.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Use {
    ReadNext(i32),
    ReadPrevious(i32),
    Rewind,
    Reset,
    SetPageSize(i32),
    Destroy,
}

/// Resolves `name` to a collector the caller may use.
pub(crate) fn lookup_collector(
    table: &impl TaskTable,
    caller: &Caller,
    name: &str,
) -> Result<Collector, MethodFault> {
    let found = CollectorId::parse(name).and_then(|id| table.collector(id));
    collector_for(found, caller, name)
}

/// Decides whether `caller` may use the collector `name` resolved to (D5
/// order: not found, then not authenticated). A collector of another
/// principal answers as if it did not exist: collectors are private to their
/// owner, like vSphere's session-scoped ones. Reads outside apply use this too.
pub fn collector_for(
    found: Option<Collector>,
    caller: &Caller,
    name: &str,
) -> Result<Collector, MethodFault> {
    let not_found = || {
        let obj = MoRef::new(COLLECTOR_TYPE, name);
        let standard = FaultKind::ManagedObjectNotFound { obj: obj.clone() }.default_message();
        MethodFault::with_message(
            FaultKind::ManagedObjectNotFound { obj },
            format!("{standard}: no collector of yours has this name (it may have been destroyed, or expired after being idle)"),
        )
    };
    match (found, caller) {
        (None, _) => Err(not_found()),
        (Some(c), Caller::System) => Ok(c),
        (Some(_), Caller::Anonymous) => Err(MethodFault::new(FaultKind::NotAuthenticated)),
        (Some(c), Caller::User { name: user, .. }) if c.owner == *user => Ok(c),
        (Some(_), Caller::User { .. }) => Err(not_found()),
    }
}

fn count_argument(property: &str, count: i32, zero_is_default: bool) -> Result<u32, MethodFault> {
    match count {
        0 if zero_is_default => Ok(DEFAULT_PAGE_SIZE),
        1.. if count as u32 <= MAX_PAGE_SIZE => Ok(count as u32),
        _ => Err(MethodFault::invalid_argument(
            property,
            format!(
                "A specified parameter was not correct: {property} {count} is not in 1..{MAX_PAGE_SIZE}{}",
                if zero_is_default { " (0 means the default, 10)" } else { "" }
            ),
        )),
    }
}

pub(crate) fn use_collector(
    table: &impl TaskTable,
    caller: &Caller,
    name: &str,
    what: Use,
    now: Timestamp,
) -> Result<(Reply, Vec<Change>), MethodFault> {
    let mut c = lookup_collector(table, caller, name)?;
    c.last_used = now;
    let reply = match what {
        Use::ReadNext(max) => {
            let max = count_argument("maxCount", max, false)?;
            let mut tasks = Vec::new();
            if let Some(from) = c.cursor.checked_add(1) {
                table.scan(TaskKey(from), true, &mut |task| {
                    if c.filter.matches(&task.info) {
                        tasks.push(task.info.clone());
                    }
                    tasks.len() < max as usize
                });
            }
            if let Some(last) = tasks.last() {
                c.cursor = last.key.0;
            }
            Reply::Tasks { tasks }
        }
        Use::ReadPrevious(max) => {
            let max = count_argument("maxCount", max, false)?;
            let mut tasks = Vec::new();
            if c.cursor > 0 {
                table.scan(TaskKey(c.cursor), false, &mut |task| {
                    if c.filter.matches(&task.info) {
                        tasks.push(task.info.clone());
                    }
                    tasks.len() < max as usize
                });
            }
            if let Some(oldest) = tasks.last() {
                c.cursor = oldest.key.0 - 1;
            }
            Reply::Tasks { tasks }
        }
        Use::Rewind => {
            c.cursor = 0;
            Reply::Done
        }
        Use::Reset => {
            // D20: just before the latest page; with an empty page nothing
            // matches yet, so "before the page" is the end of the list.
            c.cursor = match c.latest_page.last() {
                Some(oldest) => oldest.key.0 - 1,
                None => table.counters().last_task,
            };
            Reply::Done
        }
        Use::SetPageSize(size) => {
            c.page_size = count_argument("maxCount", size, true)?;
            c.latest_page = newest_matching(table, &c.filter, u64::MAX, c.page_size as usize, &[]);
            // D19: a new size rebuilds the page and rewinds the cursor.
            c.cursor = 0;
            Reply::Tasks {
                tasks: c.latest_page.clone(),
            }
        }
        Use::Destroy => return Ok((Reply::Done, vec![Change::RemoveCollector(c.id)])),
    };
    Ok((reply, vec![Change::PutCollector(c)]))
}

/// D24: destroys every collector whose last use is more than `idle_millis`
/// before the entry's time.
pub(crate) fn expire(
    table: &impl TaskTable,
    idle_millis: u64,
    now: Timestamp,
) -> (Reply, Vec<Change>) {
    let mut expired = Vec::new();
    let mut changes = Vec::new();
    for c in table.collectors() {
        if c.last_used.saturating_add_millis(idle_millis) < now {
            expired.push(c.id);
            changes.push(Change::RemoveCollector(c.id));
        }
    }
    (
        Reply::CollectorsExpired {
            collectors: expired,
        },
        changes,
    )
}

/// Up to `limit` tasks numbered below `below` that match `filter`, newest
/// first, as the state will be once `changes` are written.
fn newest_matching(
    table: &impl TaskTable,
    filter: &TaskFilterSpec,
    below: u64,
    limit: usize,
    changes: &[Change],
) -> Vec<TaskInfo> {
    let mut found = Vec::new();
    if limit == 0 || below <= 1 {
        return found;
    }
    table.scan(TaskKey(below - 1), false, &mut |stored| {
        let current = pending_version(stored, changes);
        if let Some(info) = current.filter(|info| filter.matches(info)) {
            found.push(info.clone());
        }
        found.len() < limit
    });
    found
}

/// The version of `stored` that `changes` leave: `None` when they remove it.
fn pending_version<'a>(stored: &'a Task, changes: &'a [Change]) -> Option<&'a TaskInfo> {
    let key = stored.info.key;
    let mut current = Some(&stored.info);
    for change in changes {
        match change {
            Change::Put { after, .. } if after.info.key == key => current = Some(&after.info),
            Change::Remove { task } if task.info.key == key => current = None,
            _ => {}
        }
    }
    current
}

/// D21: the collector changes that task `changes` cause. A page is touched
/// when a task is created, changes state or is removed; a task that leaves a
/// full page makes room for the newest older match.
pub(crate) fn refresh_pages(table: &impl TaskTable, changes: &[Change]) -> Vec<Change> {
    let touching: Vec<(TaskKey, Option<&TaskInfo>)> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Put { before, after } => {
                let moved = before
                    .as_ref()
                    .is_none_or(|b| b.info.state != after.info.state);
                moved.then_some((after.info.key, Some(&after.info)))
            }
            Change::Remove { task } => Some((task.info.key, None)),
            Change::PutCollector(_) | Change::RemoveCollector(_) => None,
        })
        .collect();
    if touching.is_empty() {
        return Vec::new();
    }
    let mut updated = Vec::new();
    for mut c in table.collectors() {
        let mut changed = false;
        for (key, after) in &touching {
            changed |= refresh_page(table, &mut c, *key, *after, changes);
        }
        if changed {
            updated.push(Change::PutCollector(c));
        }
    }
    updated
}

fn refresh_page(
    table: &impl TaskTable,
    c: &mut Collector,
    key: TaskKey,
    after: Option<&TaskInfo>,
    changes: &[Change],
) -> bool {
    let size = c.page_size as usize;
    let before = c.latest_page.clone();
    let was_full = before.len() >= size;
    let position = c.latest_page.iter().position(|info| info.key == key);
    if let Some(i) = position {
        c.latest_page.remove(i);
    }
    match after.filter(|info| c.filter.matches(info)) {
        Some(info) => {
            // Newest first; a match older than a full page's oldest entry
            // lands last and is cut off again.
            let at = c
                .latest_page
                .iter()
                .position(|other| other.key < key)
                .unwrap_or(c.latest_page.len());
            c.latest_page.insert(at, info.clone());
            c.latest_page.truncate(size);
        }
        None if position.is_some() && was_full => {
            // The task left a full page: the newest match older than the
            // page's oldest entry takes the free place.
            let oldest = before.last().map_or(key.0, |o| o.key.0);
            let more = newest_matching(table, &c.filter, oldest, 1, changes);
            c.latest_page.extend(more);
        }
        None => {}
    }
    c.latest_page != before
}
