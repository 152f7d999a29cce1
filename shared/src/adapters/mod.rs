//! The adapters: the [`crate::ports`] over the real APIs, one file each. The only place in the
//! library that imports bollard or an AWS SDK.

pub mod autoscaling;
pub mod balancer;
pub mod cloudformation;
pub mod docker;
pub mod dynamodb;
pub mod engine;
pub mod engine_json;
pub mod mutual_tls;
pub mod secrets;
pub mod sqs;
