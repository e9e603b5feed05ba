//! The writer's queue: groups of records waiting for the appender, and
//! the groups it has written, kept for the threads that queued them to
//! drop (see [`Spent`]).

use std::collections::VecDeque;
use std::thread::ThreadId;

use crate::journal::record::Record;
use crate::journal::writer::OnDurable;

/// Written records kept for their producers to drop, at most (beyond it,
/// or for more than [`SPENT_OWNERS_MAX`] producers, the appender drops
/// them itself).
const SPENT_RECORDS_MAX: usize = 8192;
const SPENT_OWNERS_MAX: usize = 16;
/// An appender idle this long drops the written records itself: a
/// producer that stopped appending would otherwise keep their card data
/// in RAM until it appends again.
pub(super) const SPENT_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// A group waiting for the appender.
pub(super) struct Group {
    pub records: Vec<Record>,
    pub ack: OnDurable,
    /// The thread that queued it, which gets the records back to drop.
    pub owner: ThreadId,
}

/// Groups written, for the thread that made them to drop at its next
/// append: a record's texts were allocated there, and a free on the
/// allocating thread is a local one, where the appender's was a
/// cross-thread free (an atomic push the owner must collect later), about
/// an eighth of the appender's time. Their card data stays in RAM until
/// then (zeroized on drop as ever), bounded by [`SPENT_RECORDS_MAX`].
struct Spent {
    owner: ThreadId,
    groups: Vec<Vec<Record>>,
    records: usize,
}

#[derive(Default)]
pub(super) struct Queue {
    pub groups: VecDeque<Group>,
    pub records: usize,
    pub closed: bool,
    /// Who waits, so a notification (a system call) is made only then.
    pub appender_waiting: bool,
    pub producers_waiting: usize,
    spent: Vec<Spent>,
    spent_records: usize,
}

impl Queue {
    /// The groups written that `owner` queued, taken out.
    pub fn take_spent(&mut self, owner: ThreadId) -> Vec<Vec<Record>> {
        match self.spent.iter_mut().find(|s| s.owner == owner) {
            Some(s) if s.records > 0 => {
                self.spent_records -= std::mem::take(&mut s.records);
                std::mem::take(&mut s.groups)
            }
            _ => Vec::new(),
        }
    }

    /// Every group written, taken out (for an idle appender to drop).
    pub fn take_all_spent(&mut self) -> Vec<Vec<Record>> {
        self.spent_records = 0;
        self.spent
            .iter_mut()
            .flat_map(|s| {
                s.records = 0;
                std::mem::take(&mut s.groups)
            })
            .collect()
    }

    /// Keeps `records` for `owner` to drop; gives them back when over the
    /// bounds (the caller drops them).
    pub fn keep_spent(&mut self, owner: ThreadId, records: Vec<Record>) -> Option<Vec<Record>> {
        if self.spent_records + records.len() > SPENT_RECORDS_MAX {
            return Some(records);
        }
        let slot = match self.spent.iter().position(|s| s.owner == owner) {
            Some(i) => i,
            None if self.spent.len() < SPENT_OWNERS_MAX => {
                self.spent.push(Spent {
                    owner,
                    groups: Vec::new(),
                    records: 0,
                });
                self.spent.len() - 1
            }
            None => return Some(records),
        };
        self.spent_records += records.len();
        self.spent[slot].records += records.len();
        self.spent[slot].groups.push(records);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Record> {
        (0..n as u64)
            .map(|id| Record::SafAttempted { id, attempts: 1 })
            .collect()
    }

    #[test]
    fn spent_groups_go_back_to_their_owner_within_bounds() {
        let me = std::thread::current().id();
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let mut q = Queue::default();
        assert!(q.keep_spent(me, records(3)).is_none());
        assert!(q.keep_spent(other, records(2)).is_none());
        assert!(q.keep_spent(me, records(1)).is_none());
        assert_eq!(q.spent_records, 6);
        let mine = q.take_spent(me);
        assert_eq!(mine.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        assert!(q.take_spent(me).is_empty());
        assert_eq!(q.spent_records, 2);
        // Over the bound the appender keeps (and drops) them itself.
        let over = q.keep_spent(me, records(SPENT_RECORDS_MAX));
        assert_eq!(over.map(|r| r.len()), Some(SPENT_RECORDS_MAX));
        assert_eq!(q.take_spent(other).len(), 1);
        assert_eq!(q.spent_records, 0);
        // An idle appender takes every owner's.
        assert!(q.keep_spent(me, records(1)).is_none());
        assert!(q.keep_spent(other, records(2)).is_none());
        assert_eq!(q.take_all_spent().len(), 2);
        assert_eq!(q.spent_records, 0);
        assert!(q.take_spent(me).is_empty() && q.take_spent(other).is_empty());
    }
}
