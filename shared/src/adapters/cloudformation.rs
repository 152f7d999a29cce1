//! The node's signal to CloudFormation that it joined the swarm (or could not), with
//! `aws-sdk-cloudformation`: what a group's `CreationPolicy` and its rolling update's
//! `WaitOnResourceSignals` wait for.

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::ResourceSignalStatus;

use crate::error::Error;

/// Signals `SignalResource` for the resource `resource` (an Auto Scaling group's logical id)
/// of `stack`, from the instance `instance_id`.
pub async fn signal(
    client: &Client,
    stack: &str,
    resource: &str,
    instance_id: &str,
    success: bool,
) -> Result<(), Error> {
    client
        .signal_resource()
        .stack_name(stack)
        .logical_resource_id(resource)
        .unique_id(instance_id)
        .status(if success {
            ResourceSignalStatus::Success
        } else {
            ResourceSignalStatus::Failure
        })
        .send()
        .await
        .map_err(|e| Error::CloudFormation {
            call: "SignalResource",
            source: crate::error::sdk_cause(e),
        })?;
    Ok(())
}
