//! Is each task's history linearizable with `vtask_model::apply` as the
//! sequential specification?
//!
//! Tasks are independent objects: no call reads or changes two tasks (the
//! parent lookup of a create is the one exception, see below). A history is
//! linearizable iff each per-task sub-history is (P-compositionality), so we
//! partition by task key and search each part on its own, which keeps the
//! search small. A CreateTask belongs to the key it returned; the workload
//! addresses only keys that acknowledged creates returned, so every part
//! starts from "no such task" and holds its create.
//!
//! The search is Wing & Gong's, with Lowe's memoisation: depth first, the
//! next operation to linearize is any pending one invoked before the
//! earliest completion among the acknowledged ones still pending; a
//! configuration (set of linearized operations, model state) that was
//! already explored is not explored again. An operation with an unknown
//! outcome completes at +∞ and may also never take effect, so it is never
//! required and its reply is not compared.
//!
//! The model applies each call to a [`MemTable`] holding just this task, at
//! the call's invocation time. Times and the chain id the real leader chose
//! cannot be predicted, so replies are compared on [`TaskView`] (see
//! [`crate::projection`] for the fields). Two values the server decides once
//! at create are taken from the create's reply instead of predicted: the key
//! (the model's counter is set just below it) and `rootTaskKey`, which depends
//! on the parent task's own root, another task that this part does not hold;
//! later replies must keep both unchanged.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use vtask_model::{
    lookup, Change, Command, Counters, EntryContext, MemTable, Reply, Task, TaskKey, Timestamp,
};

use crate::history::{Call, OpOutcome, Operation, OperationLine, Returned};
use crate::projection::{Observed, TaskView};

/// Limits that keep a pathological history from running forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckConfig {
    /// Configurations one task's search may explore before it gives up and
    /// reports the task as inconclusive rather than guess.
    pub max_configurations: usize,
    /// Candidate sub-histories one shrink may try. Past it, the smallest
    /// failing sub-history found so far is reported.
    #[serde(default = "default_shrink_attempts")]
    pub max_shrink_attempts: usize,
}

fn default_shrink_attempts() -> usize {
    5_000
}

impl Default for CheckConfig {
    fn default() -> CheckConfig {
        CheckConfig {
            max_configurations: 2_000_000,
            max_shrink_attempts: default_shrink_attempts(),
        }
    }
}

/// The operations of one task, ordered by invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskHistory {
    /// The key as the calls spelled it.
    pub task: String,
    pub operations: Vec<Operation>,
}

/// A history split by task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partition {
    pub tasks: Vec<TaskHistory>,
    /// Answered creates that returned a fault: no task to attribute them to,
    /// checked on their own by [`unexplained_create_fault`].
    pub create_faults: Vec<Operation>,
    /// Creates with an unknown outcome. If one took effect, its task is one
    /// no client ever addressed, so it constrains nothing.
    pub unattributed_creates: usize,
}

/// Splits `operations` by task. Failed calls (known not applied) and reads
/// with an unknown outcome (no effect, nothing to compare) are dropped.
pub fn partition(operations: &[Operation]) -> Partition {
    let mut tasks: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    let mut result = Partition::default();
    for op in operations {
        let task = match (&op.call, &op.outcome) {
            (_, OpOutcome::Failed) | (Call::GetTask { .. }, OpOutcome::Unknown) => continue,
            (call, outcome) if call.is_create() => match outcome {
                OpOutcome::Ok {
                    value: Returned::Task(info),
                } => info.key.to_string(),
                OpOutcome::Ok {
                    value: Returned::Fault(_),
                } => {
                    result.create_faults.push(op.clone());
                    continue;
                }
                OpOutcome::Unknown | OpOutcome::Failed => {
                    result.unattributed_creates += 1;
                    continue;
                }
            },
            (call, _) => match call.task() {
                Some(task) => task.to_string(),
                // History::validate refuses the leader's own commands.
                None => continue,
            },
        };
        tasks.entry(task).or_default().push(op.clone());
    }
    result.tasks = tasks
        .into_iter()
        .map(|(task, mut operations)| {
            operations.sort_by_key(|op| op.invoke);
            TaskHistory { task, operations }
        })
        .collect();
    result
}

/// The result of one task's search.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Stuck),
    /// The search hit [`CheckConfig::max_configurations`].
    Inconclusive {
        explored: usize,
    },
}

/// Where the search got furthest before every order failed: the longest
/// order of operations the model accepts, the state it leaves, and what the
/// model would have answered to each operation that could come next.
#[derive(Clone, Debug, PartialEq)]
pub struct Stuck {
    /// Indices into [`TaskHistory::operations`], in linearization order.
    pub order: Vec<usize>,
    pub state: Option<TaskView>,
    pub next: Vec<(usize, Observed)>,
    /// The operation the search could not get past: of the acknowledged
    /// ones still pending there, the one that completed first, so the one
    /// that had to come next at the latest.
    pub culprit: usize,
}

/// Searches one task's history.
pub fn check_task(history: &TaskHistory, config: &CheckConfig) -> Verdict {
    let entries = entries(&history.operations);
    let key = TaskKey::parse(&history.task);
    Search {
        key,
        entries: &entries,
        config,
    }
    .run()
}

/// A small sub-history that fails the same way: no single operation can be
/// removed while it still fails for the same reason.
///
/// "The same reason" matters. Dropping the SetTaskState(running) in front of
/// a stale read also fails, but only because the read's reply no longer has
/// any explanation, which hides the real anomaly. So the search must keep
/// getting stuck on the same operation (the [`Stuck::culprit`]), and when the
/// culprit's reply is explained by the other operations in some order, just
/// not in real-time order (a stale read, a lost write), every smaller
/// sub-history must keep that property. When no order explains it at all (a
/// wrong fault, a doubled effect), the model must keep predicting the same
/// answer for it where it gets stuck, so the calls that led the task to that
/// state stay. Creates are never removed. Returns `history` itself if it does
/// not fail.
pub fn shrink(history: &TaskHistory, config: &CheckConfig) -> TaskHistory {
    let sub = |kept: &[usize]| TaskHistory {
        task: history.task.clone(),
        operations: kept
            .iter()
            .filter_map(|&i| history.operations.get(i).cloned())
            .collect(),
    };
    // The operation the search gets stuck on, and what the model would
    // have answered it there.
    let failure = |kept: &[usize]| match check_task(&sub(kept), config) {
        Verdict::NotLinearizable(stuck) => {
            let predicted = stuck
                .next
                .iter()
                .find(|(i, _)| *i == stuck.culprit)
                .map(|(_, o)| o.clone());
            kept.get(stuck.culprit).map(|&c| (c, predicted))
        }
        Verdict::Linearizable | Verdict::Inconclusive { .. } => None,
    };
    let mut kept: Vec<usize> = (0..history.operations.len()).collect();
    let Some((culprit, predicted)) = failure(&kept) else {
        return history.clone();
    };
    // The same history with the culprit free to take effect at any time.
    let explained = |kept: &[usize]| {
        let mut relaxed = sub(kept);
        if let Some(pos) = kept.iter().position(|&i| i == culprit) {
            if let Some(op) = relaxed.operations.get_mut(pos) {
                op.invoke = 0;
                op.complete = u64::MAX;
            }
            relaxed.operations.sort_by_key(|op| op.invoke);
        }
        check_task(&relaxed, config) == Verdict::Linearizable
    };
    let ordering_anomaly = explained(&kept);
    let fails_alike = |kept: &[usize]| match failure(kept) {
        Some((c, p)) if c == culprit => {
            if ordering_anomaly {
                explained(kept)
            } else {
                p == predicted
            }
        }
        Some(_) | None => false,
    };
    let removable = |i: usize| {
        i != culprit
            && !history
                .operations
                .get(i)
                .is_some_and(|op| op.call.is_create())
    };
    // Delta debugging: drop big chunks first, then smaller ones, down to
    // single operations, until no removal keeps the failure.
    let mut chunk = (kept.len() / 2).max(1);
    let mut attempts = 0usize;
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < kept.len() {
            attempts += 1;
            if attempts > config.max_shrink_attempts {
                return sub(&kept);
            }
            let end = (start + chunk).min(kept.len());
            let candidate: Vec<usize> = kept
                .iter()
                .enumerate()
                .filter(|&(pos, &i)| !(start..end).contains(&pos) || !removable(i))
                .map(|(_, &i)| i)
                .collect();
            if candidate.len() < kept.len() && fails_alike(&candidate) {
                kept = candidate;
                removed_any = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = (chunk / 2).max(1);
        }
        chunk = chunk.min((kept.len() / 2).max(1));
    }
    sub(&kept)
}

/// For an answered create that returned a fault: the model's answer if it
/// differs. Create faults (authorization, validation) depend on the call
/// alone, so an empty table predicts them.
pub fn unexplained_create_fault(op: &Operation) -> Option<Observed> {
    let (
        Call::Mutation { caller, command },
        OpOutcome::Ok {
            value: returned @ Returned::Fault(_),
        },
    ) = (&op.call, &op.outcome)
    else {
        return None;
    };
    let mut table = MemTable::new();
    let predicted = observed(&table.apply(caller, command, &context(op)));
    (predicted != Observed::from(returned)).then_some(predicted)
}

/// One operation of the search.
struct Entry<'a> {
    /// Index in [`TaskHistory::operations`].
    index: usize,
    op: &'a Operation,
    /// +∞ for an unknown outcome.
    complete: u64,
    /// `None`: unknown outcome, optional and not compared.
    expected: Option<Observed>,
}

fn entries(operations: &[Operation]) -> Vec<Entry<'_>> {
    operations
        .iter()
        .enumerate()
        .filter_map(|(index, op)| match &op.outcome {
            OpOutcome::Ok { value } => Some(Entry {
                index,
                op,
                complete: op.complete,
                expected: Some(Observed::from(value)),
            }),
            OpOutcome::Unknown if !matches!(op.call, Call::GetTask { .. }) => Some(Entry {
                index,
                op,
                complete: u64::MAX,
                expected: None,
            }),
            OpOutcome::Unknown | OpOutcome::Failed => None,
        })
        .collect()
}

struct Search<'a> {
    key: Option<TaskKey>,
    entries: &'a [Entry<'a>],
    config: &'a CheckConfig,
}

struct Frame {
    linearized: Bits,
    state: Option<Task>,
    candidates: Vec<usize>,
    next: usize,
    /// The entry this frame linearized last; `None` for the first frame.
    chosen: Option<usize>,
    required_done: usize,
}

/// How far the search got: the order and the configuration it reached.
struct Furthest {
    required_done: usize,
    order: Vec<usize>,
    linearized: Bits,
    state: Option<Task>,
}

impl Search<'_> {
    fn run(&self) -> Verdict {
        let required = self.entries.iter().filter(|e| e.expected.is_some()).count();
        let start = Bits::new(self.entries.len());
        let mut furthest = Furthest {
            required_done: 0,
            order: Vec::new(),
            linearized: start.clone(),
            state: None,
        };
        let mut stack = vec![Frame {
            candidates: self.candidates(&start),
            linearized: start,
            state: None,
            next: 0,
            chosen: None,
            required_done: 0,
        }];
        let mut seen: HashSet<(Bits, String)> = HashSet::new();
        let mut explored = 0usize;
        while let Some(top) = stack.last_mut() {
            if top.required_done == required {
                return Verdict::Linearizable;
            }
            let Some(&candidate) = top.candidates.get(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            let entry = &self.entries[candidate];
            let (answer, after) = self.step(&top.state, entry);
            match &entry.expected {
                Some(expected) if *expected != answer => continue,
                Some(_) => {}
                // An unknown call that changes nothing is the same as one
                // that never happened; trying both only doubles the work.
                None if view(&after) == view(&top.state) => continue,
                None => {}
            }
            let mut linearized = top.linearized.clone();
            linearized.set(candidate);
            if !seen.insert((linearized.clone(), state_key(&after))) {
                continue;
            }
            explored += 1;
            if explored > self.config.max_configurations {
                return Verdict::Inconclusive { explored };
            }
            let required_done = top.required_done + usize::from(entry.expected.is_some());
            let frame = Frame {
                candidates: self.candidates(&linearized),
                linearized,
                state: after,
                next: 0,
                chosen: Some(candidate),
                required_done,
            };
            if required_done > furthest.required_done {
                furthest = Furthest {
                    required_done,
                    order: stack
                        .iter()
                        .filter_map(|f| f.chosen)
                        .chain([candidate])
                        .collect(),
                    linearized: frame.linearized.clone(),
                    state: frame.state.clone(),
                };
            }
            stack.push(frame);
        }
        Verdict::NotLinearizable(self.stuck(furthest))
    }

    /// The pending entries that may be linearized next: those invoked no
    /// later than the earliest completion of a pending acknowledged entry.
    fn candidates(&self, linearized: &Bits) -> Vec<usize> {
        let pending = || (0..self.entries.len()).filter(|&i| !linearized.get(i));
        let deadline = pending()
            .filter(|&i| self.entries[i].expected.is_some())
            .map(|i| self.entries[i].complete)
            .min()
            .unwrap_or(u64::MAX);
        pending()
            .filter(|&i| self.entries[i].op.invoke <= deadline)
            .collect()
    }

    fn step(&self, state: &Option<Task>, entry: &Entry<'_>) -> (Observed, Option<Task>) {
        let op = entry.op;
        let mut counters = Counters {
            last_task: state
                .as_ref()
                .map(|t| t.info.key.0)
                .or(self.key.map(|k| k.0.saturating_sub(1)))
                .unwrap_or(0),
            ..Counters::default()
        };
        let mut table = MemTable::new();
        let seed = state
            .iter()
            .map(|task| Change::Put {
                before: None,
                after: task.clone(),
            })
            .collect();
        match &op.call {
            Call::GetTask { task } => {
                table.write(seed, counters);
                let answer = match lookup(&table, task) {
                    Ok(task) => Observed::Task(TaskView::from(&task.info)),
                    Err(fault) => Observed::Fault(fault.kind.type_name().to_string()),
                };
                (answer, state.clone())
            }
            Call::Mutation { caller, command } => {
                let created = created_task(op);
                if let (None, Some(info)) = (state, created) {
                    counters.last_task = info.key.0.saturating_sub(1);
                }
                table.write(seed, counters);
                let reply = table.apply(caller, command, &context(op));
                let mut after = self.key.and_then(|k| table.get(k).cloned());
                let mut answer = observed(&reply);
                if let (Command::CreateTask(args), Some(info), Ok(_), Some(task)) =
                    (command, created, &reply, after.as_mut())
                {
                    if args.parent_task_key.is_some() && task.info.key == info.key {
                        task.info.root_task_key = info.root_task_key.clone();
                        answer = Observed::Task(TaskView::from(&task.info));
                    }
                }
                (answer, after)
            }
        }
    }

    fn stuck(&self, furthest: Furthest) -> Stuck {
        let next: Vec<(usize, Observed)> = self
            .candidates(&furthest.linearized)
            .into_iter()
            .map(|i| (i, self.step(&furthest.state, &self.entries[i]).0))
            .collect();
        let culprit = (0..self.entries.len())
            .filter(|&i| !furthest.linearized.get(i) && self.entries[i].expected.is_some())
            .min_by_key(|&i| self.entries[i].complete)
            .unwrap_or(0);
        let index_of = |entry: usize| self.position(entry);
        Stuck {
            culprit: index_of(culprit),
            order: furthest.order.iter().map(|&e| index_of(e)).collect(),
            state: view(&furthest.state),
            next: next.into_iter().map(|(e, o)| (index_of(e), o)).collect(),
        }
    }

    /// The entry's index among the task history's operations.
    fn position(&self, entry: usize) -> usize {
        self.entries.get(entry).map_or(entry, |e| e.index)
    }
}

fn created_task(op: &Operation) -> Option<&vtask_model::TaskInfo> {
    match (&op.call, &op.outcome) {
        (
            call,
            OpOutcome::Ok {
                value: Returned::Task(info),
            },
        ) if call.is_create() => Some(info),
        _ => None,
    }
}

/// The model applies a call at its invocation time; the replies' times are
/// not compared, so any time would do, and this one keeps them in order.
fn context(op: &Operation) -> EntryContext {
    EntryContext {
        time: Timestamp::from_micros(i64::try_from(op.invoke / 1000).unwrap_or(i64::MAX)),
        term: 1,
        index: 1,
    }
}

fn observed(reply: &vtask_model::Outcome) -> Observed {
    match reply {
        Ok(Reply::Task { info }) => Observed::Task(TaskView::from(info)),
        // Only the leader's own commands answer otherwise; validate refuses them.
        Ok(_) => Observed::Fault("(not a task reply)".to_string()),
        Err(fault) => Observed::Fault(fault.kind.type_name().to_string()),
    }
}

fn view(state: &Option<Task>) -> Option<TaskView> {
    state.as_ref().map(|task| TaskView::from(&task.info))
}

/// The model state as a hashable value. The projection is enough: apply's
/// decisions read state, cancelled and cancelable, never a time (the lease
/// rules do, but LapseLease is the leader's own call, not a client's).
fn state_key(state: &Option<Task>) -> String {
    serde_json::to_string(&view(state)).unwrap_or_default()
}

/// A fixed-size set of entry indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// The sub-history of a stuck search, readable: the operations, then the
/// furthest order the model accepts and what it would answer next.
pub struct StuckText<'a> {
    pub history: &'a TaskHistory,
    pub stuck: &'a Stuck,
    pub origin: u64,
}

impl fmt::Display for StuckText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops = &self.history.operations;
        let line = |i: usize| {
            ops.get(i).map(|op| OperationLine {
                op,
                origin: self.origin,
            })
        };
        let state = match &self.stuck.state {
            Some(view) => view.to_string(),
            None => "no task".to_string(),
        };
        writeln!(
            f,
            "the model accepts at most {} of these in order, reaching {state}:",
            self.stuck.order.len()
        )?;
        for &i in &self.stuck.order {
            if let Some(line) = line(i) {
                writeln!(f, "  {line}")?;
            }
        }
        writeln!(f, "and then none of these fits:")?;
        for (i, predicted) in &self.stuck.next {
            if let Some(line) = line(*i) {
                let mark = if *i == self.stuck.culprit {
                    "  ← due first"
                } else {
                    ""
                };
                writeln!(f, "  {line}    (model: {predicted}){mark}")?;
                let observed = ops.get(*i).and_then(|op| match &op.outcome {
                    OpOutcome::Ok { value } => Some(Observed::from(value)),
                    OpOutcome::Failed | OpOutcome::Unknown => None,
                });
                if let (Some(Observed::Task(got)), Observed::Task(want)) = (observed, predicted) {
                    if got.to_string() == want.to_string() {
                        for difference in got.differences(want) {
                            writeln!(f, "      {difference}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
