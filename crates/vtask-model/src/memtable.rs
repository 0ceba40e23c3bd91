//! An in-memory [`TaskTable`]: the sequential specification that tests and
//! the linearizability checker run commands against.

use std::collections::BTreeMap;

use crate::apply::apply;
use crate::collector::{Collector, CollectorId};
use crate::command::{Caller, Change, Command, Counters, EntryContext, Outcome, Task, TaskTable};
use crate::types::TaskKey;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemTable {
    tasks: BTreeMap<TaskKey, Task>,
    collectors: BTreeMap<CollectorId, Collector>,
    counters: Counters,
}

impl MemTable {
    pub fn new() -> MemTable {
        MemTable::default()
    }

    /// Applies `command` and keeps its changes; returns the reply.
    pub fn apply(&mut self, caller: &Caller, command: &Command, ctx: &EntryContext) -> Outcome {
        let applied = apply(self, caller, command, ctx);
        self.write(applied.changes, applied.counters);
        applied.outcome
    }

    /// Writes changes computed by [`apply`].
    pub fn write(&mut self, changes: Vec<Change>, counters: Counters) {
        for change in changes {
            match change {
                Change::Put { after, .. } => {
                    self.tasks.insert(after.info.key, after);
                }
                Change::Remove { task } => {
                    self.tasks.remove(&task.info.key);
                }
                Change::PutCollector(collector) => {
                    self.collectors.insert(collector.id, collector);
                }
                Change::RemoveCollector(id) => {
                    self.collectors.remove(&id);
                }
            }
        }
        self.counters = counters;
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    pub fn get(&self, key: TaskKey) -> Option<&Task> {
        self.tasks.get(&key)
    }
}

impl TaskTable for MemTable {
    fn task(&self, key: TaskKey) -> Option<Task> {
        self.tasks.get(&key).cloned()
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn scan(&self, from: TaskKey, ascending: bool, visit: &mut dyn FnMut(&Task) -> bool) {
        if ascending {
            for task in self.tasks.range(from..).map(|(_, t)| t) {
                if !visit(task) {
                    return;
                }
            }
        } else {
            for task in self.tasks.range(..=from).rev().map(|(_, t)| t) {
                if !visit(task) {
                    return;
                }
            }
        }
    }

    fn collector(&self, id: CollectorId) -> Option<Collector> {
        self.collectors.get(&id).cloned()
    }

    fn collectors(&self) -> Vec<Collector> {
        self.collectors.values().cloned().collect()
    }
}
