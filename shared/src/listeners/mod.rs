//! The listener sync, sans IO: from the ports the swarm's services publish and what the
//! stack's Network Load Balancer has, to the changes that make every published port
//! reachable through it (the original Docker for AWS's `l4controller`, on an NLB).
//!
//! Level-triggered like [`crate::drain`]: [`decide`] never knows what it decided before. It
//! touches only what the sync made (tagged), refuses the stack's own ports and says why,
//! says when a limit is reached, and leaves a service whose certificate label it cannot read
//! as it is, naming it.

mod decide;
pub mod label;
mod observation;
pub mod read;

pub use decide::{Action, Plan, Refusal, STACK_PORTS, decide};
pub use observation::{
    CertificateLabel, Listener, ListenerProtocol, Observation, Published, Publishing, TargetGroup,
    Transport,
};

#[cfg(test)]
mod tests;
