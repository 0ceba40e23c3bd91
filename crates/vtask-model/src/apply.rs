//! `apply`: the task rules. Given the state, who calls, a command and the
//! entry's context, compute the reply and the changes, exactly per spec §3–§7
//! and D1–D28. No I/O, no clock: everything comes from the arguments, so every
//! replica computes the same result.

use crate::collector::{self, Use};
use crate::command::{
    ApiVersion, Applied, Caller, Change, Command, Counters, CreateTask, EntryContext, OwnerLease,
    Privilege, Reply, Task, TaskTable,
};
use crate::types::{
    AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo,
    TaskKey, TaskReason, Timestamp,
};
use crate::validate;

/// D16: no completed task is removed sooner than this after completion.
pub const MIN_RETENTION_MILLIS: u64 = 10 * 60 * 1000;
/// D26: the owner lease range a CreateTask may ask for.
pub const MIN_LEASE_MILLIS: u64 = 1_000;
pub const MAX_LEASE_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// Applies one command to the state `table` shows. Never panics on any input.
pub fn apply(
    table: &impl TaskTable,
    caller: &Caller,
    command: &Command,
    ctx: &EntryContext,
) -> Applied {
    let counters = table.counters();
    let result = match command {
        Command::CreateTask(args) => create_task(table, caller, args, ctx),
        Command::CancelTask { task } => cancel_task(table, caller, task, ctx),
        Command::UpdateProgress {
            task,
            percent_done,
            progress_details,
            api_version,
        } => update_progress(
            table,
            caller,
            task,
            *percent_done,
            progress_details.as_deref(),
            *api_version,
            ctx,
        ),
        Command::SetTaskState {
            task,
            state,
            result,
            fault,
        } => set_task_state(
            table,
            caller,
            task,
            *state,
            result.as_ref(),
            fault.as_ref(),
            ctx,
        ),
        Command::SetTaskDescription { task, description } => {
            set_task_description(table, caller, task, description, ctx)
        }
        Command::LapseLease { task } => lapse_lease(table, caller, task, ctx),
        Command::ExpireTasks {
            tasks,
            completed_before,
        } => expire_tasks(table, caller, tasks, *completed_before, ctx),
        Command::CreateCollector {
            filter,
            max_per_owner,
        } => collector::create(table, caller, filter, *max_per_owner, ctx.time).map(
            |(reply, changes, counters)| Done {
                reply,
                changes,
                counters: Some(counters),
            },
        ),
        Command::ReadNextTasks {
            collector,
            max_count,
        } => use_collector(table, caller, collector, Use::ReadNext(*max_count), ctx),
        Command::ReadPreviousTasks {
            collector,
            max_count,
        } => use_collector(table, caller, collector, Use::ReadPrevious(*max_count), ctx),
        Command::RewindCollector { collector } => {
            use_collector(table, caller, collector, Use::Rewind, ctx)
        }
        Command::ResetCollector { collector } => {
            use_collector(table, caller, collector, Use::Reset, ctx)
        }
        Command::SetCollectorPageSize {
            collector,
            max_count,
        } => use_collector(table, caller, collector, Use::SetPageSize(*max_count), ctx),
        Command::DestroyCollector { collector } => {
            use_collector(table, caller, collector, Use::Destroy, ctx)
        }
        Command::ExpireCollectors { idle_millis } => {
            system_only(caller, "ExpireCollectors").map(|()| {
                let (reply, changes) = collector::expire(table, *idle_millis, ctx.time);
                Done {
                    reply,
                    changes,
                    counters: None,
                }
            })
        }
    };
    match result {
        Ok(mut done) => {
            // D21: collector pages follow task creations and state changes.
            let pages = collector::refresh_pages(table, &done.changes);
            done.changes.extend(pages);
            Applied {
                outcome: Ok(done.reply),
                changes: done.changes,
                counters: done.counters.unwrap_or(counters),
            }
        }
        Err(fault) => Applied {
            outcome: Err(fault),
            changes: Vec::new(),
            counters,
        },
    }
}

fn use_collector(
    table: &impl TaskTable,
    caller: &Caller,
    name: &str,
    what: Use,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    collector::use_collector(table, caller, name, what, ctx.time).map(|(reply, changes)| Done {
        reply,
        changes,
        counters: None,
    })
}

struct Done {
    reply: Reply,
    changes: Vec<Change>,
    counters: Option<Counters>,
}

impl Done {
    /// `before` became `after`; the reply is the new TaskInfo.
    fn update(before: Task, after: Task) -> Done {
        let reply = Reply::Task {
            info: after.info.clone(),
        };
        Done {
            reply,
            changes: vec![Change::Put {
                before: Some(before),
                after,
            }],
            counters: None,
        }
    }
}

/// Resolves a task key to the stored task, or the D16 `ManagedObjectNotFound`
/// that says whether the key expired or never existed.
pub fn lookup(table: &impl TaskTable, key: &str) -> Result<Task, MethodFault> {
    let parsed = TaskKey::parse(key);
    if let Some(task) = parsed.and_then(|k| table.task(k)) {
        return Ok(task);
    }
    let obj = MoRef::new("Task", key);
    let standard = FaultKind::ManagedObjectNotFound { obj: obj.clone() }.default_message();
    let why = match parsed {
        Some(k) if k.0 <= table.counters().last_task => {
            "it completed and was removed after the retention period (expired)"
        }
        Some(_) => "no task with this key was ever created",
        None => "this is not a task key (keys look like task-42)",
    };
    Err(MethodFault::with_message(
        FaultKind::ManagedObjectNotFound { obj },
        format!("{standard}: {why}"),
    ))
}

/// D5: not found, then not authenticated, then no permission. The caller
/// has already found the object; reads outside apply check with this too,
/// so they answer exactly as the mutations do.
pub fn authorize(
    caller: &Caller,
    privilege: Privilege,
    object: Option<&MoRef>,
) -> Result<(), MethodFault> {
    match caller {
        Caller::System => Ok(()),
        Caller::Anonymous => Err(MethodFault::new(FaultKind::NotAuthenticated)),
        Caller::User { privileges, .. } if privileges.contains(privilege) => Ok(()),
        Caller::User { name, .. } => Err(MethodFault::with_message(
            FaultKind::NoPermission {
                object: object.cloned(),
                privilege_id: Some(privilege.id().into()),
            },
            format!(
                "Permission to perform this operation was denied: {name} lacks {}",
                privilege.id()
            ),
        )),
    }
}

/// The common preamble of every Task method (D5 order up to the privilege).
fn task_for(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    privilege: Privilege,
) -> Result<Task, MethodFault> {
    let task = lookup(table, key)?;
    let object = match privilege {
        // Global.CancelTask is checked on the entity the task relates to (spec §9).
        Privilege::GlobalCancelTask => task.info.entity.clone().unwrap_or_else(|| task.info.task()),
        _ => task.info.task(),
    };
    authorize(caller, privilege, Some(&object))?;
    Ok(task)
}

/// Times in a task never go backwards, even when a new leader's clock is
/// behind the old one's: queueTime ≤ startTime ≤ completeTime.
fn not_before(now: Timestamp, earlier: Timestamp) -> Timestamp {
    now.max(earlier)
}

/// D26: every Task.Update call by the owner renews the lease.
fn renew_lease(task: &mut Task, caller: &Caller, now: Timestamp) {
    if let (Some(lease), Some(name)) = (task.lease.as_mut(), caller.name()) {
        if lease.owner == name {
            lease.expires_at = now.saturating_add_millis(lease.ttl_millis);
        }
    }
}

fn terminal_fault(info: &TaskInfo, what: &str) -> MethodFault {
    MethodFault::invalid_state(format!(
        "The operation is not allowed in the current state: {} is already {} and cannot {what}",
        info.key, info.state
    ))
}

fn create_task(
    table: &impl TaskTable,
    caller: &Caller,
    args: &CreateTask,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    authorize(caller, Privilege::TaskCreate, None)?;
    validate::create_task(args)?;
    let counters = table.counters();
    let number = counters
        .last_task
        .checked_add(1)
        .ok_or_else(|| exhausted("task keys"))?;
    let chain = counters
        .last_event_chain
        .checked_add(1)
        .ok_or_else(|| exhausted("event chain ids"))?;
    let key = TaskKey(number);

    // D13: the parent need not exist; the root is the parent's root, else the parent.
    let root_task_key = args.parent_task_key.as_ref().map(|parent| {
        TaskKey::parse(parent)
            .and_then(|k| table.task(k))
            .and_then(|p| p.info.root_task_key)
            .unwrap_or_else(|| parent.clone())
    });
    // D11: initiatedBy when given, otherwise the authenticated caller.
    let reason = match (&args.initiated_by, caller.name()) {
        (Some(user), _) => TaskReason::User {
            user_name: user.clone(),
        },
        (None, Some(user)) => TaskReason::User {
            user_name: user.to_string(),
        },
        (None, None) => TaskReason::System,
    };
    let info = TaskInfo {
        key,
        description: None,
        name: None,
        description_id: args.task_type_id.clone(),
        entity: Some(args.obj.clone()),
        entity_name: args.entity_name.clone(),
        locked: Vec::new(),
        state: State::Queued,
        cancelled: false,
        cancelable: args.cancelable,
        error: None,
        result: None,
        progress: None,
        progress_details: Vec::new(),
        reason,
        queue_time: ctx.time,
        start_time: None,
        complete_time: None,
        event_chain_id: chain,
        change_tag: args.change_tag.clone(),
        parent_task_key: args.parent_task_key.clone(),
        root_task_key,
        activation_id: args.activation_id.clone(),
    };
    let lease = args.lease_millis.map(|ttl_millis| OwnerLease {
        owner: caller.name().unwrap_or_default().to_string(),
        ttl_millis,
        expires_at: ctx.time.saturating_add_millis(ttl_millis),
    });
    let task = Task { info, lease };
    Ok(Done {
        reply: Reply::Task {
            info: task.info.clone(),
        },
        changes: vec![Change::Put {
            before: None,
            after: task,
        }],
        counters: Some(Counters {
            last_task: number,
            last_event_chain: chain,
            ..counters
        }),
    })
}

fn exhausted(what: &str) -> MethodFault {
    MethodFault::new(FaultKind::SystemError {
        reason: format!("no more {what} can be allocated"),
    })
}

fn cancel_task(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    let before = task_for(table, caller, key, Privilege::GlobalCancelTask)?;
    let info = &before.info;
    // D5: terminal, then already cancelled, then not cancelable.
    if info.state.is_terminal() {
        return Err(terminal_fault(
            info,
            "be canceled (already completed or canceled)",
        ));
    }
    if info.cancelled {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: cancellation of {} was already requested",
            info.key
        )));
    }
    if !info.cancelable {
        return Err(MethodFault::not_supported(format!(
            "{} is not cancelable",
            info.key
        )));
    }
    let mut after = before.clone();
    after.info.cancelled = true;
    if after.info.state == State::Queued {
        // D4: nobody has picked a queued task up, so this entry ends it.
        finish(
            &mut after.info,
            State::Error,
            None,
            Some(MethodFault::new(FaultKind::RequestCanceled)),
            ctx.time,
        );
    }
    Ok(Done::update(before, after))
}

/// The terminal transition, as one change (spec §3.3): state, completeTime and
/// result or error together.
fn finish(
    info: &mut TaskInfo,
    state: State,
    result: Option<AnyValue>,
    fault: Option<MethodFault>,
    now: Timestamp,
) {
    info.state = state;
    info.complete_time = Some(not_before(now, info.start_time.unwrap_or(info.queue_time)));
    info.result = result;
    info.error = fault.map(MethodFault::localized);
    info.locked.clear();
}

fn update_progress(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    percent_done: i32,
    details: Option<&[KeyAnyValue]>,
    api_version: ApiVersion,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    let before = task_for(table, caller, key, Privilege::TaskUpdate)?;
    if before.info.state != State::Running {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: {} is {}, and progress is reported only while running",
            before.info.key, before.info.state
        )));
    }
    // D28: clamp, unless the caller speaks VI API 2.5.
    if api_version == ApiVersion::Vim25 && !(0..=100).contains(&percent_done) {
        return Err(MethodFault::with_message(
            FaultKind::OutOfBounds {
                argument_name: "percentDone".into(),
            },
            format!("Property percentDone is out of bounds: {percent_done} is not in 0..100"),
        ));
    }
    if let Some(details) = details {
        validate::key_any_values("progressDetails", details)?;
    }
    let mut after = before.clone();
    after.info.progress = Some(percent_done.clamp(0, 100));
    if let Some(details) = details {
        after.info.progress_details = details.to_vec();
    }
    renew_lease(&mut after, caller, ctx.time);
    Ok(Done::update(before, after))
}

fn set_task_state(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    state: State,
    result: Option<&AnyValue>,
    fault: Option<&MethodFault>,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    let before = task_for(table, caller, key, Privilege::TaskUpdate)?;
    let current = before.info.state;
    // Spec §3.4 steps 4–9, in order.
    if current.is_terminal() {
        return Err(terminal_fault(&before.info, "change state"));
    }
    if result.is_some() && state != State::Success {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: a result may be set only with state success, not {state}"
        )));
    }
    if fault.is_some() && state != State::Error {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: a fault may be set only with state error, not {state}"
        )));
    }
    if state == State::Error && fault.is_none() {
        return Err(MethodFault::invalid_state(
            "The operation is not allowed in the current state: state error needs a fault",
        ));
    }
    if let Some(fault) = fault {
        validate::fault("fault", fault)?;
    }
    if let Some(result) = result {
        validate::any_value("result", result)?;
    }
    if current == State::Running && state == State::Queued {
        return Err(MethodFault::invalid_state(format!(
            "The operation is not allowed in the current state: {} is running and cannot go back to queued",
            before.info.key
        )));
    }
    let mut after = before.clone();
    match state {
        State::Success | State::Error => {
            finish(
                &mut after.info,
                state,
                result.cloned(),
                fault.cloned(),
                ctx.time,
            );
        }
        State::Running if current == State::Queued => {
            after.info.state = State::Running;
            after.info.start_time = Some(not_before(ctx.time, after.info.queue_time));
        }
        // D1: queued→queued and running→running change nothing (the first
        // startTime stays); running→queued was refused above.
        State::Queued | State::Running => {}
    }
    renew_lease(&mut after, caller, ctx.time);
    Ok(Done::update(before, after))
}

fn set_task_description(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    description: &LocalizableMessage,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    let before = task_for(table, caller, key, Privilege::TaskUpdate)?;
    // D9: a finished task's current phase does not change.
    if before.info.state.is_terminal() {
        return Err(terminal_fault(&before.info, "change its description"));
    }
    validate::localizable_message("description", description)?;
    let mut after = before.clone();
    after.info.description = Some(description.clone());
    renew_lease(&mut after, caller, ctx.time);
    Ok(Done::update(before, after))
}

fn system_only(caller: &Caller, method: &str) -> Result<(), MethodFault> {
    match caller {
        Caller::System => Ok(()),
        Caller::Anonymous => Err(MethodFault::new(FaultKind::NotAuthenticated)),
        Caller::User { name, .. } => Err(MethodFault::with_message(
            FaultKind::NoPermission {
                object: None,
                privilege_id: None,
            },
            format!("{method} is issued by the service itself, not by {name}"),
        )),
    }
}

fn lapse_lease(
    table: &impl TaskTable,
    caller: &Caller,
    key: &str,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    system_only(caller, "LapseLease")?;
    let before = lookup(table, key)?;
    let lease = match &before.lease {
        Some(lease) if !before.info.state.is_terminal() && lease.expires_at <= ctx.time => {
            lease.clone()
        }
        _ => {
            return Err(MethodFault::invalid_state(format!(
                "The operation is not allowed in the current state: {} has no lapsed owner lease",
                before.info.key
            )))
        }
    };
    let mut after = before.clone();
    let fault = MethodFault::new(FaultKind::SystemError {
        reason: format!(
            "the task's owner {} stopped reporting: its lease of {} ms lapsed",
            lease.owner, lease.ttl_millis
        ),
    });
    finish(&mut after.info, State::Error, None, Some(fault), ctx.time);
    Ok(Done::update(before, after))
}

fn expire_tasks(
    table: &impl TaskTable,
    caller: &Caller,
    keys: &[TaskKey],
    completed_before: Timestamp,
    ctx: &EntryContext,
) -> Result<Done, MethodFault> {
    system_only(caller, "ExpireTasks")?;
    let min_cutoff = Timestamp(
        ctx.time
            .0
            .saturating_sub(MIN_RETENTION_MILLIS as i64 * 1000),
    );
    let cutoff = completed_before.min(min_cutoff);
    let mut removed = Vec::new();
    let mut changes = Vec::new();
    for key in keys {
        if removed.contains(key) {
            continue;
        }
        let Some(task) = table.task(*key) else {
            continue;
        };
        if task.info.state.is_terminal() && task.info.complete_time.is_some_and(|t| t <= cutoff) {
            removed.push(*key);
            changes.push(Change::Remove { task });
        }
    }
    Ok(Done {
        reply: Reply::Expired { tasks: removed },
        changes,
        counters: None,
    })
}
