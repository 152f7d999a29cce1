//! A group of a test's own in the Auto Scaling emulator, with its queue in moto, and the
//! helpers the end-to-end tests read the emulator and the swarm with.

use anyhow::{Context, Result, bail};
use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_autoscaling::types::Tag;
use aws_sdk_sqs::Client as Sqs;
use base64::Engine as _;
use bollard::query_parameters::DeleteNodeOptions;
use chrono::{DateTime, Utc};
use std::time::Duration;
use swarm_aws::event::{LifecycleAction, LifecycleMessage, parse_message};
use testbed::{Testbed, docker};

/// `autoscaling:EC2_INSTANCE_TERMINATING`.
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
/// `autoscaling:EC2_INSTANCE_LAUNCHING`.
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// A queue, a launch configuration and a group of the test's own, removed at the end.
pub struct Fixture {
    /// Auto Scaling (the emulator).
    pub asg: AutoScaling,
    /// SQS (moto).
    pub sqs: Sqs,
    /// The name of the group, its launch configuration and its queue.
    pub name: String,
    /// The queue the hooks notify.
    pub queue_url: String,
    /// Its ARN.
    pub queue_arn: String,
}

/// The launch configuration of the test bed's workers: their user data runs the node
/// bootstrap, which joins the test bed's swarm as a worker.
pub const JOIN: &str = "testbed-worker";
/// The same for managers: the bootstrap joins the swarm as a manager.
pub const JOIN_AS_MANAGER: &str = "testbed-manager";

/// What the group's instances are launched with.
#[derive(Debug, Clone, Copy)]
pub enum Launch<'a> {
    /// An existing launch configuration (such as [`JOIN`]).
    Existing(&'a str),
    /// A new launch configuration without user data: the nodes start, join nothing.
    Blank,
    /// A new launch configuration whose user data is this script.
    UserData(&'a str),
}

impl Fixture {
    /// A group `name` of `desired` workers in two zones, launched with the launch
    /// configuration `configuration` (a new one without user data when `None`: the nodes
    /// start but do not join the swarm), hooks none yet.
    pub async fn new(name: &str, desired: i32, configuration: Option<&str>) -> Result<Self> {
        Self::with_role(name, desired, configuration, "worker").await
    }

    /// [`Fixture::new`] for a group whose nodes are `role` (`manager` or `worker`).
    pub async fn with_role(
        name: &str,
        desired: i32,
        configuration: Option<&str>,
        role: &str,
    ) -> Result<Self> {
        let launch = match configuration {
            Some(existing) => Launch::Existing(existing),
            None => Launch::Blank,
        };
        let fixture = Self::create(name, desired, launch, role).await?;
        fixture.wait_in_service(desired as usize).await?;
        Ok(fixture)
    }

    /// The group, created without waiting for its instances.
    pub async fn create(name: &str, desired: i32, launch: Launch<'_>, role: &str) -> Result<Self> {
        let config = crate::sdk_config().await?;
        let (asg, sqs) = (AutoScaling::new(&config), Sqs::new(&config));
        let name = format!("e2e-{name}-{}", std::process::id());
        let (queue_url, queue_arn) = create_queue(&sqs, &name).await?;
        let configuration = match launch {
            Launch::Existing(existing) => existing.to_owned(),
            Launch::Blank | Launch::UserData(_) => {
                let user_data = match launch {
                    Launch::UserData(script) => {
                        Some(base64::engine::general_purpose::STANDARD.encode(script))
                    }
                    _ => None,
                };
                asg.create_launch_configuration()
                    .launch_configuration_name(&name)
                    .image_id("ami-0e2e")
                    .instance_type("t3.micro")
                    .set_user_data(user_data)
                    .send()
                    .await?;
                name.clone()
            }
        };
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_configuration_name(configuration)
            .min_size(0)
            .max_size(desired.max(6))
            .desired_capacity(desired)
            .availability_zones("us-east-1a")
            .availability_zones("us-east-1b")
            .tags(
                Tag::builder()
                    .key("testbed:role")
                    .value(role)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_autoscaling::error::DisplayErrorContext(e))
            })?;
        Ok(Self {
            asg,
            sqs,
            name,
            queue_url,
            queue_arn,
        })
    }

    /// Puts a hook on the group that notifies the fixture's queue.
    pub async fn put_hook(
        &self,
        hook: &str,
        transition: &str,
        heartbeat: i32,
        default: &str,
    ) -> Result<()> {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(&self.name)
            .lifecycle_hook_name(hook)
            .lifecycle_transition(transition)
            .heartbeat_timeout(heartbeat)
            .default_result(default)
            .notification_target_arn(&self.queue_arn)
            .role_arn("arn:aws:iam::123456789012:role/e2e-hooks")
            .send()
            .await?;
        Ok(())
    }

    /// Asks the group to terminate an instance, its desired capacity decremented.
    pub async fn terminate(&self, id: &str) -> Result<()> {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(true)
            .send()
            .await?;
        Ok(())
    }

    /// Completes the action of `hook` named by its token.
    pub async fn complete(&self, hook: &str, token: &str, result: &str) -> Result<()> {
        self.asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(&self.name)
            .lifecycle_hook_name(hook)
            .lifecycle_action_token(token)
            .lifecycle_action_result(result)
            .send()
            .await?;
        Ok(())
    }

    /// Sets the group's desired capacity.
    pub async fn set_desired(&self, capacity: i32) -> Result<()> {
        self.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&self.name)
            .desired_capacity(capacity)
            .send()
            .await?;
        Ok(())
    }

    /// The next message on the queue, parsed with the product's event model, deleted.
    pub async fn next_message(&self) -> Result<LifecycleMessage> {
        // Long polls back to back: the receive itself waits.
        crate::wait::until(Duration::from_secs(120), Duration::ZERO, async || {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .wait_time_seconds(2)
                .max_number_of_messages(1)
                .send()
                .await?;
            if let Some(message) = received.messages.unwrap_or_default().into_iter().next() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle.context("no receipt handle")?)
                    .send()
                    .await?;
                let body = message.body.unwrap_or_default();
                return parse_message(body.as_bytes())
                    .map(Ok)
                    .with_context(|| format!("unparsable: {body}"));
            }
            Ok(Err(format!("no message on {}", self.name)))
        })
        .await
    }

    /// The body Auto Scaling sends for `action`, rebuilt field for field (to deliver it again,
    /// or to hand it to the Lambda front).
    pub fn notification_body(&self, action: &LifecycleAction) -> String {
        serde_json::json!({
            "Origin": "AutoScalingGroup",
            "Destination": "EC2",
            "Service": "AWS Auto Scaling",
            "Time": action.time.map(|t| t.to_rfc3339()),
            "AccountId": "123456789012",
            "LifecycleTransition": action.transition.as_aws_str(),
            "RequestId": "e2e-redelivery",
            "LifecycleActionToken": action.token.as_str(),
            "EC2InstanceId": action.instance_id.as_str(),
            "LifecycleHookName": action.hook.as_str(),
            "AutoScalingGroupName": self.name,
        })
        .to_string()
    }

    /// The next lifecycle action on the queue, test notifications skipped.
    pub async fn next_action(&self) -> Result<LifecycleAction> {
        loop {
            match self.next_message().await? {
                LifecycleMessage::TestNotification { .. } => continue,
                LifecycleMessage::Action(action) => return Ok(action),
                other => bail!("unexpected message {other:?}"),
            }
        }
    }

    /// The group's instances: (id, lifecycle state, zone, launch configuration).
    pub async fn instances(&self) -> Result<Vec<(String, String, String, String)>> {
        let groups = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.name)
            .send()
            .await?;
        let group = groups
            .auto_scaling_groups()
            .first()
            .context("group missing")?;
        Ok(group
            .instances()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap_or_default().to_owned(),
                    i.lifecycle_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    i.availability_zone().unwrap_or_default().to_owned(),
                    i.launch_configuration_name().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// An instance's lifecycle state as `DescribeAutoScalingInstances` says, `None` once gone.
    pub async fn state_of(&self, id: &str) -> Result<Option<String>> {
        let answer = self
            .asg
            .describe_auto_scaling_instances()
            .instance_ids(id)
            .send()
            .await?;
        Ok(answer
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.lifecycle_state())
            .map(str::to_owned))
    }

    /// Waits until the instance is in `state` (`None`: gone).
    pub async fn wait_state(&self, id: &str, state: Option<&str>, timeout: Duration) -> Result<()> {
        crate::wait::until(timeout, Duration::from_millis(100), async || {
            let now = self.state_of(id).await?;
            Ok(if now.as_deref() == state {
                Ok(())
            } else {
                Err(format!("{id} is {now:?}, not {state:?}"))
            })
        })
        .await
    }

    /// Waits until the group has exactly `count` instances, all in service.
    pub async fn wait_in_service(&self, count: usize) -> Result<Vec<String>> {
        crate::wait::until(
            Duration::from_secs(90),
            Duration::from_millis(200),
            async || {
                let instances = self.instances().await?;
                Ok(
                    if instances.len() == count && instances.iter().all(|i| i.1 == "InService") {
                        Ok(instances.into_iter().map(|i| i.0).collect())
                    } else {
                        Err(format!(
                            "{} is {instances:?}, not {count} in service",
                            self.name
                        ))
                    },
                )
            },
        )
        .await
    }

    /// One look at the instances of `pending` being terminated: those whose termination has
    /// ended (no longer terminating, waiting or in service) are taken out of `pending` and
    /// returned, each with whether its node was still in the swarm at that moment (a drain
    /// completed early).
    pub async fn take_ended(
        &self,
        manager: &bollard::Docker,
        pending: &mut std::collections::BTreeSet<String>,
    ) -> Result<Vec<(String, bool)>> {
        let answer = self
            .asg
            .describe_auto_scaling_instances()
            .set_instance_ids(Some(pending.iter().cloned().collect()))
            .send()
            .await?;
        let states: std::collections::BTreeMap<&str, &str> = answer
            .auto_scaling_instances()
            .iter()
            .filter_map(|i| Some((i.instance_id()?, i.lifecycle_state()?)))
            .collect();
        let ended: Vec<String> = pending
            .iter()
            .filter(|id| {
                !matches!(
                    states.get(id.as_str()).copied(),
                    Some("Terminating" | "Terminating:Wait" | "InService")
                )
            })
            .cloned()
            .collect();
        let mut taken = Vec::new();
        for id in ended {
            let in_swarm = docker::node_by_instance_id(manager, &id).await?.is_some();
            pending.remove(&id);
            taken.push((id, in_swarm));
        }
        Ok(taken)
    }

    /// EC2 terminates the instance outside Auto Scaling (as the console, `TerminateInstances`
    /// or a Spot reclaim would): its node stops at once and no hook runs; the group launches a
    /// replacement. Returns once the node is gone.
    pub async fn ec2_terminate(&self, id: &str) -> Result<()> {
        let body = serde_json::json!({ "instance_id": id }).to_string();
        let (status, answer) = tokio::task::spawn_blocking(move || {
            testbed::http::post_json(
                testbed::autoscaling::addr(),
                "/emulator/ec2-terminate",
                &body,
                Duration::from_secs(60),
            )
        })
        .await??;
        if status != 204 {
            bail!("the emulator refused to terminate {id}: {status} {answer}");
        }
        Ok(())
    }

    /// EC2's Spot interruption warning (`warning`) or rebalance recommendation for the
    /// instance `id`, of this group or not (EventBridge delivers every Spot notice of the
    /// account and region), delivered to the fixture's queue as the stack's rule would; after
    /// a warning, the instance is reclaimed two minutes later in emulator time.
    pub async fn spot_notice(&self, id: &str, warning: bool) -> Result<()> {
        let body = serde_json::json!({
            "instance_id": id,
            "queue_arn": self.queue_arn,
            "warning": warning,
        })
        .to_string();
        let (status, answer) = tokio::task::spawn_blocking(move || {
            testbed::http::post_json(
                testbed::autoscaling::addr(),
                "/emulator/spot-notice",
                &body,
                Duration::from_secs(30),
            )
        })
        .await??;
        if status != 204 {
            bail!("the emulator refused the Spot notice for {id}: {status} {answer}");
        }
        Ok(())
    }

    /// Force-deletes the group (its nodes go), its launch configuration and queue, and
    /// removes its nodes' entries from the swarm.
    pub async fn remove(self) -> Result<()> {
        let ids: Vec<String> = self.instances().await?.into_iter().map(|i| i.0).collect();
        self.asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&self.name)
            .force_delete(true)
            .send()
            .await?;
        let _ = self
            .asg
            .delete_launch_configuration()
            .launch_configuration_name(&self.name)
            .send()
            .await;
        self.sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await?;
        // Gone before the next test starts: a node of another test's own swarm left in the
        // test bed's state would be taken for one of its managers.
        for id in &ids {
            self.wait_state(id, None, Duration::from_secs(60)).await?;
        }
        let manager = Testbed::load()?.manager().await?;
        for id in ids {
            if let Some(node) = docker::node_by_instance_id(&manager, &id).await?
                && let Some(node_id) = node.id
            {
                let _ = manager
                    .delete_node(&node_id, Some(DeleteNodeOptions { force: true }))
                    .await;
            }
        }
        Ok(())
    }
}

/// Whether the test-bed node of an instance still has a daemon that answers.
pub async fn node_runs(instance_id: &str) -> bool {
    let Ok(bed) = Testbed::load() else {
        return false;
    };
    match bed.nodes.iter().find(|n| n.instance_id == instance_id) {
        Some(node) => docker::connect(&node.docker_host()).await.is_ok(),
        None => false,
    }
}

/// The code and message of an SDK error.
pub fn code_and_message<E, R>(error: aws_sdk_autoscaling::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_autoscaling::error::ProvideErrorMetadata,
{
    match error.as_service_error() {
        Some(service) => (
            service.code().unwrap_or_default().to_owned(),
            service.message().unwrap_or_default().to_owned(),
        ),
        None => ("not a service error".to_owned(), String::new()),
    }
}

/// Makes (or finds) the SQS queue `name`; its URL and ARN, as a hook's target takes it.
pub async fn create_queue(sqs: &Sqs, name: &str) -> Result<(String, String)> {
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url
        .context("no queue url")?;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("no queue arn")?;
    Ok((queue_url, queue_arn))
}

/// The emulator's history lines of one instance.
pub async fn history_of(instance_id: &str) -> Result<Vec<String>> {
    Ok(history_events(instance_id)
        .await?
        .into_iter()
        .map(|(_, what)| what)
        .collect())
}

/// The emulator's history of one instance, with the time of each event.
pub async fn history_events(instance_id: &str) -> Result<Vec<(DateTime<Utc>, String)>> {
    testbed::autoscaling::state()?["history"]
        .as_array()
        .context("no history")?
        .iter()
        .filter(|e| e["instance_id"] == instance_id)
        .map(|e| {
            let at = e["at"].as_str().context("an event without time")?;
            Ok((
                DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc),
                e["what"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// The instance id in [`foreign_action`], which nothing of the test bed ever is.
pub const FOREIGN_INSTANCE: &str = "i-0f0f0f0f0f0f0f0f0";

/// A well-formed termination notification of a group no stack of the test bed owns.
pub fn foreign_action() -> String {
    serde_json::json!({
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "EC2InstanceId": FOREIGN_INSTANCE,
        "AutoScalingGroupName": "someone-elses-group",
        "LifecycleHookName": "theirs",
        "LifecycleActionToken": "11111111-2222-4333-8444-555555555555",
    })
    .to_string()
}
