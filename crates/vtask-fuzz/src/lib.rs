//! Fuzz targets as plain functions over bytes, so that one body serves
//! `cargo fuzz` (fuzz/, nightly, libFuzzer) and the ordinary test suite
//! (tests/targets.rs replays the corpus in `corpus/<target>/` and runs a
//! bounded number of random inputs).
//!
//! Each target panics only when it finds a bug: a decoder or `apply` that
//! panics on hostile input, a message that does not survive re-encoding,
//! or a refused command that changed the table.

use prost::Message;
use vtask_model::{
    AnyValue, ApiVersion, Caller, Command, CreateTask, EntryContext, FaultKind, KeyAnyValue,
    LocalizableMessage, MemTable, MethodFault, MoRef, Privilege, Privileges, State, TaskFilterSpec,
    TaskKey, Timestamp,
};
use vtask_proto::v1;

#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
pub use store::{internal_request, SnapshotTarget};

/// The targets, by the name of their corpus directory.
pub const TARGETS: &[&str] = &[
    "public_request",
    "soap_request",
    "apply_commands",
    "internal_request",
    "snapshot",
];

/// Decodes `bytes` as `M`; a message that decodes must encode to bytes that
/// decode to the same message.
fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again =
        M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
    assert_eq!(message, again, "re-encoding changed the message");
    Some(message)
}

/// Every public request type: the first byte picks the type, the rest is
/// its protobuf encoding. What decodes goes on as the node takes it: to a
/// model command or filter, validated, and (for mutations) applied.
pub fn public_request(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let mut table = MemTable::new();
    let (ctx, caller) = (FIRST_ENTRY, Caller::user("fuzz", Privileges::ALL));
    let mut command = |c: Result<Command, MethodFault>| {
        if let Ok(c) = c {
            apply_checked(&mut table, &caller, &c, &ctx);
        }
    };
    let filter = |f: Option<v1::TaskFilterSpec>| {
        if let Some(Ok(f)) = f.map(TaskFilterSpec::try_from) {
            let _ = f.validate();
            let _ = vtask_model::validate::filter_limits(&f);
        }
    };
    match which % 20 {
        0 => {
            if let Some(r) = roundtrip::<v1::CreateTaskRequest>(bytes) {
                command(Command::try_from(r));
            }
        }
        1 => {
            if let Some(r) = roundtrip::<v1::CancelTaskRequest>(bytes) {
                command(Ok(Command::from(r)));
            }
        }
        2 => {
            if let Some(r) = roundtrip::<v1::UpdateProgressRequest>(bytes) {
                command(Command::try_from(r));
            }
        }
        3 => {
            if let Some(r) = roundtrip::<v1::SetTaskStateRequest>(bytes) {
                command(Command::try_from(r));
            }
        }
        4 => {
            if let Some(r) = roundtrip::<v1::SetTaskDescriptionRequest>(bytes) {
                command(Command::try_from(r));
            }
        }
        5 => {
            if let Some(r) = roundtrip::<v1::GetTaskRequest>(bytes) {
                let _ = TaskKey::parse(&r.key);
            }
        }
        6 => {
            if let Some(r) = roundtrip::<v1::ListTasksRequest>(bytes) {
                filter(r.filter);
                let _ = TaskKey::parse(&r.page_token);
            }
        }
        7 => {
            let _ = roundtrip::<v1::RecentTasksRequest>(bytes);
        }
        8 => {
            if let Some(r) = roundtrip::<v1::WatchTasksRequest>(bytes) {
                if let Some(v1::watch_tasks_request::Selector::Filter(f)) = r.selector {
                    filter(Some(f));
                }
            }
        }
        9 => {
            if let Some(r) = roundtrip::<v1::WaitTaskRequest>(bytes) {
                if let Some(d) = r.timeout {
                    let _ = vtask_proto::convert::duration_to_millis(&d, "timeout");
                }
            }
        }
        10 => {
            let _ = roundtrip::<v1::GetTaskHistoryRequest>(bytes);
        }
        11 => {
            if let Some(r) = roundtrip::<v1::CreateCollectorForTasksRequest>(bytes) {
                if let Some(Ok(f)) = r.filter.map(TaskFilterSpec::try_from) {
                    command(Ok(Command::CreateCollector {
                        filter: f,
                        max_per_owner: 4,
                    }));
                }
            }
        }
        12 => {
            if let Some(r) = roundtrip::<v1::ReadNextTasksRequest>(bytes) {
                command(Ok(Command::ReadNextTasks {
                    collector: r.collector,
                    max_count: r.max_count,
                }));
            }
        }
        13 => {
            if let Some(r) = roundtrip::<v1::ReadPreviousTasksRequest>(bytes) {
                command(Ok(Command::ReadPreviousTasks {
                    collector: r.collector,
                    max_count: r.max_count,
                }));
            }
        }
        14 => {
            let _ = roundtrip::<v1::RewindCollectorRequest>(bytes);
        }
        15 => {
            let _ = roundtrip::<v1::ResetCollectorRequest>(bytes);
        }
        16 => {
            if let Some(r) = roundtrip::<v1::SetCollectorPageSizeRequest>(bytes) {
                command(Ok(Command::SetCollectorPageSize {
                    collector: r.collector,
                    max_count: r.max_count,
                }));
            }
        }
        17 => {
            let _ = roundtrip::<v1::DestroyCollectorRequest>(bytes);
        }
        18 => {
            let _ = roundtrip::<v1::GetLatestPageRequest>(bytes);
        }
        _ => {
            let _ = roundtrip::<v1::StatusRequest>(bytes);
        }
    }
}

/// Applies `command` and checks that a refusal changed nothing.
/// A vim25 SOAP body as the vSphere door (`/sdk`) reads it. The decoder
/// never panics; a task or collector method that decodes is applied to a
/// table holding `task-1` (a refused one changes nothing); and every fault,
/// the decoder's or the model's, renders to a SOAP document that parses
/// again, whatever text the input put in its message.
pub fn soap_request(data: &[u8]) {
    use vtask_vsphere::{encode, request, xml};
    let render = |fault: MethodFault| {
        let document = encode::fault(&fault.localized());
        if let Err(e) = xml::parse(document.as_bytes()) {
            panic!("a fault rendered to malformed XML ({e}):\n{document}");
        }
    };
    let request = match request::decode(data) {
        Ok(request) => request,
        Err(fault) => return render(fault),
    };
    let Some(command) = request.command() else {
        return;
    };
    let mut table = MemTable::new();
    let (ctx, caller) = (FIRST_ENTRY, Caller::user("fuzz", Privileges::ALL));
    let seed = Command::CreateTask(CreateTask {
        obj: MoRef::new("Folder", "group-d1"),
        task_type_id: "com.example.fuzz".into(),
        cancelable: true,
        ..CreateTask::default()
    });
    table
        .apply(&caller, &seed, &ctx)
        .expect("the seed task is created");
    let ctx = EntryContext { index: 2, ..ctx };
    if let Some(fault) = apply_checked(&mut table, &caller, &command, &ctx) {
        render(fault);
    }
}

/// The context of a log's first entry, for the targets that apply one.
const FIRST_ENTRY: EntryContext = EntryContext {
    time: Timestamp(1_700_000_000_000_000),
    term: 1,
    index: 1,
};

/// Applies `command`; a refusal (returned) must leave the table as it was.
fn apply_checked(
    table: &mut MemTable,
    caller: &Caller,
    command: &Command,
    ctx: &EntryContext,
) -> Option<MethodFault> {
    let before = table.clone();
    let fault = table.apply(caller, command, ctx).err()?;
    assert_eq!(*table, before, "a refused {command:?} changed the table");
    Some(fault)
}

/// Reads structured values from fuzz bytes; past the end it reads zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<'s>(&mut self, choices: &[&'s str]) -> &'s str {
        choices[self.byte() as usize % choices.len()]
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn key(&mut self) -> String {
        self.pick(&[
            "task-1", "task-2", "task-3", "task-4", "task-0", "task-99", "", "x",
        ])
        .to_string()
    }

    fn name(&mut self) -> String {
        self.pick(&["vm-1", "vm-2", "a:b", "", "\u{7}", "é", "com.example.x"])
            .to_string()
    }

    fn caller(&mut self) -> Caller {
        match self.byte() % 6 {
            0 => Caller::Anonymous,
            1 => Caller::System,
            _ => {
                let bits = self.byte();
                let privileges: Vec<Privilege> = Privilege::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, p)| p)
                    .collect();
                Caller::user(self.pick(&["alice", "bob"]), Privileges::of(&privileges))
            }
        }
    }

    fn state(&mut self) -> State {
        [State::Queued, State::Running, State::Success, State::Error][self.byte() as usize % 4]
    }

    fn value(&mut self) -> AnyValue {
        match self.byte() % 5 {
            0 => AnyValue::String(self.name()),
            1 => AnyValue::Long(self.i32() as i64),
            2 => AnyValue::Double(f64::from_bits(u64::from(self.i32() as u32) << 32)),
            3 => AnyValue::Json(self.pick(&["{}", "[1,", "null", "\"x\""]).to_string()),
            _ => AnyValue::Boolean(self.bool()),
        }
    }

    fn fault(&mut self, depth: usize) -> MethodFault {
        let kind = match self.byte() % 3 {
            0 => FaultKind::RequestCanceled,
            1 => FaultKind::SystemError {
                reason: self.name(),
            },
            _ => FaultKind::NotAuthenticated,
        };
        let mut fault = MethodFault::new(kind);
        if depth < 10 && self.bool() {
            fault.fault_cause = Some(Box::new(self.fault(depth + 1)));
        }
        fault
    }

    fn filter(&mut self) -> TaskFilterSpec {
        let mut filter = TaskFilterSpec::default();
        for _ in 0..self.byte() % 3 {
            filter.state.push(self.state());
        }
        if self.bool() {
            filter.parent_task_key.push(self.key());
        }
        if self.bool() {
            filter.tag.push(self.name());
        }
        filter
    }

    fn command(&mut self) -> Command {
        match self.byte() % 15 {
            0 | 1 => Command::CreateTask(CreateTask {
                obj: MoRef::new(self.pick(&["VirtualMachine", "", "Host"]), self.name()),
                entity_name: self.bool().then(|| self.name()),
                task_type_id: self.name(),
                initiated_by: self.bool().then(|| self.name()),
                cancelable: self.bool(),
                parent_task_key: self.bool().then(|| self.key()),
                activation_id: None,
                change_tag: self.bool().then(|| self.name()),
                lease_millis: self.bool().then(|| (self.i32() as u32 as u64) * 10),
            }),
            2 => Command::CancelTask { task: self.key() },
            3 => Command::UpdateProgress {
                task: self.key(),
                percent_done: self.i32(),
                progress_details: self.bool().then(|| {
                    vec![KeyAnyValue {
                        key: self.name(),
                        value: self.value(),
                    }]
                }),
                api_version: if self.bool() {
                    ApiVersion::Vim25
                } else {
                    ApiVersion::Current
                },
            },
            4 | 5 => Command::SetTaskState {
                task: self.key(),
                state: self.state(),
                result: self.bool().then(|| self.value()),
                fault: self.bool().then(|| self.fault(0)),
            },
            6 => Command::SetTaskDescription {
                task: self.key(),
                description: LocalizableMessage {
                    key: self.name(),
                    arg: Vec::new(),
                    message: self.bool().then(|| self.name()),
                },
            },
            7 => Command::LapseLease { task: self.key() },
            8 => Command::ExpireTasks {
                tasks: (0..self.byte() % 3)
                    .map(|_| TaskKey(u64::from(self.byte() % 6)))
                    .collect(),
                completed_before: Timestamp(i64::from(self.i32()) * 1_000_000),
            },
            9 => Command::CreateCollector {
                filter: self.filter(),
                max_per_owner: u32::from(self.byte() % 4),
            },
            10 => Command::ReadNextTasks {
                collector: self.pick(&["collector-1", "collector-2", "x"]).to_string(),
                max_count: self.i32() % 2000,
            },
            11 => Command::ReadPreviousTasks {
                collector: self.pick(&["collector-1", "collector-2", "x"]).to_string(),
                max_count: self.i32() % 2000,
            },
            12 => Command::SetCollectorPageSize {
                collector: self.pick(&["collector-1", "collector-2"]).to_string(),
                max_count: self.i32() % 2000,
            },
            13 => Command::ResetCollector {
                collector: self.pick(&["collector-1", "collector-2"]).to_string(),
            },
            _ => Command::ExpireCollectors {
                idle_millis: u64::from(self.byte()) * 1000,
            },
        }
    }
}

/// `apply` on a sequence of arbitrary commands from arbitrary callers, at
/// times that may go backwards (a new leader's clock can be behind).
pub fn apply_commands(data: &[u8]) {
    let mut input = Input { data };
    let mut table = MemTable::new();
    let mut time = 1_700_000_000_000_000i64;
    for index in 1..=64u64 {
        if input.data.is_empty() {
            break;
        }
        time = time.saturating_add(i64::from(input.i32()) * 1000);
        let ctx = EntryContext {
            time: Timestamp(time),
            term: 1 + index / 16,
            index,
        };
        let caller = input.caller();
        let command = input.command();
        apply_checked(&mut table, &caller, &command, &ctx);
    }
}
