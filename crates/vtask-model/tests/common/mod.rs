//! The table-test harness of the model crate: build a few commands, run them
//! through [`MemTable::apply`], render every reply and the final tasks as
//! short text, and compare with the expected text.
//!
//! Step `i` (counting from 1) is applied at `1000 + i` seconds with term 1 and
//! index `i`, unless the step says `.at(seconds)`. Times print as whole
//! seconds. Every run also checks two things on its own: a fault reply leaves
//! the table exactly as it was, and a task reply equals the stored task.

#![allow(dead_code)]

use vtask_model::{
    AnyValue, ApiVersion, Caller, Change, Command, CreateTask, EntryContext, FaultKind,
    KeyAnyValue, LocalizableMessage, MemTable, MethodFault, MoRef, Outcome, Privilege, Privileges,
    Reply, State, Task, TaskInfo, TaskKey, TaskReason, Timestamp,
};

// ---------------------------------------------------------------------------
// Callers

/// The task owner in most tests: a user with every privilege.
pub fn alice() -> Caller {
    Caller::user("alice", Privileges::ALL)
}

/// A second user with every privilege (not the owner).
pub fn bob() -> Caller {
    Caller::user("bob", Privileges::ALL)
}

/// An authenticated user with every privilege but `missing`.
pub fn lacking(missing: Privilege) -> Caller {
    let rest: Vec<Privilege> = Privilege::ALL
        .into_iter()
        .filter(|p| *p != missing)
        .collect();
    Caller::user("mallory", Privileges::of(&rest))
}

pub fn anonymous() -> Caller {
    Caller::Anonymous
}

pub fn system() -> Caller {
    Caller::System
}

// ---------------------------------------------------------------------------
// Steps

/// One command, who sends it, and optionally when (in seconds).
#[derive(Clone, Debug)]
pub struct Step {
    pub caller: Caller,
    pub command: Command,
    pub at: Option<i64>,
}

impl Step {
    pub fn new(command: Command) -> Step {
        Step {
            caller: alice(),
            command,
            at: None,
        }
    }

    /// Sends the command as `caller` instead of alice.
    pub fn by(mut self, caller: Caller) -> Step {
        self.caller = caller;
        self
    }

    /// Applies the command at `seconds` instead of `1000 + i`.
    pub fn at(mut self, seconds: i64) -> Step {
        self.at = Some(seconds);
        self
    }
}

/// A task argument: `1` means `"task-1"`; a string is sent as written.
pub trait TaskArg {
    fn key(self) -> String;
}

impl TaskArg for i32 {
    fn key(self) -> String {
        format!("task-{self}")
    }
}

impl TaskArg for &str {
    fn key(self) -> String {
        self.to_string()
    }
}

pub fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

/// The CreateTask arguments every test starts from.
pub fn create_args() -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", "vm-1"),
        task_type_id: "com.example.backup".into(),
        cancelable: true,
        ..CreateTask::default()
    }
}

pub fn create() -> Step {
    Step::new(Command::CreateTask(create_args()))
}

pub fn create_with(edit: impl FnOnce(&mut CreateTask)) -> Step {
    let mut args = create_args();
    edit(&mut args);
    Step::new(Command::CreateTask(args))
}

pub fn set_state(
    task: impl TaskArg,
    state: State,
    result: Option<AnyValue>,
    fault: Option<MethodFault>,
) -> Step {
    Step::new(Command::SetTaskState {
        task: task.key(),
        state,
        result,
        fault,
    })
}

/// `SetTaskState(state)` with neither result nor fault.
pub fn state(task: impl TaskArg, state: State) -> Step {
    set_state(task, state, None, None)
}

pub fn start(task: impl TaskArg) -> Step {
    state(task, State::Running)
}

pub fn succeed(task: impl TaskArg) -> Step {
    state(task, State::Success)
}

pub fn succeed_with(task: impl TaskArg, result: AnyValue) -> Step {
    set_state(task, State::Success, Some(result), None)
}

pub fn fail(task: impl TaskArg, fault: MethodFault) -> Step {
    set_state(task, State::Error, None, Some(fault))
}

/// A fault as a caller sends it: no localizedMessage.
pub fn bare(kind: FaultKind) -> MethodFault {
    MethodFault {
        kind,
        localized_message: None,
        fault_cause: None,
        fault_message: Vec::new(),
    }
}

pub fn disk_full() -> MethodFault {
    bare(FaultKind::SystemError {
        reason: "disk full".into(),
    })
}

pub fn progress(task: impl TaskArg, percent_done: i32) -> Step {
    Step::new(Command::UpdateProgress {
        task: task.key(),
        percent_done,
        progress_details: None,
        api_version: ApiVersion::Current,
    })
}

/// UpdateProgress from a caller that speaks VI API 2.5 (D28).
pub fn progress_vim25(task: impl TaskArg, percent_done: i32) -> Step {
    Step::new(Command::UpdateProgress {
        task: task.key(),
        percent_done,
        progress_details: None,
        api_version: ApiVersion::Vim25,
    })
}

pub fn progress_details(
    task: impl TaskArg,
    percent_done: i32,
    details: Option<Vec<KeyAnyValue>>,
) -> Step {
    Step::new(Command::UpdateProgress {
        task: task.key(),
        percent_done,
        progress_details: details,
        api_version: ApiVersion::Current,
    })
}

pub fn kv(key: &str, value: AnyValue) -> KeyAnyValue {
    KeyAnyValue {
        key: key.into(),
        value,
    }
}

pub fn message(key: &str) -> LocalizableMessage {
    LocalizableMessage {
        key: key.into(),
        arg: Vec::new(),
        message: None,
    }
}

/// `SetTaskDescription` with a message that has only a key.
pub fn describe(task: impl TaskArg, key: &str) -> Step {
    describe_with(task, message(key))
}

pub fn describe_with(task: impl TaskArg, description: LocalizableMessage) -> Step {
    Step::new(Command::SetTaskDescription {
        task: task.key(),
        description,
    })
}

pub fn cancel(task: impl TaskArg) -> Step {
    Step::new(Command::CancelTask { task: task.key() })
}

/// `LapseLease`, sent by the service itself.
pub fn lapse(task: impl TaskArg) -> Step {
    Step::new(Command::LapseLease { task: task.key() }).by(system())
}

/// `ExpireTasks`, sent by the service itself.
pub fn expire(tasks: &[u64], completed_before_secs: i64) -> Step {
    Step::new(Command::ExpireTasks {
        tasks: tasks.iter().map(|n| TaskKey(*n)).collect(),
        completed_before: secs(completed_before_secs),
    })
    .by(system())
}

// ---------------------------------------------------------------------------
// Running and rendering

/// What the rendering shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    /// Add a second line per task with the fields CreateTask sets.
    pub created_fields: bool,
    /// Add the localizedMessage to fault replies.
    pub messages: bool,
}

/// Runs `steps` on an empty table and compares the lifecycle view.
#[track_caller]
pub fn check(steps: &[Step], expect: &str) {
    check_with(View::default(), MemTable::new(), steps, expect);
}

/// Like [`check`], with a second line per task for the fields CreateTask sets.
#[track_caller]
pub fn check_created(steps: &[Step], expect: &str) {
    let view = View {
        created_fields: true,
        ..View::default()
    };
    check_with(view, MemTable::new(), steps, expect);
}

/// Like [`check`], with the message of every fault reply.
#[track_caller]
pub fn check_messages(steps: &[Step], expect: &str) {
    let view = View {
        messages: true,
        ..View::default()
    };
    check_with(view, MemTable::new(), steps, expect);
}

/// Like [`check`], starting from a table that already holds `seed`.
#[track_caller]
pub fn check_seeded(seed: Vec<Task>, steps: &[Step], expect: &str) {
    check_with(View::default(), seeded(seed), steps, expect);
}

/// A table holding `tasks`, with the task counter at the highest key.
pub fn seeded(tasks: Vec<Task>) -> MemTable {
    let mut table = MemTable::new();
    let mut counters = vtask_model::TaskTable::counters(&table);
    for task in &tasks {
        counters.last_task = counters.last_task.max(task.info.key.0);
        counters.last_event_chain = counters.last_event_chain.max(task.info.event_chain_id);
    }
    let changes = tasks
        .into_iter()
        .map(|after| Change::Put {
            before: None,
            after,
        })
        .collect();
    table.write(changes, counters);
    table
}

#[track_caller]
pub fn check_with(view: View, table: MemTable, steps: &[Step], expect: &str) {
    let (table, replies) = run_on(table, steps);
    let mut lines: Vec<String> = steps
        .iter()
        .zip(&replies)
        .map(|(step, outcome)| render_reply(view, &step.command, outcome))
        .collect();
    lines.extend(render_table(view, &table));
    let actual = lines.join("\n");
    let expected = normalize(expect);
    if actual != expected {
        panic!(
            "\n--- expected\n{expected}\n--- actual\n{actual}\n--- actual, to paste\n{}\n",
            indent(&actual)
        );
    }
}

/// Runs `steps` on an empty table.
pub fn run(steps: &[Step]) -> (MemTable, Vec<Outcome>) {
    run_on(MemTable::new(), steps)
}

/// Runs `steps` on `table`; checks that faults change nothing and that task
/// replies show the stored task.
#[track_caller]
pub fn run_on(mut table: MemTable, steps: &[Step]) -> (MemTable, Vec<Outcome>) {
    let mut replies = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let index = i as u64 + 1;
        let ctx = EntryContext {
            time: secs(step.at.unwrap_or(1000 + index as i64)),
            term: 1,
            index,
        };
        let before = table.clone();
        let outcome = table.apply(&step.caller, &step.command, &ctx);
        match &outcome {
            Err(fault) => assert_eq!(
                table, before,
                "step {index}: the fault {fault} changed the table"
            ),
            Ok(Reply::Task { info }) => assert_eq!(
                table.get(info.key).map(|t| &t.info),
                Some(info),
                "step {index}: the reply differs from the stored task"
            ),
            Ok(_) => {}
        }
        replies.push(outcome);
    }
    (table, replies)
}

/// The fault a single failing step answers, after `setup` ran.
#[track_caller]
pub fn fault_of(setup: &[Step], step: Step) -> MethodFault {
    let mut steps = setup.to_vec();
    steps.push(step);
    let (_, replies) = run(&steps);
    match replies.last() {
        Some(Err(fault)) => fault.clone(),
        other => panic!("expected a fault, got {other:?}"),
    }
}

fn normalize(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render_reply(view: View, command: &Command, outcome: &Outcome) -> String {
    let method = command.method();
    match outcome {
        Ok(Reply::Task { info }) if matches!(command, Command::CreateTask(_)) => {
            format!("{method} -> {}", info.key)
        }
        Ok(Reply::Task { .. }) => format!("{method} -> ok"),
        Ok(Reply::Expired { tasks }) => {
            let keys: Vec<String> = tasks.iter().map(ToString::to_string).collect();
            format!("{method} -> expired [{}]", keys.join(" "))
        }
        Ok(Reply::Collector {
            collector,
            latest_page,
        }) => format!("{method} -> {collector} page [{}]", keys_of(latest_page)),
        Ok(Reply::Tasks { tasks }) => format!("{method} -> [{}]", keys_of(tasks)),
        Ok(Reply::CollectorsExpired { collectors }) => {
            let ids: Vec<String> = collectors.iter().map(ToString::to_string).collect();
            format!("{method} -> expired [{}]", ids.join(" "))
        }
        Ok(Reply::Done) => format!("{method} -> ok"),
        Err(fault) if view.messages => {
            format!(
                "{method} -> {} {:?}",
                render_fault(fault),
                fault.localized_message.as_deref().unwrap_or("<no message>")
            )
        }
        Err(fault) => format!("{method} -> {}", render_fault(fault)),
    }
}

/// Task keys separated by spaces, in the order given.
pub fn keys_of(tasks: &[TaskInfo]) -> String {
    let keys: Vec<String> = tasks.iter().map(|t| t.key.to_string()).collect();
    keys.join(" ")
}

/// A fault's type and fields, without its message.
pub fn render_fault(fault: &MethodFault) -> String {
    match &fault.kind {
        FaultKind::ManagedObjectNotFound { obj } => format!("ManagedObjectNotFound obj={obj}"),
        FaultKind::InvalidArgument {
            invalid_property: Some(p),
        } => format!("InvalidArgument invalidProperty={p}"),
        FaultKind::SystemError { reason } => format!("SystemError reason={reason:?}"),
        FaultKind::NoPermission {
            object,
            privilege_id,
        } => {
            let mut text = "NoPermission".to_string();
            if let Some(object) = object {
                text += &format!(" object={object}");
            }
            if let Some(id) = privilege_id {
                text += &format!(" privilegeId={id}");
            }
            text
        }
        FaultKind::OutOfBounds { argument_name } => {
            format!("OutOfBounds argumentName={argument_name}")
        }
        other => other.type_name().to_string(),
    }
}

pub fn render_table(view: View, table: &MemTable) -> Vec<String> {
    let mut lines = Vec::new();
    for task in table.tasks() {
        lines.push(render_task(task));
        if view.created_fields {
            lines.push(render_created(&task.info));
        }
    }
    if lines.is_empty() {
        lines.push("(no tasks)".into());
    }
    lines
}

/// Renders a time as whole seconds (or seconds with a fraction).
pub fn t(time: Timestamp) -> String {
    let micros = time.as_micros();
    if micros % 1_000_000 == 0 {
        (micros / 1_000_000).to_string()
    } else {
        format!("{}.{:06}", micros / 1_000_000, (micros % 1_000_000).abs())
    }
}

/// The lifecycle view of a task: state, times, progress, cancellation, and
/// whatever of result, error, description, details and lease is set.
pub fn render_task(task: &Task) -> String {
    let i = &task.info;
    let mut s = format!("{} state={} queue={}", i.key, i.state, t(i.queue_time));
    if let Some(start) = i.start_time {
        s += &format!(" start={}", t(start));
    }
    if let Some(complete) = i.complete_time {
        s += &format!(" complete={}", t(complete));
    }
    if let Some(p) = i.progress {
        s += &format!(" progress={p}");
    }
    s += &format!(" cancelled={}", i.cancelled);
    if let Some(result) = &i.result {
        s += &format!(" result={}", render_any(result));
    }
    if let Some(error) = &i.error {
        s += &format!(
            " error={} {:?}",
            error.kind.type_name(),
            error.localized_message.as_deref().unwrap_or("<no message>")
        );
    }
    if let Some(d) = &i.description {
        s += &format!(" desc={}", d.key);
    }
    if !i.progress_details.is_empty() {
        let details: Vec<String> = i
            .progress_details
            .iter()
            .map(|kv| format!("{}={}", kv.key, render_any(&kv.value)))
            .collect();
        s += &format!(" details=[{}]", details.join(" "));
    }
    if let Some(lease) = &task.lease {
        s += &format!(
            " lease={}/{}ms/until={}",
            lease.owner,
            lease.ttl_millis,
            t(lease.expires_at)
        );
    }
    s
}

/// The fields CreateTask sets, on a line of their own (tests indent it; the
/// comparison ignores indentation).
pub fn render_created(i: &TaskInfo) -> String {
    let mut s = format!(
        "{} descriptionId={} reason={} eventChainId={} cancelable={}",
        i.key,
        i.description_id,
        render_reason(&i.reason),
        i.event_chain_id,
        i.cancelable
    );
    if let Some(entity) = &i.entity {
        s += &format!(" entity={entity}");
    }
    if let Some(name) = &i.entity_name {
        s += &format!(" entityName={name}");
    }
    if let Some(name) = &i.name {
        s += &format!(" name={name}");
    }
    if let Some(parent) = &i.parent_task_key {
        s += &format!(" parent={parent}");
    }
    if let Some(root) = &i.root_task_key {
        s += &format!(" root={root}");
    }
    if let Some(id) = &i.activation_id {
        s += &format!(" activationId={id}");
    }
    if let Some(tag) = &i.change_tag {
        s += &format!(" changeTag={tag}");
    }
    if !i.locked.is_empty() {
        s += &format!(" locked={}", i.locked.len());
    }
    s
}

pub fn render_reason(reason: &TaskReason) -> String {
    match reason {
        TaskReason::User { user_name } => format!("user:{user_name}"),
        TaskReason::System => "system".into(),
        TaskReason::Alarm { alarm, .. } => format!("alarm:{alarm}"),
        TaskReason::Schedule { scheduled_task, .. } => format!("schedule:{scheduled_task}"),
    }
}

pub fn render_any(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => format!("string:{s:?}"),
        AnyValue::Long(n) => format!("long:{n}"),
        AnyValue::Boolean(b) => format!("boolean:{b}"),
        AnyValue::Double(d) => format!("double:{d}"),
        AnyValue::DateTime(time) => format!("dateTime:{}", t(*time)),
        AnyValue::MoRef(m) => format!("moref:{m}"),
        AnyValue::Json(j) => format!("json:{j}"),
    }
}
