//! Docker Swarm on AWS: the library shared by the lifecycle processor, the node bootstrap and
//! the test bed.
//!
//! - [`event`]: one parser from an SQS message body to a typed lifecycle event;
//! - [`cluster`]: the cluster record the nodes find their swarm through;
//! - [`drain`]: the drain state machine, sans IO: from what was observed to the next step;
//! - [`sweep`]: the membership sweep, sans IO: from one look at the swarm and the groups to
//!   the actions that heal the membership after losses no hook announced;
//! - [`listeners`]: the listener sync, sans IO: from the published ports to the load
//!   balancer's listeners;
//! - [`pki`]: the certificates of the managers' Docker API (mutual TLS);
//! - [`ids`]: validated newtypes for instance ids, group and hook names, action tokens;
//! - [`batch`]: reads batched across callers (one Auto Scaling call for many drains);
//! - [`ports`]: the small traits the processor observes and acts through, and
//!   [`adapters`]: them over bollard and the AWS SDK; [`error`]: how those calls fail.

pub mod adapters;
pub mod batch;
pub mod calls;
pub mod cluster;
pub mod drain;
pub mod error;
pub mod event;
pub mod ids;
pub mod listeners;
pub mod pki;
pub mod ports;
pub mod sweep;
mod text;
