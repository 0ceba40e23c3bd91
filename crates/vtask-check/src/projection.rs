//! The part of a `TaskInfo` that the sequential model can predict.
//!
//! The leader chooses some values that no client can foresee: the entry's
//! time (queueTime, startTime, completeTime), and the global counters behind
//! `eventChainId`, which every create in the cluster advances, not only the
//! creates of the task under check. The linearizability check therefore
//! compares replies on this projection.
//!
//! Compared, and why each one is predictable from the calls on one task:
//! - `key`: the create's reply fixes it; every later reply must name it.
//! - `state`, `progress`, `progressDetails`, `cancelled`, `cancelable`,
//!   `description` (key, args, message), `result`: the arguments of the
//!   calls that were applied, in order. These are what a lost, stale or
//!   doubled write changes.
//! - `error`: only its fault type name (`_typeName`). Which fault a task ended
//!   with tells which transition won (RequestCanceled for a cancel of a queued
//!   task, the caller's fault for SetTaskState); its message and nested
//!   causes pass through the protobuf mapping and add nothing to the order.
//! - `startTime`/`completeTime`: whether each is set, not its value; that is
//!   the part the transitions decide.
//! - `descriptionId`, `name`, `entity`, `entityName`, `reason`, `changeTag`,
//!   `parentTaskKey`, `rootTaskKey`, `activationId`, `locked`: set by the
//!   create and never changed, so any later change is an anomaly.
//!
//! Left out: `queueTime`, the values of `startTime`/`completeTime`, and
//! `eventChainId`.

use std::fmt;

use serde::{Deserialize, Serialize};
use vtask_model::{
    AnyValue, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo, TaskKey,
    TaskReason,
};

use crate::history::Returned;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub key: TaskKey,
    pub state: State,
    pub progress: Option<i32>,
    pub progress_details: Vec<KeyAnyValue>,
    pub cancelled: bool,
    pub cancelable: bool,
    pub description: Option<LocalizableMessage>,
    pub description_id: String,
    pub name: Option<String>,
    pub entity: Option<MoRef>,
    pub entity_name: Option<String>,
    pub locked: Vec<MoRef>,
    /// The fault type name of `TaskInfo.error`.
    pub error: Option<String>,
    pub result: Option<AnyValue>,
    pub reason: TaskReason,
    pub started: bool,
    pub completed: bool,
    pub change_tag: Option<String>,
    pub parent_task_key: Option<String>,
    pub root_task_key: Option<String>,
    pub activation_id: Option<String>,
}

impl From<&TaskInfo> for TaskView {
    fn from(info: &TaskInfo) -> TaskView {
        TaskView {
            key: info.key,
            state: info.state,
            progress: info.progress,
            progress_details: info.progress_details.clone(),
            cancelled: info.cancelled,
            cancelable: info.cancelable,
            description: info.description.clone(),
            description_id: info.description_id.clone(),
            name: info.name.clone(),
            entity: info.entity.clone(),
            entity_name: info.entity_name.clone(),
            locked: info.locked.clone(),
            error: info.error.as_ref().map(fault_type),
            result: info.result.clone(),
            reason: info.reason.clone(),
            started: info.start_time.is_some(),
            completed: info.complete_time.is_some(),
            change_tag: info.change_tag.clone(),
            parent_task_key: info.parent_task_key.clone(),
            root_task_key: info.root_task_key.clone(),
            activation_id: info.activation_id.clone(),
        }
    }
}

impl TaskView {
    /// The fields that differ, as `name: self ≠ other` in JSON, for the
    /// cases where the compact form of both reads the same.
    pub fn differences(&self, other: &TaskView) -> Vec<String> {
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return Vec::new();
        };
        a.iter()
            .filter(|(name, value)| b.get(*name) != Some(*value))
            .map(|(name, value)| {
                let theirs = b.get(name).cloned().unwrap_or_default();
                format!("{name}: {value} ≠ {theirs}")
            })
            .collect()
    }
}

fn fault_type(fault: &MethodFault) -> String {
    fault.kind.type_name().to_string()
}

/// Compact: `{running 40%}`, `{error RequestCanceled cancelled}`. Fields that
/// never change after the create are left out; the report's detail lines
/// show them when they differ.
impl fmt::Display for TaskView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}", self.state)?;
        if let Some(progress) = self.progress {
            write!(f, " {progress}%")?;
        }
        if let Some(error) = &self.error {
            write!(f, " {error}")?;
        }
        if self.result.is_some() {
            write!(f, " result")?;
        }
        if self.cancelled {
            write!(f, " cancelled")?;
        }
        if let Some(description) = &self.description {
            write!(f, " desc={}", description.key)?;
        }
        if !self.progress_details.is_empty() {
            write!(f, " details={}", self.progress_details.len())?;
        }
        write!(f, "}}")
    }
}

/// What a call returned, projected: a task view or a fault type name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Observed {
    Task(TaskView),
    Fault(String),
}

impl From<&Returned> for Observed {
    fn from(returned: &Returned) -> Observed {
        match returned {
            Returned::Task(info) => Observed::Task(TaskView::from(info)),
            Returned::Fault(fault) => Observed::Fault(fault_type(fault)),
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Task(view) => write!(f, "ok {view}"),
            Observed::Fault(name) => f.write_str(name),
        }
    }
}
