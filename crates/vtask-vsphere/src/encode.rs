//! Encoding vim25 replies: values with the `xsi:type`s pyVmomi and govmomi
//! expect, the response envelope, SOAP faults, UpdateSets.

use vtask_model::{
    AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo,
    TaskReason, Timestamp,
};

use crate::time;
use crate::xml::escape;

const ENVELOPE_START: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
    "\n<soapenv:Body>"
);
const ENVELOPE_END: &str = "</soapenv:Body>\n</soapenv:Envelope>";

/// The vim25 versions this door speaks, newest first. pyVmomi picks the
/// newest it knows from `vimServiceVersions.xml`.
pub const VERSIONS: [&str; 8] = [
    "8.0.3.0", "8.0.2.0", "8.0.1.0", "8.0.0.0", "7.0.3.0", "7.0.2.0", "7.0.1.0", "7.0.0.0",
];

/// `GET /sdk/vimServiceVersions.xml`.
pub fn service_versions() -> String {
    let prior: String = VERSIONS[1..]
        .iter()
        .map(|v| format!("<version>{v}</version>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<namespaces version=\"1.0\">\n <namespace>\n  <name>urn:vim25</name>\n  <version>{}</version>\n  <priorVersions>{prior}</priorVersions>\n </namespace>\n</namespaces>\n",
        VERSIONS[0]
    )
}

/// `AboutInfo` and the fixed morefs of `ServiceContent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct About {
    pub version: String,
    pub build: String,
    pub api_version: String,
    pub instance_uuid: String,
}

/// `UserSession`, as Login and `currentSession` return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSession {
    pub key: String,
    pub user_name: String,
    pub login_time: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    Enter,
    Modify,
    Leave,
}

/// `ObjectUpdate`: one object's changes; a `None` value is an unset property.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectUpdate {
    pub kind: UpdateKind,
    pub obj: MoRef,
    pub changes: Vec<(String, Option<Val>)>,
}

/// `PropertyFilterUpdate`.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterUpdate {
    pub filter: MoRef,
    pub objects: Vec<ObjectUpdate>,
}

/// `UpdateSet`.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateSet {
    pub version: String,
    pub filters: Vec<FilterUpdate>,
}

/// `ObjectContent`: an object and the properties read from it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectContent {
    pub obj: MoRef,
    pub props: Vec<(String, Val)>,
}

/// A value on the wire, with the type it is sent as.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    TaskInfo(Box<TaskInfo>),
    TaskInfos(Vec<TaskInfo>),
    MoRef(MoRef),
    MoRefs(Vec<MoRef>),
    State(State),
    Int(i32),
    Str(String),
    Bool(bool),
    DateTime(Timestamp),
    Any(AnyValue),
    Fault(Box<MethodFault>),
    Message(LocalizableMessage),
    Reason(TaskReason),
    KeyAnyValues(Vec<KeyAnyValue>),
    ServiceContent(About),
    UserSession(UserSession),
    UpdateSet(UpdateSet),
    RetrieveResult(Vec<ObjectContent>),
    ObjectContent(ObjectContent),
}

impl Val {
    /// The `xsi:type` the value carries where the schema's type is wider.
    pub fn xsi_type(&self) -> &str {
        match self {
            Val::TaskInfo(_) => "TaskInfo",
            Val::TaskInfos(_) => "ArrayOfTaskInfo",
            Val::MoRef(_) => "ManagedObjectReference",
            Val::MoRefs(_) => "ArrayOfManagedObjectReference",
            Val::State(_) => "TaskInfoState",
            Val::Int(_) => "xsd:int",
            Val::Str(_) => "xsd:string",
            Val::Bool(_) => "xsd:boolean",
            Val::DateTime(_) => "xsd:dateTime",
            Val::Any(v) => any_type(v),
            Val::Fault(_) => "LocalizedMethodFault",
            Val::Message(_) => "LocalizableMessage",
            Val::Reason(r) => reason_type(r),
            Val::KeyAnyValues(_) => "ArrayOfKeyAnyValue",
            Val::ServiceContent(_) => "ServiceContent",
            Val::UserSession(_) => "UserSession",
            Val::UpdateSet(_) => "UpdateSet",
            Val::RetrieveResult(_) => "RetrieveResult",
            Val::ObjectContent(_) => "ObjectContent",
        }
    }
}

fn any_type(v: &AnyValue) -> &'static str {
    match v {
        AnyValue::String(_) | AnyValue::Json(_) => "xsd:string",
        AnyValue::Long(_) => "xsd:long",
        AnyValue::Boolean(_) => "xsd:boolean",
        AnyValue::Double(_) => "xsd:double",
        AnyValue::DateTime(_) => "xsd:dateTime",
        AnyValue::MoRef(_) => "ManagedObjectReference",
    }
}

fn reason_type(r: &TaskReason) -> &'static str {
    match r {
        TaskReason::User { .. } => "TaskReasonUser",
        TaskReason::System => "TaskReasonSystem",
        TaskReason::Alarm { .. } => "TaskReasonAlarm",
        TaskReason::Schedule { .. } => "TaskReasonSchedule",
    }
}

/// An XML text being written.
#[derive(Default)]
pub struct Writer(String);

impl Writer {
    fn open(&mut self, tag: &str, xsi: Option<&str>) {
        self.0.push('<');
        self.0.push_str(tag);
        if let Some(t) = xsi {
            self.0.push_str(" xsi:type=\"");
            self.0.push_str(t);
            self.0.push('"');
        }
        self.0.push('>');
    }

    fn close(&mut self, tag: &str) {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
    }

    fn leaf(&mut self, tag: &str, xsi: Option<&str>, text: &str) {
        self.open(tag, xsi);
        self.0.push_str(&escape(text));
        self.close(tag);
    }

    fn opt(&mut self, tag: &str, text: &Option<String>) {
        if let Some(t) = text {
            self.leaf(tag, None, t);
        }
    }

    fn moref(&mut self, tag: &str, m: &MoRef, typed: bool) {
        self.0.push('<');
        self.0.push_str(tag);
        if typed {
            self.0.push_str(" xsi:type=\"ManagedObjectReference\"");
        }
        self.0.push_str(" type=\"");
        self.0.push_str(&escape(&m.type_));
        self.0.push_str("\">");
        self.0.push_str(&escape(&m.value));
        self.close(tag);
    }

    fn time(&mut self, tag: &str, t: Timestamp) {
        self.leaf(tag, None, &time::format(t));
    }

    /// Writes `val` as element `tag`, with its `xsi:type` when `typed`.
    pub fn val(&mut self, tag: &str, val: &Val, typed: bool) {
        let xsi = typed.then(|| val.xsi_type());
        match val {
            Val::TaskInfo(info) => self.task_info(tag, info, xsi),
            Val::TaskInfos(infos) => {
                self.open(tag, xsi);
                for info in infos {
                    self.task_info("TaskInfo", info, None);
                }
                self.close(tag);
            }
            Val::MoRef(m) => self.moref(tag, m, typed),
            Val::MoRefs(ms) => {
                self.open(tag, xsi);
                for m in ms {
                    self.moref("ManagedObjectReference", m, false);
                }
                self.close(tag);
            }
            Val::State(s) => self.leaf(tag, xsi, s.as_str()),
            Val::Int(i) => self.leaf(tag, xsi, &i.to_string()),
            Val::Str(s) => self.leaf(tag, xsi, s),
            Val::Bool(b) => self.leaf(tag, xsi, if *b { "true" } else { "false" }),
            Val::DateTime(t) => self.leaf(tag, xsi, &time::format(*t)),
            Val::Any(v) => self.any(tag, v),
            Val::Fault(f) => self.localized_fault(tag, f, xsi),
            Val::Message(m) => self.message(tag, m, xsi),
            Val::Reason(r) => self.reason(tag, r, true),
            Val::KeyAnyValues(kvs) => {
                self.open(tag, xsi);
                for kv in kvs {
                    self.key_any_value("KeyAnyValue", kv);
                }
                self.close(tag);
            }
            Val::ServiceContent(about) => self.service_content(tag, about, xsi),
            Val::UserSession(s) => self.user_session(tag, s, xsi),
            Val::UpdateSet(u) => self.update_set(tag, u, xsi),
            Val::RetrieveResult(objects) => {
                self.open(tag, xsi);
                for o in objects {
                    self.object_content("objects", o);
                }
                self.close(tag);
            }
            Val::ObjectContent(o) => self.object_content(tag, o),
        }
    }

    fn any(&mut self, tag: &str, v: &AnyValue) {
        let xsi = Some(any_type(v));
        match v {
            AnyValue::String(s) | AnyValue::Json(s) => self.leaf(tag, xsi, s),
            AnyValue::Long(n) => self.leaf(tag, xsi, &n.to_string()),
            AnyValue::Boolean(b) => self.leaf(tag, xsi, if *b { "true" } else { "false" }),
            AnyValue::Double(d) => self.leaf(tag, xsi, &d.to_string()),
            AnyValue::DateTime(t) => self.leaf(tag, xsi, &time::format(*t)),
            AnyValue::MoRef(m) => self.moref(tag, m, true),
        }
    }

    fn key_any_value(&mut self, tag: &str, kv: &KeyAnyValue) {
        self.open(tag, None);
        self.leaf("key", None, &kv.key);
        self.any("value", &kv.value);
        self.close(tag);
    }

    fn message(&mut self, tag: &str, m: &LocalizableMessage, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.leaf("key", None, &m.key);
        for a in &m.arg {
            self.key_any_value("arg", a);
        }
        self.opt("message", &m.message);
        self.close(tag);
    }

    fn reason(&mut self, tag: &str, r: &TaskReason, typed: bool) {
        self.open(tag, typed.then(|| reason_type(r)));
        match r {
            TaskReason::User { user_name } => self.leaf("userName", None, user_name),
            TaskReason::System => {}
            TaskReason::Alarm {
                alarm_name,
                alarm,
                entity_name,
                entity,
            } => {
                self.leaf("entityName", None, entity_name);
                self.moref("entity", entity, false);
                self.leaf("alarmName", None, alarm_name);
                self.moref("alarm", alarm, false);
            }
            TaskReason::Schedule {
                name,
                scheduled_task,
            } => {
                self.leaf("name", None, name);
                self.moref("scheduledTask", scheduled_task, false);
            }
        }
        self.close(tag);
    }

    /// The fields of a fault (base `MethodFault` first, then the kind's).
    fn fault_fields(&mut self, f: &MethodFault) {
        if let Some(cause) = &f.fault_cause {
            self.localized_fault("faultCause", cause, None);
        }
        for m in &f.fault_message {
            self.message("faultMessage", m, None);
        }
        match &f.kind {
            FaultKind::ManagedObjectNotFound { obj } => self.moref("obj", obj, false),
            FaultKind::InvalidArgument { invalid_property } => {
                self.opt("invalidProperty", invalid_property)
            }
            FaultKind::SystemError { reason } => self.leaf("reason", None, reason),
            FaultKind::NoPermission {
                object,
                privilege_id,
            } => {
                if let Some(o) = object {
                    self.moref("object", o, false);
                }
                self.opt("privilegeId", privilege_id);
            }
            FaultKind::OutOfBounds { argument_name } => {
                self.leaf("argumentName", None, argument_name)
            }
            FaultKind::NotSupported
            | FaultKind::RequestCanceled
            | FaultKind::SecurityError
            | FaultKind::NotAuthenticated
            | FaultKind::InvalidState
            | FaultKind::Other { .. } => {}
        }
    }

    fn localized_fault(&mut self, tag: &str, f: &MethodFault, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.open("fault", Some(wire_type_name(f)));
        self.fault_fields(f);
        self.close("fault");
        self.leaf("localizedMessage", None, &f.message());
        self.close(tag);
    }

    fn task_info(&mut self, tag: &str, t: &TaskInfo, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.leaf("key", None, &t.key.to_string());
        self.moref("task", &t.task(), false);
        if let Some(d) = &t.description {
            self.message("description", d, None);
        }
        self.opt("name", &t.name);
        self.leaf("descriptionId", None, &t.description_id);
        if let Some(e) = &t.entity {
            self.moref("entity", e, false);
        }
        self.opt("entityName", &t.entity_name);
        for l in &t.locked {
            self.moref("locked", l, false);
        }
        self.leaf("state", None, t.state.as_str());
        self.leaf(
            "cancelled",
            None,
            if t.cancelled { "true" } else { "false" },
        );
        self.leaf(
            "cancelable",
            None,
            if t.cancelable { "true" } else { "false" },
        );
        if let Some(e) = &t.error {
            self.localized_fault("error", e, None);
        }
        if let Some(r) = &t.result {
            self.any("result", r);
        }
        if let Some(p) = t.progress {
            self.leaf("progress", None, &p.to_string());
        }
        for d in &t.progress_details {
            self.key_any_value("progressDetails", d);
        }
        self.reason("reason", &t.reason, true);
        self.time("queueTime", t.queue_time);
        if let Some(s) = t.start_time {
            self.time("startTime", s);
        }
        if let Some(c) = t.complete_time {
            self.time("completeTime", c);
        }
        self.leaf("eventChainId", None, &t.event_chain_id.to_string());
        self.opt("changeTag", &t.change_tag);
        self.opt("parentTaskKey", &t.parent_task_key);
        self.opt("rootTaskKey", &t.root_task_key);
        self.opt("activationId", &t.activation_id);
        self.close(tag);
    }

    fn service_content(&mut self, tag: &str, a: &About, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.moref(
            "rootFolder",
            &MoRef::new("Folder", crate::ROOT_FOLDER),
            false,
        );
        self.moref(
            "propertyCollector",
            &MoRef::new("PropertyCollector", crate::PROPERTY_COLLECTOR),
            false,
        );
        self.open("about", None);
        self.leaf("name", None, "vtask");
        self.leaf(
            "fullName",
            None,
            &format!("vtask {} (replicated vim.Task service)", a.version),
        );
        self.leaf("vendor", None, "vtask");
        self.leaf("version", None, &a.version);
        self.leaf("build", None, &a.build);
        self.leaf("localeVersion", None, "INTL");
        self.leaf("localeBuild", None, "000");
        self.leaf("osType", None, "linux-x64");
        self.leaf("productLineId", None, "vtask");
        self.leaf("apiType", None, "VirtualCenter");
        self.leaf("apiVersion", None, &a.api_version);
        self.leaf("instanceUuid", None, &a.instance_uuid);
        self.close("about");
        self.moref(
            "sessionManager",
            &MoRef::new("SessionManager", crate::SESSION_MANAGER),
            false,
        );
        self.moref(
            "taskManager",
            &MoRef::new("TaskManager", crate::TASK_MANAGER),
            false,
        );
        self.close(tag);
    }

    fn user_session(&mut self, tag: &str, s: &UserSession, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.leaf("key", None, &s.key);
        self.leaf("userName", None, &s.user_name);
        self.leaf("fullName", None, &s.user_name);
        self.time("loginTime", s.login_time);
        self.time("lastActiveTime", s.login_time);
        self.leaf("locale", None, "en");
        self.leaf("messageLocale", None, "en");
        self.leaf("extensionSession", None, "false");
        self.close(tag);
    }

    fn update_set(&mut self, tag: &str, u: &UpdateSet, xsi: Option<&str>) {
        self.open(tag, xsi);
        self.leaf("version", None, &u.version);
        for f in &u.filters {
            self.open("filterSet", None);
            self.moref("filter", &f.filter, false);
            for o in &f.objects {
                self.open("objectSet", None);
                self.leaf(
                    "kind",
                    None,
                    match o.kind {
                        UpdateKind::Enter => "enter",
                        UpdateKind::Modify => "modify",
                        UpdateKind::Leave => "leave",
                    },
                );
                self.moref("obj", &o.obj, false);
                for (name, val) in &o.changes {
                    self.open("changeSet", None);
                    self.leaf("name", None, name);
                    self.leaf("op", None, "assign");
                    if let Some(v) = val {
                        self.val("val", v, true);
                    }
                    self.close("changeSet");
                }
                self.close("objectSet");
            }
            self.close("filterSet");
        }
        self.leaf("truncated", None, "false");
        self.close(tag);
    }

    fn object_content(&mut self, tag: &str, o: &ObjectContent) {
        self.open(tag, None);
        self.moref("obj", &o.obj, false);
        for (name, val) in &o.props {
            self.open("propSet", None);
            self.leaf("name", None, name);
            self.val("val", val, true);
            self.close("propSet");
        }
        self.close(tag);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// The fault's type name as an XML name; a name that is none (a gRPC
/// client may have stored anything) goes out as `MethodFault`.
fn wire_type_name(f: &MethodFault) -> &str {
    let name = f.kind.type_name();
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        name
    } else {
        "MethodFault"
    }
}

/// What a method returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Returns {
    Nothing,
    One(Val),
    /// An array result: one `returnval` per element.
    Many(Vec<Val>),
}

/// The response envelope of `method`.
pub fn response(method: &str, returns: &Returns) -> String {
    let mut w = Writer::default();
    w.0.push_str(ENVELOPE_START);
    w.0.push('<');
    w.0.push_str(method);
    w.0.push_str("Response xmlns=\"urn:vim25\">");
    match returns {
        Returns::Nothing => {}
        Returns::One(v) => w.val("returnval", v, true),
        Returns::Many(vs) => {
            for v in vs {
                w.val("returnval", v, true);
            }
        }
    }
    w.0.push_str("</");
    w.0.push_str(method);
    w.0.push_str("Response>");
    w.0.push_str(ENVELOPE_END);
    w.0
}

/// A SOAP fault whose detail is the typed fault (`<InvalidStateFault
/// xsi:type="InvalidState">`), sent with HTTP status 500.
pub fn fault(f: &MethodFault) -> String {
    let mut w = Writer::default();
    w.0.push_str(ENVELOPE_START);
    w.0.push_str("<soapenv:Fault><faultcode>ServerFaultCode</faultcode>");
    w.leaf("faultstring", None, &f.message());
    w.0.push_str("<detail>");
    let tag = format!("{}Fault", wire_type_name(f));
    w.0.push('<');
    w.0.push_str(&tag);
    w.0.push_str(" xmlns=\"urn:vim25\" xsi:type=\"");
    w.0.push_str(wire_type_name(f));
    w.0.push_str("\">");
    w.fault_fields(f);
    w.close(&tag);
    w.0.push_str("</detail></soapenv:Fault>");
    w.0.push_str(ENVELOPE_END);
    w.0
}
