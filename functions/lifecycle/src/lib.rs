//! The lifecycle event processor. This crate holds its two fronts (an AWS Lambda handler and
//! the long-polling `serve` consumer) over the shared drain logic of `swarm-aws`.
//!
//! So far: the configuration ([`config`]) and the parsing front ([`triage`]) that decides,
//! for every SQS message, whether it is acknowledged, processed or kept for the dead-letter
//! queue.

pub mod config;
pub mod triage;
