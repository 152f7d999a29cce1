//! The membership sweep, sans IO: from one look at the swarm's nodes and the stack's
//! instances to the actions that heal the membership, each with its reason.
//!
//! Lifecycle hooks cover the losses Auto Scaling announces. The sweep covers the others: an
//! instance terminated through EC2, a hook that timed out while the processor was down, a Spot
//! reclaim that outran its hook, a lost zone, a daemon that died on an instance still in
//! service. Swarm never removes a dead member by itself, and every dead manager left in Raft
//! brings the swarm one step closer to losing its quorum.
//!
//! Level-triggered like [`crate::drain`]: [`decide`] never knows what it decided before.
//! Manager changes are taken one at a time, each on a fresh look, because each one changes
//! the majority the next one is judged by; every action is idempotent, so two sweeps at once,
//! or a sweep beside a drain of the same node, do no harm.

mod decide;
mod observation;

pub use decide::{Action, Held, Plan, decide};
pub use observation::{
    GroupInstance, GroupLifecycle, GroupMember, Outside, SweepNode, SweepObservation, SweepPolicy,
};

#[cfg(test)]
mod tests;
