//! The Auto Scaling actions the emulator implements, with the validation and the error codes
//! and messages the API reference gives (and, for lifecycle actions, the words AWS answers:
//! "No active Lifecycle Action found with ...").

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;

use super::model::{
    Action, Ending, Group, Hook, HookResult, LaunchConfiguration, LifecycleState, State, Tag,
    Transition,
};
use super::query::Params;
use super::xml::{ApiError, Xml};
use super::{Emulator, model, notify};

/// Answers one request.
pub async fn handle(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let action = params.required("Action")?;
    match action {
        "CreateLaunchConfiguration" => create_launch_configuration(emulator, params),
        "DescribeLaunchConfigurations" => {
            Ok(describe_launch_configurations(&emulator.lock(), params))
        }
        "DeleteLaunchConfiguration" => delete_launch_configuration(emulator, params),
        "CreateAutoScalingGroup" => create_group(emulator, params),
        "UpdateAutoScalingGroup" => update_group(emulator, params),
        "SetDesiredCapacity" => set_desired_capacity(emulator, params),
        "DeleteAutoScalingGroup" => delete_group(emulator, params),
        "DescribeAutoScalingGroups" => Ok(describe_groups(&emulator.lock(), params)),
        "DescribeAutoScalingInstances" => Ok(describe_instances(&emulator.lock(), params)),
        "TerminateInstanceInAutoScalingGroup" => terminate_instance(emulator, params),
        "SetInstanceHealth" => set_instance_health(emulator, params),
        "AttachTrafficSources" => attach_traffic_sources(emulator, params),
        "DetachTrafficSources" => detach_traffic_sources(emulator, params),
        "DescribeTrafficSources" => describe_traffic_sources(&emulator.lock(), params),
        "PutLifecycleHook" => put_hook(emulator, params).await,
        "DescribeLifecycleHooks" => describe_hooks(&emulator.lock(), params),
        "DeleteLifecycleHook" => delete_hook(emulator, params),
        "CompleteLifecycleAction" => complete(emulator, params),
        "RecordLifecycleActionHeartbeat" => heartbeat(emulator, params),
        // CloudFormation's, for the rolling update: the same query protocol.
        "SignalResource" => signal_resource(emulator, params),
        other => Err(ApiError::new(
            "InvalidAction",
            format!(
                "The action {other} is not valid for this web service (the test bed's Auto Scaling emulator does not implement it)."
            ),
        )),
    }
}

/// `SignalResource` (CloudFormation): a node says it joined the swarm (or could not).
fn signal_resource(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let status = params.required("Status")?;
    let success = match status {
        "SUCCESS" => true,
        "FAILURE" => false,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [SUCCESS, FAILURE]"
            )));
        }
    };
    let signal = model::Signal {
        stack: params.required("StackName")?.to_owned(),
        resource: params.required("LogicalResourceId")?.to_owned(),
        unique_id: params.required("UniqueId")?.to_owned(),
        success,
        at: Utc::now(),
    };
    let mut state = emulator.lock();
    let group = signal.resource.clone();
    state.record(
        &group,
        Some(&signal.unique_id.clone()),
        format!("CloudFormation signal {status} for {}", signal.resource),
    );
    state.signals.push(signal);
    drop(state);
    emulator.changed.notify_waiters();
    Ok(Xml::default())
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn group_not_found(name: &str) -> ApiError {
    ApiError::validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
    ))
}

fn create_launch_configuration(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("LaunchConfigurationName")?;
    let mut state = emulator.lock();
    if state.launch_configurations.contains_key(name) {
        return Err(ApiError::new(
            "AlreadyExists",
            format!(
                "Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"
            ),
        ));
    }
    state.launch_configurations.insert(
        name.to_owned(),
        LaunchConfiguration {
            name: name.to_owned(),
            arn: model::launch_configuration_arn(name, &uuid::Uuid::new_v4().to_string()),
            image_id: params.required("ImageId")?.to_owned(),
            instance_type: params.required("InstanceType")?.to_owned(),
            user_data: params.optional("UserData").map(str::to_owned),
            metadata_tags: params.optional("MetadataOptions.InstanceMetadataTags")
                == Some("enabled"),
            created: Utc::now(),
        },
    );
    Ok(Xml::default())
}

fn describe_launch_configurations(state: &State, params: &Params) -> Xml {
    let names = params.list("LaunchConfigurationNames");
    let mut xml = Xml::default();
    xml.list(
        "LaunchConfigurations",
        state
            .launch_configurations
            .values()
            .filter(|lc| names.is_empty() || names.contains(&lc.name.as_str())),
        |xml, lc| {
            xml.el("LaunchConfigurationName", &lc.name);
            xml.el("LaunchConfigurationARN", &lc.arn);
            xml.el("ImageId", &lc.image_id);
            xml.el("InstanceType", &lc.instance_type);
            xml.opt("UserData", lc.user_data.as_ref());
            xml.el("CreatedTime", time(lc.created));
        },
    );
    xml
}

fn delete_launch_configuration(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("LaunchConfigurationName")?;
    let mut state = emulator.lock();
    if state
        .groups
        .values()
        .any(|g| g.launch_configuration == name)
    {
        return Err(ApiError::new(
            "ResourceInUse",
            format!(
                "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup"
            ),
        ));
    }
    state.launch_configurations.remove(name).ok_or_else(|| {
        ApiError::validation(format!(
            "Launch configuration name not found - Launch configuration {name} not found"
        ))
    })?;
    Ok(Xml::default())
}

/// Checks `min <= desired <= max` as AWS words it.
fn check_sizes(min: u32, max: u32, desired: u32) -> Result<(), ApiError> {
    if min > max {
        return Err(ApiError::validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired > max {
        return Err(ApiError::validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    if desired < min {
        return Err(ApiError::validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// The zones of a new group: `AvailabilityZones`, or one per subnet of `VPCZoneIdentifier`
/// (subnet *k* is in zone *k* of the region, a, b, c...).
fn zones(params: &Params) -> Result<Vec<String>, ApiError> {
    let listed: Vec<String> = params
        .list("AvailabilityZones")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if !listed.is_empty() {
        return Ok(listed);
    }
    let subnets = params.optional("VPCZoneIdentifier").unwrap_or_default();
    let zones: Vec<String> = subnets
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .zip('a'..='z')
        .map(|(_, letter)| format!("{}{letter}", model::REGION))
        .collect();
    if zones.is_empty() {
        return Err(ApiError::validation(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    Ok(zones)
}

fn create_group(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    let min = params.optional_u32("MinSize")?.ok_or_else(|| {
        params
            .required("MinSize")
            .err()
            .unwrap_or_else(|| ApiError::validation("MinSize"))
    })?;
    let max = params.optional_u32("MaxSize")?.ok_or_else(|| {
        params
            .required("MaxSize")
            .err()
            .unwrap_or_else(|| ApiError::validation("MaxSize"))
    })?;
    let desired = params.optional_u32("DesiredCapacity")?.unwrap_or(min);
    check_sizes(min, max, desired)?;
    if params.optional("LaunchTemplate.LaunchTemplateName").is_some()
        || params.optional("LaunchTemplate.LaunchTemplateId").is_some()
        || params.optional("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName").is_some()
    {
        return Err(ApiError::validation(
            "The test bed's Auto Scaling emulator supports launch configurations only (LaunchConfigurationName); launch templates are not implemented.",
        ));
    }
    let configuration = params.required("LaunchConfigurationName")?;
    let zones = zones(params)?;
    let tags = params
        .structs("Tags")
        .into_iter()
        .map(|fields| Tag {
            key: fields.get("Key").copied().unwrap_or_default().to_owned(),
            value: fields.get("Value").copied().unwrap_or_default().to_owned(),
            propagate_at_launch: fields.get("PropagateAtLaunch") == Some(&"true"),
        })
        .collect();
    {
        let mut state = emulator.lock();
        if state.groups.contains_key(name) {
            return Err(ApiError::new(
                "AlreadyExists",
                format!(
                    "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
                ),
            ));
        }
        if !state.launch_configurations.contains_key(configuration) {
            return Err(ApiError::validation(format!(
                "Launch configuration name not found - Launch configuration {configuration} not found"
            )));
        }
        state.groups.insert(
            name.to_owned(),
            Group {
                name: name.to_owned(),
                arn: model::group_arn(name, &uuid::Uuid::new_v4().to_string()),
                min,
                max,
                desired,
                zones,
                launch_configuration: configuration.to_owned(),
                tags,
                created: Utc::now(),
                deleting: false,
                launching_zones: Vec::new(),
                target_groups: Vec::new(),
                detaching: Vec::new(),
            },
        );
        state.record(
            name,
            None,
            format!("created: min {min}, max {max}, desired {desired}"),
        );
    }
    emulator.reconcile(name);
    Ok(Xml::default())
}

fn update_group(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    {
        let mut state = emulator.lock();
        let has_configuration = params
            .optional("LaunchConfigurationName")
            .map(|lc| state.launch_configurations.contains_key(lc));
        let group = state
            .groups
            .get_mut(name)
            .filter(|g| !g.deleting)
            .ok_or_else(|| group_not_found(name))?;
        let min = params.optional_u32("MinSize")?.unwrap_or(group.min);
        let max = params.optional_u32("MaxSize")?.unwrap_or(group.max);
        // As AWS does: a new bound drags the desired capacity inside it unless one is given.
        let desired = params
            .optional_u32("DesiredCapacity")?
            .unwrap_or_else(|| group.desired.clamp(min, max.max(min)));
        check_sizes(min, max, desired)?;
        if let Some(lc) = params.optional("LaunchConfigurationName") {
            if has_configuration != Some(true) {
                return Err(ApiError::validation(format!(
                    "Launch configuration name not found - Launch configuration {lc} not found"
                )));
            }
            group.launch_configuration = lc.to_owned();
        }
        (group.min, group.max, group.desired) = (min, max, desired);
        state.record(
            name,
            None,
            format!("updated: min {min}, max {max}, desired {desired}"),
        );
    }
    emulator.reconcile(name);
    Ok(Xml::default())
}

fn set_desired_capacity(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    let desired = params.optional_u32("DesiredCapacity")?.ok_or_else(|| {
        params
            .required("DesiredCapacity")
            .err()
            .unwrap_or_else(|| ApiError::validation("DesiredCapacity"))
    })?;
    {
        let mut state = emulator.lock();
        let group = state
            .groups
            .get_mut(name)
            .filter(|g| !g.deleting)
            .ok_or_else(|| group_not_found(name))?;
        if desired > group.max {
            return Err(ApiError::validation(format!(
                "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                group.max
            )));
        }
        if desired < group.min {
            return Err(ApiError::validation(format!(
                "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                group.min
            )));
        }
        group.desired = desired;
        state.record(name, None, format!("desired capacity set to {desired}"));
    }
    emulator.reconcile(name);
    Ok(Xml::default())
}

fn delete_group(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    let force = params.optional_bool("ForceDelete")?.unwrap_or(false);
    let mut state = emulator.lock();
    if !state.groups.contains_key(name) {
        return Err(group_not_found(name));
    }
    let members: Vec<(String, LifecycleState)> = state
        .members(name)
        .into_iter()
        .map(|i| (i.id.clone(), i.state))
        .collect();
    if !members.is_empty() && !force {
        return Err(ApiError::new(
            "ResourceInUse",
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
        ));
    }
    // ForceDelete: the instances go without waiting on their hooks, and the group's open
    // lifecycle actions are deleted.
    for action in state
        .actions
        .values_mut()
        .filter(|a| a.group == name && a.is_active())
    {
        action.outcome = Some((HookResult::Abandon, Ending::GroupDeleted));
    }
    for (id, lifecycle) in members {
        if lifecycle.counts_as_capacity() {
            emulator.start_termination(&mut state, &id, false);
        }
    }
    state.groups.remove(name);
    state.hooks.retain(|(group, _), _| group != name);
    state.record(name, None, "deleted");
    drop(state);
    emulator.changed.notify_waiters();
    Ok(Xml::default())
}

fn write_tags(xml: &mut Xml, group: &Group) {
    xml.list("Tags", &group.tags, |xml, tag| {
        xml.el("ResourceId", &group.name);
        xml.el("ResourceType", "auto-scaling-group");
        xml.el("Key", &tag.key);
        xml.el("Value", &tag.value);
        xml.el("PropagateAtLaunch", tag.propagate_at_launch);
    });
}

fn describe_groups(state: &State, params: &Params) -> Xml {
    let names = params.list("AutoScalingGroupNames");
    let mut xml = Xml::default();
    xml.list(
        "AutoScalingGroups",
        state
            .groups
            .values()
            .filter(|g| names.is_empty() || names.contains(&g.name.as_str())),
        |xml, group| {
            xml.el("AutoScalingGroupName", &group.name);
            xml.el("AutoScalingGroupARN", &group.arn);
            xml.el("LaunchConfigurationName", &group.launch_configuration);
            xml.el("MinSize", group.min);
            xml.el("MaxSize", group.max);
            xml.el("DesiredCapacity", group.desired);
            xml.el("DefaultCooldown", 300);
            xml.strings("AvailabilityZones", &group.zones);
            xml.strings("LoadBalancerNames", Vec::<String>::new());
            xml.strings("TargetGroupARNs", &group.target_groups);
            xml.el("HealthCheckType", "EC2");
            xml.el("HealthCheckGracePeriod", 0);
            xml.list("Instances", state.members(&group.name), |xml, instance| {
                xml.el("InstanceId", &instance.id);
                xml.el(
                    "InstanceType",
                    instance_type(state, &instance.launch_configuration),
                );
                xml.el("AvailabilityZone", &instance.zone);
                xml.el("LifecycleState", instance.state.as_aws_str());
                xml.el(
                    "HealthStatus",
                    if instance.unhealthy {
                        "Unhealthy"
                    } else {
                        "Healthy"
                    },
                );
                xml.el("LaunchConfigurationName", &instance.launch_configuration);
                xml.el("ProtectedFromScaleIn", false);
            });
            xml.el("CreatedTime", time(group.created));
            write_tags(xml, group);
            xml.strings("TerminationPolicies", ["Default"]);
            xml.el("NewInstancesProtectedFromScaleIn", false);
        },
    );
    xml
}

fn instance_type<'a>(state: &'a State, configuration: &str) -> &'a str {
    state
        .launch_configurations
        .get(configuration)
        .map_or("t3.small", |lc| lc.instance_type.as_str())
}

fn describe_instances(state: &State, params: &Params) -> Xml {
    let ids = params.list("InstanceIds");
    let mut xml = Xml::default();
    xml.list(
        "AutoScalingInstances",
        state
            .instances
            .values()
            .filter(|i| i.state != LifecycleState::Terminated)
            .filter(|i| ids.is_empty() || ids.contains(&i.id.as_str())),
        |xml, instance| {
            xml.el("InstanceId", &instance.id);
            xml.el(
                "InstanceType",
                instance_type(state, &instance.launch_configuration),
            );
            xml.el("AutoScalingGroupName", &instance.group);
            xml.el("AvailabilityZone", &instance.zone);
            xml.el("LifecycleState", instance.state.as_aws_str());
            // Upper case here, unlike DescribeAutoScalingGroups: as AWS answers.
            xml.el(
                "HealthStatus",
                if instance.unhealthy {
                    "UNHEALTHY"
                } else {
                    "HEALTHY"
                },
            );
            xml.el("LaunchConfigurationName", &instance.launch_configuration);
            xml.el("ProtectedFromScaleIn", false);
        },
    );
    xml
}

/// `SetInstanceHealth`: `Unhealthy` has the group replace the instance through its
/// termination hooks (its `ReplaceUnhealthy` process); `Healthy` clears a mark not yet acted
/// on. The grace period is not modelled: the test bed's groups have none.
fn set_instance_health(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let id = params.required("InstanceId")?;
    let health = params.required("HealthStatus")?;
    params.optional_bool("ShouldRespectGracePeriod")?;
    let mut state = emulator.lock();
    let group = state
        .instances
        .get(id)
        .filter(|i| i.state != LifecycleState::Terminated)
        .map(|i| i.group.clone())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Instance Id not found - No managed instance found for instance ID: {id}"
            ))
        })?;
    match health {
        "Unhealthy" => emulator.set_unhealthy(&mut state, id),
        "Healthy" => {
            if let Some(instance) = state.instances.get_mut(id)
                && instance.state.counts_as_capacity()
            {
                instance.unhealthy = false;
            }
        }
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'healthStatus' failed to satisfy constraint: Member must be Healthy or Unhealthy"
            )));
        }
    }
    drop(state);
    emulator.reconcile(&group);
    Ok(Xml::default())
}

/// The target groups of `TrafficSources.member.N` (`Identifier`, `Type` `elbv2`): the only
/// kind the test bed has.
fn traffic_sources(params: &Params) -> Result<Vec<String>, ApiError> {
    let sources = params.structs("TrafficSources");
    if sources.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'trafficSources' failed to satisfy constraint: Member must not be null",
        ));
    }
    sources
        .iter()
        .map(|source| {
            let identifier = source.get("Identifier").copied().unwrap_or_default();
            match source.get("Type").copied() {
                Some("elbv2") | None if identifier.contains(":targetgroup/") => {
                    Ok(identifier.to_owned())
                }
                _ => Err(ApiError::validation(format!(
                    "Traffic source {identifier} is not an ELB target group (the test bed has only those)"
                ))),
            }
        })
        .collect()
}

/// The group the call names, and the traffic sources it names that change: those not
/// attached yet (`attach`), or those attached (to detach), the group's lists changed.
fn change_sources(
    state: &mut State,
    params: &Params,
    attach: bool,
) -> Result<(String, Vec<String>), ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    let sources = traffic_sources(params)?;
    let group = state
        .groups
        .get_mut(name)
        .ok_or_else(|| group_not_found(name))?;
    let changed: Vec<String> = sources
        .into_iter()
        .filter(|s| group.target_groups.contains(s) != attach)
        .collect();
    if attach {
        group.target_groups.extend(changed.iter().cloned());
        group.detaching.retain(|s| !changed.contains(s));
    } else {
        group.target_groups.retain(|s| !changed.contains(s));
        group.detaching.extend(changed.iter().cloned());
    }
    for source in &changed {
        let what = if attach { "attached" } else { "detaching" };
        state.record(name, None, format!("{what} {source}"));
    }
    Ok((name.to_owned(), changed))
}

/// `AttachTrafficSources`: each target group is attached (idempotent) and every instance of
/// the group that is in service, or past its launch hooks, is registered with it at once, as
/// Auto Scaling does; the ones launched later are registered before they go in service.
fn attach_traffic_sources(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let mut state = emulator.lock();
    let (name, new) = change_sources(&mut state, params, true)?;
    let members: Vec<(String, std::net::Ipv4Addr)> = state
        .members(&name)
        .iter()
        .filter(|i| {
            matches!(
                i.state,
                LifecycleState::InService | LifecycleState::PendingProceed
            )
        })
        .map(|i| (i.id.clone(), i.ip))
        .collect();
    for target_group in &new {
        for (id, ip) in &members {
            emulator.register(&mut state, &name, target_group, id, *ip);
        }
    }
    Ok(Xml::default())
}

/// `DetachTrafficSources`: each target group is `Removing` while the group's instances
/// deregister from it (the deregistration delay), then gone. Detaching one not attached is
/// no error, as in AWS.
fn detach_traffic_sources(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let mut state = emulator.lock();
    let (name, leaving) = change_sources(&mut state, params, false)?;
    let members: Vec<String> = state.members(&name).iter().map(|i| i.id.clone()).collect();
    drop(state);
    let delay = emulator
        .clock
        .real(crate::balancer::DEREGISTRATION_DELAY_SECS);
    let emulator = Arc::clone(emulator);
    tokio::spawn(async move {
        // Every instance at once, as one deregistration delay.
        futures_util::future::join_all(
            members
                .iter()
                .map(|id| emulator.deregister(&name, &leaving, id, delay)),
        )
        .await;
        let mut state = emulator.lock();
        if let Some(group) = state.groups.get_mut(&name) {
            group.detaching.retain(|s| !leaving.contains(s));
        }
    });
    Ok(Xml::default())
}

/// `DescribeTrafficSources`: the group's target groups, `Added` (the test bed's groups use
/// EC2 health checks, so none goes on to `InService`) or `Removing`.
fn describe_traffic_sources(state: &State, params: &Params) -> Result<Xml, ApiError> {
    let name = params.required("AutoScalingGroupName")?;
    let group = state
        .groups
        .get(name)
        .ok_or_else(|| group_not_found(name))?;
    let kind = params.optional("TrafficSourceType");
    let mut xml = Xml::default();
    let sources = group
        .target_groups
        .iter()
        .map(|s| (s, "Added"))
        .chain(group.detaching.iter().map(|s| (s, "Removing")))
        .filter(|_| kind.is_none_or(|k| k == "elbv2"));
    xml.list("TrafficSources", sources, |xml, (source, state)| {
        xml.el("TrafficSource", source);
        xml.el("State", state);
        xml.el("Identifier", source);
        xml.el("Type", "elbv2");
    });
    Ok(xml)
}

fn terminate_instance(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let id = params.required("InstanceId")?;
    let decrement = params
        .optional_bool("ShouldDecrementDesiredCapacity")?
        .ok_or_else(|| {
            params
                .required("ShouldDecrementDesiredCapacity")
                .err()
                .unwrap_or_else(|| ApiError::validation("ShouldDecrementDesiredCapacity"))
        })?;
    let mut state = emulator.lock();
    let instance = state
        .instances
        .get(id)
        .filter(|i| i.state != LifecycleState::Terminated)
        .cloned()
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Instance Id not found - No managed instance found for instance ID: {id}"
            ))
        })?;
    let group = instance.group.clone();
    if instance.state.counts_as_capacity() {
        if decrement {
            let g = state
                .groups
                .get_mut(&group)
                .ok_or_else(|| group_not_found(&group))?;
            if g.desired <= g.min {
                return Err(ApiError::validation(format!(
                    "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
                    g.min
                )));
            }
            g.desired -= 1;
        }
        state.record(
            &group,
            Some(id),
            format!("terminate requested (decrement desired capacity: {decrement})"),
        );
        emulator.start_termination(&mut state, id, true);
    }
    // A second request for an instance already terminating changes nothing.
    drop(state);
    emulator.reconcile(&group);
    let mut xml = Xml::default();
    xml.open("Activity");
    xml.el("ActivityId", uuid::Uuid::new_v4());
    xml.el("AutoScalingGroupName", &group);
    xml.el("Description", format!("Terminating EC2 instance: {id}"));
    xml.el(
        "Cause",
        format!(
            "At {} instance {id} was taken out of service in response to a user request.",
            time(Utc::now())
        ),
    );
    xml.el("StartTime", time(Utc::now()));
    xml.el("StatusCode", "InProgress");
    xml.el("Progress", 0);
    xml.close("Activity");
    Ok(xml)
}

async fn put_hook(emulator: &Arc<Emulator>, params: &Params) -> Result<Xml, ApiError> {
    let group_name = params.required("AutoScalingGroupName")?;
    let name = params.required("LifecycleHookName")?;
    let existing = emulator
        .lock()
        .hooks
        .get(&(group_name.to_owned(), name.to_owned()))
        .cloned();
    let transition = match params.optional("LifecycleTransition") {
        Some(text) => Transition::from_aws_str(text).ok_or_else(|| {
            ApiError::validation(format!("Invalid Lifecycle Transition name: {text}"))
        })?,
        None => existing.as_ref().map(|h| h.transition).ok_or_else(|| {
            ApiError::validation("LifecycleTransition is required for a new lifecycle hook")
        })?,
    };
    let heartbeat_timeout = params
        .optional_u32("HeartbeatTimeout")?
        .or(existing.as_ref().map(|h| h.heartbeat_timeout))
        .unwrap_or(3600);
    if !(30..=7200).contains(&heartbeat_timeout) {
        return Err(ApiError::validation(format!(
            "Heartbeat timeout {heartbeat_timeout} is out of range: it must be between 30 and 7200 seconds"
        )));
    }
    let default_result = match params.optional("DefaultResult") {
        Some(text) => HookResult::from_aws_str(text).ok_or_else(|| {
            ApiError::validation(format!(
                "Valid values for DefaultResult are CONTINUE and ABANDON, not {text}"
            ))
        })?,
        None => existing
            .as_ref()
            .map_or(HookResult::Abandon, |h| h.default_result),
    };
    let target_arn = params
        .optional("NotificationTargetARN")
        .map(str::to_owned)
        .or(existing.as_ref().and_then(|h| h.target_arn.clone()));
    let role_arn = params
        .optional("RoleARN")
        .map(str::to_owned)
        .or(existing.as_ref().and_then(|h| h.role_arn.clone()));
    if target_arn.is_some() && role_arn.is_none() {
        return Err(ApiError::validation(
            "RoleARN is required when a NotificationTargetARN is given",
        ));
    }
    let hook = Hook {
        name: name.to_owned(),
        group: group_name.to_owned(),
        transition,
        target_arn,
        role_arn,
        heartbeat_timeout,
        default_result,
        metadata: params
            .optional("NotificationMetadata")
            .map(str::to_owned)
            .or(existing.as_ref().and_then(|h| h.metadata.clone())),
    };
    let group = {
        let state = emulator.lock();
        let group = state
            .groups
            .get(group_name)
            .filter(|g| !g.deleting)
            .cloned()
            .ok_or_else(|| group_not_found(group_name))?;
        if existing.is_none() && state.hooks.keys().filter(|(g, _)| g == group_name).count() >= 50 {
            return Err(ApiError::new(
                "LimitExceeded",
                format!("Cannot add more than 50 lifecycle hooks to group {group_name}"),
            ));
        }
        group
    };
    // AWS proves the target on creation by publishing the test notification; a target it
    // cannot publish to refuses the hook.
    if let (Some(target), None) = (&hook.target_arn, &existing) {
        let body = notify::test_message(&group, &uuid::Uuid::new_v4().to_string());
        notify::send(&emulator.sqs, target, body).await.map_err(|error| {
            ApiError::validation(format!(
                "Unable to publish test message to notification target {target} using IAM role {}. Please check your target and role configuration and try to put lifecycle hook again. ({error})",
                hook.role_arn.as_deref().unwrap_or_default()
            ))
        })?;
    }
    let mut state = emulator.lock();
    state.record(
        group_name,
        None,
        format!("lifecycle hook {name} put ({})", transition.as_aws_str()),
    );
    state
        .hooks
        .insert((group_name.to_owned(), name.to_owned()), hook);
    Ok(Xml::default())
}

fn describe_hooks(state: &State, params: &Params) -> Result<Xml, ApiError> {
    let group = params.required("AutoScalingGroupName")?;
    if !state.groups.contains_key(group) {
        return Err(group_not_found(group));
    }
    let names = params.list("LifecycleHookNames");
    let mut xml = Xml::default();
    xml.list(
        "LifecycleHooks",
        state
            .hooks
            .values()
            .filter(|h| h.group == group && (names.is_empty() || names.contains(&h.name.as_str()))),
        |xml, hook| {
            xml.el("LifecycleHookName", &hook.name);
            xml.el("AutoScalingGroupName", &hook.group);
            xml.el("LifecycleTransition", hook.transition.as_aws_str());
            xml.opt("NotificationTargetARN", hook.target_arn.as_ref());
            xml.opt("RoleARN", hook.role_arn.as_ref());
            xml.opt("NotificationMetadata", hook.metadata.as_ref());
            xml.el("HeartbeatTimeout", hook.heartbeat_timeout);
            xml.el("GlobalTimeout", hook.global_timeout());
            xml.el("DefaultResult", hook.default_result.as_aws_str());
        },
    );
    Ok(xml)
}

fn delete_hook(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let group = params.required("AutoScalingGroupName")?;
    let name = params.required("LifecycleHookName")?;
    let mut state = emulator.lock();
    if !state.groups.contains_key(group) {
        return Err(group_not_found(group));
    }
    state
        .hooks
        .remove(&(group.to_owned(), name.to_owned()))
        .ok_or_else(|| {
            ApiError::validation(format!(
                "No Lifecycle Hook found with name {name} for group {group}"
            ))
        })?;
    state.record(group, None, format!("lifecycle hook {name} deleted"));
    Ok(Xml::default())
}

/// The active action a `CompleteLifecycleAction` or heartbeat names, by token or by instance
/// id, or the `ValidationError` AWS answers when there is none.
fn find_active<'a>(state: &'a mut State, params: &Params) -> Result<&'a mut Action, ApiError> {
    let group = params.required("AutoScalingGroupName")?.to_owned();
    let hook = params.required("LifecycleHookName")?.to_owned();
    // By token when one is given, else by instance id; the error names whichever was used.
    let (by_token, key, not_found) = match (
        params.optional("LifecycleActionToken"),
        params.optional("InstanceId"),
    ) {
        (Some(token), _) => (
            true,
            token,
            format!("No active Lifecycle Action found with token {token}"),
        ),
        (None, Some(id)) => (
            false,
            id,
            format!("No active Lifecycle Action found with instance ID {id}"),
        ),
        (None, None) => {
            return Err(ApiError::validation(
                "Either LifecycleActionToken or InstanceId must be given",
            ));
        }
    };
    state
        .actions
        .values_mut()
        .find(|a| {
            a.is_active()
                && a.group == group
                && a.hook == hook
                && key == if by_token { &a.token } else { &a.instance_id }
        })
        .ok_or_else(|| ApiError::validation(not_found))
}

fn complete(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let result_text = params.required("LifecycleActionResult")?;
    let result = HookResult::from_aws_str(result_text).ok_or_else(|| {
        ApiError::validation(format!(
            "Valid values for LifecycleActionResult are CONTINUE and ABANDON, not {result_text}"
        ))
    })?;
    let mut state = emulator.lock();
    let action = find_active(&mut state, params)?;
    action.outcome = Some((result, Ending::Completed));
    let (group, id, hook) = (
        action.group.clone(),
        action.instance_id.clone(),
        action.hook.clone(),
    );
    state.record(
        &group,
        Some(&id),
        format!("hook {hook}: completed with {}", result.as_aws_str()),
    );
    drop(state);
    emulator.changed.notify_waiters();
    Ok(Xml::default())
}

fn heartbeat(emulator: &Emulator, params: &Params) -> Result<Xml, ApiError> {
    let mut state = emulator.lock();
    let timeout = {
        let group = params.required("AutoScalingGroupName")?;
        let hook = params.required("LifecycleHookName")?;
        state
            .hooks
            .get(&(group.to_owned(), hook.to_owned()))
            .map(|h| h.heartbeat_timeout)
    };
    let action = find_active(&mut state, params)?;
    let timeout = emulator.clock.real(timeout.unwrap_or(3600));
    // A heartbeat restarts the heartbeat timeout; it never moves the global timeout.
    action.heartbeat_deadline = (Instant::now() + timeout).min(action.global_deadline);
    action.heartbeats += 1;
    let (group, id, hook) = (
        action.group.clone(),
        action.instance_id.clone(),
        action.hook.clone(),
    );
    state.record(&group, Some(&id), format!("hook {hook}: heartbeat"));
    drop(state);
    emulator.changed.notify_waiters();
    Ok(Xml::default())
}
