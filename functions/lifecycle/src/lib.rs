//! The lifecycle event processor: its two fronts (an AWS Lambda handler, [`lambda`], and the
//! long-polling consumer, [`serve`]) over one core, [`processor`], which drives each lifecycle
//! action through the drain state machine of `swarm-aws`.
//!
//! - [`config`]: the settings, from the environment, checked at start;
//! - [`triage`]: from one SQS message to what is done with it (acknowledge, act, keep for the
//!   dead-letter queue);
//! - [`sweep`]: the membership sweep, which heals the swarm after losses no hook announced;
//! - [`listeners`]: the listener sync, which keeps the stack's Network Load Balancer in step
//!   with the ports the services publish;
//! - [`spot`]: a Spot notice drains its instance's node at once, ahead of any hook;
//! - [`metrics`]: what it reports, one definition for both fronts (Prometheus text in
//!   `serve`, on [`metrics_port`]; CloudWatch Embedded Metric Format in Lambda).

pub mod config;
#[cfg(test)]
mod fakes;
pub mod lambda;
pub mod listeners;
pub mod metrics;
pub mod metrics_port;
pub mod processor;
pub mod serve;
pub mod spot;
pub mod sweep;
pub mod triage;
