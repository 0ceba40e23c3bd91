//! `TaskFilterSpec` (spec §8.1, D12, D21): which tasks a list, a collector or
//! a watch selects. Fields combine with AND; the values inside one list field
//! combine with OR; an unset field or empty list adds no constraint.

use serde::{Deserialize, Serialize};

use crate::types::{MethodFault, MoRef, State, TaskInfo, TaskReason, Timestamp};
use crate::validate;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFilterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<FilterByEntity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<FilterByTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<FilterByUsername>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activation_id: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<MoRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_task: Option<MoRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_chain_id: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_task_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_task_key: Vec<String>,
}

/// `TaskFilterSpecByEntity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterByEntity {
    pub entity: MoRef,
    pub recursion: RecursionOption,
}

impl FilterByEntity {
    /// The tasks on `entity` itself: the one recursion vtask can answer (D12).
    pub fn itself(entity: MoRef) -> FilterByEntity {
        FilterByEntity {
            entity,
            recursion: RecursionOption::Itself,
        }
    }
}

/// `TaskFilterSpecRecursionOption`. We keep no inventory, so only `self` can
/// be answered (D12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecursionOption {
    #[serde(rename = "self")]
    Itself,
    Children,
    All,
}

/// `TaskFilterSpecByTime`: bounds are inclusive, either may be open (D21).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterByTime {
    pub time_type: TimeOption,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begin_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

/// `TaskFilterSpecTimeOption`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeOption {
    QueuedTime,
    StartedTime,
    CompletedTime,
}

/// `TaskFilterSpecByUsername`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterByUsername {
    pub system_user: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_list: Vec<String>,
}

impl FilterByUsername {
    /// The tasks these users initiated (not the system's).
    pub fn users(user_list: Vec<String>) -> FilterByUsername {
        FilterByUsername {
            system_user: false,
            user_list,
        }
    }
}

impl TaskFilterSpec {
    /// Refuses what we cannot answer: entity recursion beyond `self` (D12)
    /// and malformed morefs.
    pub fn validate(&self) -> Result<(), MethodFault> {
        if let Some(by_entity) = &self.entity {
            validate::moref("filter.entity.entity", &by_entity.entity)?;
            if by_entity.recursion != RecursionOption::Itself {
                return Err(MethodFault::not_supported(
                    "entity recursion 'children' and 'all' need an inventory tree, which vtask does not keep; use recursion 'self'",
                ));
            }
        }
        if let Some(alarm) = &self.alarm {
            validate::moref("filter.alarm", alarm)?;
        }
        if let Some(scheduled) = &self.scheduled_task {
            validate::moref("filter.scheduledTask", scheduled)?;
        }
        Ok(())
    }

    /// Whether `info` is selected by this filter.
    pub fn matches(&self, info: &TaskInfo) -> bool {
        self.entity.as_ref().is_none_or(|e| by_entity(e, info))
            && self.time.as_ref().is_none_or(|t| by_time(t, info))
            && self.user_name.as_ref().is_none_or(|u| by_user(u, &info.reason))
            && any_or_all(&self.activation_id, |id| info.activation_id.as_ref() == Some(id))
            && any_or_all(&self.state, |s| info.state == *s)
            && self.alarm.as_ref().is_none_or(|a| matches!(&info.reason, TaskReason::Alarm { alarm, .. } if alarm == a))
            && self.scheduled_task.as_ref().is_none_or(
                |s| matches!(&info.reason, TaskReason::Schedule { scheduled_task, .. } if scheduled_task == s),
            )
            && any_or_all(&self.event_chain_id, |id| info.event_chain_id == *id)
            && any_or_all(&self.tag, |tag| match &info.change_tag {
                Some(t) => t == tag,
                // An empty string in the list also selects tasks without a tag.
                None => tag.is_empty(),
            })
            && any_or_all(&self.parent_task_key, |k| info.parent_task_key.as_ref() == Some(k))
            && any_or_all(&self.root_task_key, |k| info.root_task_key.as_ref() == Some(k))
    }
}

fn any_or_all<T>(list: &[T], matches: impl Fn(&T) -> bool) -> bool {
    list.is_empty() || list.iter().any(matches)
}

fn by_entity(filter: &FilterByEntity, info: &TaskInfo) -> bool {
    match filter.recursion {
        RecursionOption::Itself => info.entity.as_ref() == Some(&filter.entity),
        // validate() refuses these; without an inventory no descendant is known.
        RecursionOption::Children => false,
        RecursionOption::All => info.entity.as_ref() == Some(&filter.entity),
    }
}

fn by_time(filter: &FilterByTime, info: &TaskInfo) -> bool {
    let time = match filter.time_type {
        TimeOption::QueuedTime => Some(info.queue_time),
        TimeOption::StartedTime => info.start_time,
        TimeOption::CompletedTime => info.complete_time,
    };
    if filter.begin_time.is_none() && filter.end_time.is_none() {
        return true;
    }
    // D21: a task without the selected time does not match while a bound is set.
    let Some(time) = time else { return false };
    filter.begin_time.is_none_or(|begin| begin <= time)
        && filter.end_time.is_none_or(|end| time <= end)
}

/// Our reading of `ByUsername` (spec §8.1, D21): system tasks when
/// `systemUser`, and user tasks whose name is listed (any user when the list
/// is empty).
fn by_user(filter: &FilterByUsername, reason: &TaskReason) -> bool {
    match reason {
        TaskReason::System => filter.system_user,
        TaskReason::User { user_name } => {
            filter.user_list.is_empty() || filter.user_list.contains(user_name)
        }
        TaskReason::Alarm { .. } | TaskReason::Schedule { .. } => false,
    }
}
