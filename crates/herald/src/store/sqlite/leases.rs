//! This node's leases, held in memory. SQLite serves one node, so which deliveries have a call
//! in flight is this process's own knowledge: a lease written to the file would only ever be
//! cleared by the next start. Held here, a claim only reads the database, on a reading
//! connection, and costs the writer nothing; a record has one index fewer to change.
//!
//! A lease is taken by a claim once its read has chosen the delivery, and given back once the
//! call's record has committed (never before: a claim in between would see the delivery as
//! pending and due, and call it again). A claim copies the leases before it reads, so a lease
//! given back meanwhile only keeps it off a delivery it would not have found due anyway.
//!
//! Claims no longer wait behind the writer's transactions: one may read an endpoint as active
//! just before a record that suspends it commits, and start calls there, as a claim a moment
//! earlier would have; the suspension holds from the next claim on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::clock::Micros;

/// A leased delivery's endpoint (seq) and the lease's end, which tells one lease of a delivery
/// from a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    pub endpoint_seq: i64,
    pub until: Micros,
}

/// Every lease this process holds, by delivery id; claims take their turns (see
/// [`Leases::claiming`]).
#[derive(Default)]
pub(super) struct Leases {
    held: Mutex<HashMap<i64, Lease>>,
    /// Held through a whole claim, so that two claims never choose the same delivery. Records
    /// do not wait for it: a lease they give back during a claim only makes that claim leave
    /// the delivery alone, as it would have anyway.
    claiming: Mutex<()>,
}

impl Leases {
    /// Waits for any other claim to end; the claim holds the guard until it has taken its leases.
    pub fn claiming(&self) -> MutexGuard<'_, ()> {
        // Nothing is left half done under this lock, so one poisoned by a panic is still good.
        self.claiming.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The leases held now.
    pub fn snapshot(&self) -> HashMap<i64, Lease> {
        self.held().clone()
    }

    /// The lease held on `delivery`, if any.
    pub fn get(&self, delivery: i64) -> Option<Lease> {
        self.held().get(&delivery).copied()
    }

    pub fn take(&self, leases: impl IntoIterator<Item = (i64, Lease)>) {
        self.held().extend(leases);
    }

    /// Gives back `delivery`'s lease if it is still the one that ends at `until`.
    pub fn give_back(&self, delivery: i64, until: Micros) {
        let mut held = self.held();
        if held.get(&delivery).is_some_and(|lease| lease.until == until) {
            held.remove(&delivery);
        }
    }

    /// Gives back `delivery`'s lease, whichever it is.
    pub fn drop_lease(&self, delivery: i64) {
        self.held().remove(&delivery);
    }

    fn held(&self) -> MutexGuard<'_, HashMap<i64, Lease>> {
        // Each operation leaves the map whole, so one poisoned by a panic elsewhere is right.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_given_back_only_by_the_record_of_its_own_call() {
        let leases = Leases::default();
        let lease = |until| Lease { endpoint_seq: 7, until };
        leases.take([(1, lease(100)), (2, lease(100))]);
        leases.give_back(1, 90);
        assert_eq!(
            leases.get(1),
            Some(lease(100)),
            "an older lease's record leaves the new one"
        );
        leases.give_back(1, 100);
        assert_eq!(leases.get(1), None);
        leases.drop_lease(2);
        assert!(leases.snapshot().is_empty());
    }
}
