//! Checks on caller-supplied values. Each failure is an `InvalidArgument`
//! naming the property, so bad input gets a clear fault and changes nothing.

use crate::apply::{MAX_LEASE_MILLIS, MIN_LEASE_MILLIS};
use crate::command::CreateTask;
use crate::types::{AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef};

/// The longest identifier, name or key we accept (D10, D12).
pub const MAX_NAME_LEN: usize = 256;
/// The longest free text (messages, string values, JSON results).
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// The most arguments or detail entries in one list.
pub const MAX_LIST_LEN: usize = 64;
/// How deep fault causes may nest.
pub const MAX_FAULT_DEPTH: usize = 8;
/// The most values in one list of a `TaskFilterSpec` (keys, tags, states, ...).
pub const MAX_FILTER_LIST_LEN: usize = 256;

/// Bounds on a filter a client sends, checked at the API edge and not in
/// apply: filters already in the log (collectors) must replay as they were
/// applied. Every list has at most [`MAX_FILTER_LIST_LEN`] values and every
/// string at most [`MAX_NAME_LEN`] characters, so matching a filter against
/// each change stays cheap.
pub fn filter_limits(filter: &crate::TaskFilterSpec) -> Result<(), MethodFault> {
    fn strings(property: &str, values: &[String]) -> Result<(), MethodFault> {
        at_most(property, values.len(), MAX_FILTER_LIST_LEN)?;
        match values.iter().find(|v| v.chars().count() > MAX_NAME_LEN) {
            Some(long) => Err(MethodFault::invalid_argument(
                property,
                format!("A specified parameter was not correct: {property} holds a value longer than {MAX_NAME_LEN} characters ({:?})", shorten(long)),
            )),
            None => Ok(()),
        }
    }
    strings("filter.activationId", &filter.activation_id)?;
    strings("filter.tag", &filter.tag)?;
    strings("filter.parentTaskKey", &filter.parent_task_key)?;
    strings("filter.rootTaskKey", &filter.root_task_key)?;
    if let Some(users) = &filter.user_name {
        strings("filter.userName.userList", &users.user_list)?;
    }
    at_most("filter.state", filter.state.len(), MAX_FILTER_LIST_LEN)?;
    at_most(
        "filter.eventChainId",
        filter.event_chain_id.len(),
        MAX_FILTER_LIST_LEN,
    )
}

pub(crate) fn create_task(args: &CreateTask) -> Result<(), MethodFault> {
    identifier("taskTypeId", &args.task_type_id)?;
    moref("obj", &args.obj)?;
    optional_name("entityName", args.entity_name.as_deref())?;
    optional_name("initiatedBy", args.initiated_by.as_deref())?;
    optional_name("parentTaskKey", args.parent_task_key.as_deref())?;
    optional_name("activationId", args.activation_id.as_deref())?;
    if let Some(tag) = &args.change_tag {
        // An empty tag means "no tag" in filters (spec §8.1), so it cannot be set.
        name("changeTag", tag)?;
    }
    if let Some(ttl) = args.lease_millis {
        if !(MIN_LEASE_MILLIS..=MAX_LEASE_MILLIS).contains(&ttl) {
            return Err(MethodFault::invalid_argument(
                "lease",
                format!("A specified parameter was not correct: lease {ttl} ms is outside {MIN_LEASE_MILLIS}..{MAX_LEASE_MILLIS} ms"),
            ));
        }
    }
    Ok(())
}

/// D10: 1..256 characters of `[A-Za-z0-9._:-]`.
pub fn identifier(property: &str, value: &str) -> Result<(), MethodFault> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ : -, got {:?}", shorten(value)),
        ))
    }
}

/// D12: a moref with a non-empty type and value, each at most 256 characters.
pub fn moref(property: &str, value: &MoRef) -> Result<(), MethodFault> {
    name(&format!("{property}.type"), &value.type_)?;
    name(&format!("{property}.value"), &value.value)
}

/// A non-empty string of at most 256 characters without control characters.
pub fn name(property: &str, value: &str) -> Result<(), MethodFault> {
    if value.is_empty() {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} must not be empty"),
        ));
    }
    if value.chars().count() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} must be at most {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

fn optional_name(property: &str, value: Option<&str>) -> Result<(), MethodFault> {
    value.map_or(Ok(()), |v| name(property, v))
}

fn text(property: &str, value: &str) -> Result<(), MethodFault> {
    if value.len() > MAX_TEXT_LEN {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} is longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A list of `len` values may hold at most `max`.
fn at_most(property: &str, len: usize, max: usize) -> Result<(), MethodFault> {
    if len > max {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} has {len} entries, at most {max} are allowed"),
        ));
    }
    Ok(())
}

pub fn any_value(property: &str, value: &AnyValue) -> Result<(), MethodFault> {
    match value {
        AnyValue::String(s) => text(property, s),
        AnyValue::Double(d) if !d.is_finite() => Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} must be a finite number"),
        )),
        AnyValue::MoRef(m) => moref(property, m),
        AnyValue::Json(json) => {
            text(property, json)?;
            serde_json::from_str::<serde::de::IgnoredAny>(json).map(|_| ()).map_err(|e| {
                MethodFault::invalid_argument(
                    property,
                    format!("A specified parameter was not correct: {property} is not valid JSON: {e}"),
                )
            })
        }
        AnyValue::Long(_) | AnyValue::Boolean(_) | AnyValue::Double(_) | AnyValue::DateTime(_) => {
            Ok(())
        }
    }
}

pub fn key_any_values(property: &str, values: &[KeyAnyValue]) -> Result<(), MethodFault> {
    at_most(property, values.len(), MAX_LIST_LEN)?;
    for kv in values {
        name(&format!("{property}.key"), &kv.key)?;
        any_value(&format!("{property}.value"), &kv.value)?;
    }
    Ok(())
}

/// `LocalizableMessage.key` is required (spec §6.1).
pub fn localizable_message(
    property: &str,
    message: &LocalizableMessage,
) -> Result<(), MethodFault> {
    name(&format!("{property}.key"), &message.key)?;
    key_any_values(&format!("{property}.arg"), &message.arg)?;
    message
        .message
        .as_deref()
        .map_or(Ok(()), |m| text(&format!("{property}.message"), m))
}

/// D3: any MethodFault is accepted, but it must be well formed.
pub fn fault(property: &str, fault: &MethodFault) -> Result<(), MethodFault> {
    fault_at_depth(property, fault, 0)
}

fn fault_at_depth(property: &str, fault: &MethodFault, depth: usize) -> Result<(), MethodFault> {
    if depth >= MAX_FAULT_DEPTH {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: fault causes nest deeper than {MAX_FAULT_DEPTH}"),
        ));
    }
    match &fault.kind {
        FaultKind::Other { type_name } => {
            other_type_name(&format!("{property}._typeName"), type_name)?
        }
        FaultKind::ManagedObjectNotFound { obj } => moref(&format!("{property}.obj"), obj)?,
        FaultKind::OutOfBounds { argument_name } => {
            name(&format!("{property}.argumentName"), argument_name)?
        }
        FaultKind::SystemError { reason } => text(&format!("{property}.reason"), reason)?,
        FaultKind::InvalidArgument {
            invalid_property: Some(p),
        } => name(&format!("{property}.invalidProperty"), p)?,
        FaultKind::NoPermission {
            object,
            privilege_id,
        } => {
            if let Some(object) = object {
                moref(&format!("{property}.object"), object)?;
            }
            if let Some(id) = privilege_id {
                name(&format!("{property}.privilegeId"), id)?;
            }
        }
        FaultKind::NotSupported
        | FaultKind::RequestCanceled
        | FaultKind::InvalidArgument {
            invalid_property: None,
        }
        | FaultKind::SecurityError
        | FaultKind::NotAuthenticated
        | FaultKind::InvalidState => {}
    }
    if let Some(message) = &fault.localized_message {
        text(&format!("{property}.localizedMessage"), message)?;
    }
    at_most(
        &format!("{property}.faultMessage"),
        fault.fault_message.len(),
        MAX_LIST_LEN,
    )?;
    for message in &fault.fault_message {
        localizable_message(&format!("{property}.faultMessage"), message)?;
    }
    match &fault.fault_cause {
        Some(cause) => fault_at_depth(&format!("{property}.faultCause"), cause, depth + 1),
        None => Ok(()),
    }
}

/// The name of an unmodelled fault: an identifier, short (no `vim.fault.` or
/// `vmodl.fault.`) and not the name of a modelled kind, so that the fault
/// reads back from JSON as the same value.
fn other_type_name(property: &str, type_name: &str) -> Result<(), MethodFault> {
    identifier(property, type_name)?;
    let short = FaultKind::short_type_name(type_name);
    if FaultKind::is_modelled_type_name(short) {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} {type_name:?} names a modelled fault kind; use the modelled kind {short} (FaultKind::{short}), not FaultKind::Other"),
        ));
    }
    if short != type_name {
        return Err(MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {property} must be the short name {short:?}, without the namespace prefix"),
        ));
    }
    Ok(())
}

fn shorten(value: &str) -> String {
    value.chars().take(40).collect()
}
