//! `vtask-vsphere`: the vim25 SOAP wire format of vtask's vSphere door.
//!
//! What a vSphere client (pyVmomi, govmomi) sends and expects, as pure
//! functions: [`request::decode`] reads a SOAP envelope into a
//! [`request::Request`] (method, `_this`, arguments) and the model
//! [`Command`](vtask_model::Command) it stands for; [`encode`] writes
//! replies (values with their `xsi:type`s, `UpdateSet`s, SOAP faults with a
//! typed `detail`); [`task_property`] reads a property path of a task.
//! See `shared/spec/vsphere-soap.md` for the subset served.
//!
//! **Architecture invariant:** no I/O, no clock, no session or filter
//! state, no rule: the door in `vtaskd` (`soap.rs`) owns those, and the
//! rules stay in `vtask-model`.

pub mod encode;
pub mod request;
pub mod time;
pub mod xml;

use vtask_model::{FaultKind, MethodFault, TaskInfo};

pub use encode::Val;

/// The fixed managed objects of the service, by moref value.
pub const SERVICE_INSTANCE: &str = "ServiceInstance";
pub const ROOT_FOLDER: &str = "group-d1";
pub const PROPERTY_COLLECTOR: &str = "propertyCollector";
pub const SESSION_MANAGER: &str = "SessionManager";
pub const TASK_MANAGER: &str = "TaskManager";

/// The properties `all = true` selects on an object type.
pub fn all_properties(type_: &str) -> &'static [&'static str] {
    match type_ {
        "Task" => &["info"],
        "TaskManager" => &["recentTask"],
        "ServiceInstance" => &["content"],
        "SessionManager" => &["currentSession"],
        "TaskHistoryCollector" => &["latestPage"],
        _ => &[],
    }
}

/// `vmodl.query.InvalidProperty`: a property path the object does not have.
pub fn invalid_property(path: &str) -> MethodFault {
    MethodFault::with_message(
        FaultKind::Other {
            type_name: "InvalidProperty".into(),
        },
        format!("The property {path} does not exist"),
    )
}

/// The value of a Task property path (`info`, `info.state`, ...); `Ok(None)`
/// for a property that is unset.
pub fn task_property(info: &TaskInfo, path: &str) -> Result<Option<Val>, MethodFault> {
    let Some(field) = path.strip_prefix("info") else {
        return Err(invalid_property(path));
    };
    let field = match field {
        "" => return Ok(Some(Val::TaskInfo(Box::new(info.clone())))),
        f => f.strip_prefix('.').ok_or_else(|| invalid_property(path))?,
    };
    let some = |v| Ok(Some(v));
    match field {
        "key" => some(Val::Str(info.key.to_string())),
        "task" => some(Val::MoRef(info.task())),
        "description" => Ok(info.description.clone().map(Val::Message)),
        "name" => Ok(info.name.clone().map(Val::Str)),
        "descriptionId" => some(Val::Str(info.description_id.clone())),
        "entity" => Ok(info.entity.clone().map(Val::MoRef)),
        "entityName" => Ok(info.entity_name.clone().map(Val::Str)),
        "locked" => some(Val::MoRefs(info.locked.clone())),
        "state" => some(Val::State(info.state)),
        "cancelled" => some(Val::Bool(info.cancelled)),
        "cancelable" => some(Val::Bool(info.cancelable)),
        "error" => Ok(info.error.clone().map(|f| Val::Fault(Box::new(f)))),
        "result" => Ok(info.result.clone().map(Val::Any)),
        "progress" => Ok(info.progress.map(Val::Int)),
        "progressDetails" => some(Val::KeyAnyValues(info.progress_details.clone())),
        "reason" => some(Val::Reason(info.reason.clone())),
        "queueTime" => some(Val::DateTime(info.queue_time)),
        "startTime" => Ok(info.start_time.map(Val::DateTime)),
        "completeTime" => Ok(info.complete_time.map(Val::DateTime)),
        "eventChainId" => some(Val::Int(info.event_chain_id)),
        "changeTag" => Ok(info.change_tag.clone().map(Val::Str)),
        "parentTaskKey" => Ok(info.parent_task_key.clone().map(Val::Str)),
        "rootTaskKey" => Ok(info.root_task_key.clone().map(Val::Str)),
        "activationId" => Ok(info.activation_id.clone().map(Val::Str)),
        _ => Err(invalid_property(path)),
    }
}

#[cfg(test)]
mod tests;
