//! Docker Swarm on AWS: the library shared by the lifecycle processor, the node bootstrap and
//! the test bed.
//!
//! - [`event`]: one parser from an SQS message body to a typed lifecycle event;
//! - [`ids`]: validated newtypes for instance ids, group and hook names, action tokens.

pub mod event;
pub mod ids;
mod text;
