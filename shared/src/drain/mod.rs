//! The drain state machine, sans IO: from what the processor observed of one lifecycle
//! action (Auto Scaling's view of the instance, the swarm's view of its node, the node's
//! tasks, the services it served, the managers) to the one next step, with its reason.
//!
//! Level-triggered: [`decide`] never knows why it is called or what it decided before; every
//! call re-reads the world, so a step may run twice, a message may come twice, a processor
//! may die and another pick up, and the next decision is still right. The adapters that
//! observe and act live in [`crate::adapters`]; the processor loop in `functions/lifecycle`.
//! What the Engine API's payloads mean is read in [`read`], pure, so the adapter only fetches;
//! the one reading of the whole swarm that every drain decides on is a [`snapshot::Snapshot`].

mod decide;
mod observation;
pub mod read;
pub mod snapshot;
pub mod surge;

pub use decide::{ActionResult, Step, WaitFor, decide};
pub use observation::{
    ActionStatus, Availability, NodeFacts, NodeRole, NodeState, Observation, ServiceFacts,
    ServiceMode, SwarmView, TaskFacts,
};

#[cfg(test)]
mod tests;
