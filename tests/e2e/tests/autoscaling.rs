//! Conformance of the test bed's Auto Scaling emulator, one test per documented behaviour,
//! each through `aws-sdk-autoscaling` (reaching the emulator by `AWS_ENDPOINT_URL_AUTO_SCALING`
//! only), with moto's SQS and the real swarm nodes of the test bed.
//!
//! Every test makes its own queue, launch configuration and group, so they run side by side.
//! The emulator runs at the test bed's time scale (60: one API minute per real second).

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_autoscaling::Client as AutoScaling;
use aws_sdk_autoscaling::types::Tag;
use aws_sdk_sqs::Client as Sqs;
use bollard::query_parameters::DeleteNodeOptions;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use swarm_aws::event::{LifecycleAction, LifecycleMessage, Transition, parse_message};
use testbed::{Testbed, docker};

/// A queue, a launch configuration and a group of the test's own, removed at the end.
struct Fixture {
    asg: AutoScaling,
    sqs: Sqs,
    name: String,
    queue_url: String,
    queue_arn: String,
}

/// User data that joins the node to the swarm: the test bed's boot step, as the emulator's
/// declared worker group uses it.
const JOIN: &str = "testbed-worker";

impl Fixture {
    /// A group `name` of `desired` workers in two zones, launched with the launch
    /// configuration `configuration` (a new one without user data when `None`: the nodes
    /// start but do not join the swarm), hooks none yet.
    async fn new(name: &str, desired: i32, configuration: Option<&str>) -> Result<Self> {
        let config = e2e::sdk_config().await?;
        let (asg, sqs) = (AutoScaling::new(&config), Sqs::new(&config));
        let name = format!("e2e-{name}-{}", std::process::id());
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
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
        let configuration = match configuration {
            Some(existing) => existing.to_owned(),
            None => {
                asg.create_launch_configuration()
                    .launch_configuration_name(&name)
                    .image_id("ami-0e2e")
                    .instance_type("t3.micro")
                    .send()
                    .await?;
                name.clone()
            }
        };
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_configuration_name(configuration)
            .min_size(0)
            .max_size(6)
            .desired_capacity(desired)
            .availability_zones("us-east-1a")
            .availability_zones("us-east-1b")
            .tags(
                Tag::builder()
                    .key("testbed:role")
                    .value("worker")
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await?;
        let fixture = Self {
            asg,
            sqs,
            name,
            queue_url,
            queue_arn,
        };
        fixture.wait_in_service(desired as usize).await?;
        Ok(fixture)
    }

    /// Puts a hook on the group that notifies the fixture's queue.
    async fn put_hook(
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
    async fn terminate(&self, id: &str) -> Result<()> {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(true)
            .send()
            .await?;
        Ok(())
    }

    /// Completes the action of `hook` named by its token.
    async fn complete(&self, hook: &str, token: &str, result: &str) -> Result<()> {
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
    async fn set_desired(&self, capacity: i32) -> Result<()> {
        self.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&self.name)
            .desired_capacity(capacity)
            .send()
            .await?;
        Ok(())
    }

    /// The next message on the queue, parsed with the product's event model, deleted.
    async fn next_message(&self) -> Result<LifecycleMessage> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
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
                    .with_context(|| format!("unparsable: {body}"));
            }
        }
        bail!("no message on {} within a minute", self.name)
    }

    /// The next lifecycle action on the queue, test notifications skipped.
    async fn next_action(&self) -> Result<LifecycleAction> {
        loop {
            match self.next_message().await? {
                LifecycleMessage::TestNotification { .. } => continue,
                LifecycleMessage::Action(action) => return Ok(action),
                other => bail!("unexpected message {other:?}"),
            }
        }
    }

    /// The group's instances: (id, lifecycle state, zone, launch configuration).
    async fn instances(&self) -> Result<Vec<(String, String, String, String)>> {
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
    async fn state_of(&self, id: &str) -> Result<Option<String>> {
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
    async fn wait_state(&self, id: &str, state: Option<&str>, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.state_of(id).await?;
            if now.as_deref() == state {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{id} is {now:?}, not {state:?}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the group has exactly `count` instances, all in service.
    async fn wait_in_service(&self, count: usize) -> Result<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let instances = self.instances().await?;
            if instances.len() == count && instances.iter().all(|i| i.1 == "InService") {
                return Ok(instances.into_iter().map(|i| i.0).collect());
            }
            ensure!(
                Instant::now() < deadline,
                "{} is {instances:?}, not {count} in service",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Force-deletes the group (its nodes go), its launch configuration and queue, and
    /// removes its nodes' entries from the swarm.
    async fn remove(self) -> Result<()> {
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
async fn node_runs(instance_id: &str) -> bool {
    let Ok(bed) = Testbed::load() else {
        return false;
    };
    match bed.nodes.iter().find(|n| n.instance_id == instance_id) {
        Some(node) => docker::connect(&node.docker_host()).await.is_ok(),
        None => false,
    }
}

/// The code and message of an SDK error.
fn code_and_message<E, R>(error: aws_sdk_autoscaling::error::SdkError<E, R>) -> (String, String)
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

/// The emulator's history lines of one instance.
async fn history_of(instance_id: &str) -> Result<Vec<String>> {
    let addr = ([127, 0, 0, 1], testbed::layout::AUTOSCALING_PORT).into();
    let (_, body) = testbed::http::get(addr, "/emulator/state", Duration::from_secs(5))?;
    let state: serde_json::Value = serde_json::from_str(&body)?;
    Ok(state["history"]
        .as_array()
        .context("no history")?
        .iter()
        .filter(|e| e["instance_id"] == instance_id)
        .filter_map(|e| e["what"].as_str().map(str::to_owned))
        .collect())
}

const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

#[tokio::test]
async fn putting_a_hook_sends_the_test_notification_and_a_queue_that_does_not_exist_is_refused()
-> Result<()> {
    let fixture = Fixture::new("test-notification", 0, None).await?;
    let outcome = async {
        fixture.put_hook("drain", TERMINATING, 300, "CONTINUE").await?;
        let message = fixture.next_message().await?;
        ensure!(
            matches!(&message, LifecycleMessage::TestNotification { group: Some(g) } if g.as_str() == fixture.name),
            "{message:?}"
        );
        let refused = fixture
            .asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(&fixture.name)
            .lifecycle_hook_name("nowhere")
            .lifecycle_transition(TERMINATING)
            .notification_target_arn("arn:aws:sqs:us-east-1:123456789012:no-such-queue")
            .role_arn("arn:aws:iam::123456789012:role/e2e-hooks")
            .send()
            .await
            .expect_err("a hook whose target cannot be published to is refused");
        let (code, message) = code_and_message(refused);
        ensure!(code == "ValidationError" && message.contains("Unable to publish test message"), "{code}: {message}");
        let hooks = fixture.asg.describe_lifecycle_hooks().auto_scaling_group_name(&fixture.name).send().await?;
        let names: Vec<&str> = hooks.lifecycle_hooks().iter().filter_map(|h| h.lifecycle_hook_name()).collect();
        ensure!(names == ["drain"], "{names:?}");
        let hook = &hooks.lifecycle_hooks()[0];
        ensure!(hook.heartbeat_timeout() == Some(300) && hook.global_timeout() == Some(30000), "{hook:?}");
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_terminating_instance_waits_with_its_node_running_until_its_action_is_completed()
-> Result<()> {
    let fixture = Fixture::new("terminate", 1, None).await?;
    let outcome = async {
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let id = fixture.wait_in_service(1).await?.remove(0);
        fixture.terminate(&id).await?;
        let action = fixture.next_action().await?;
        ensure!(action.transition == Transition::Terminating, "{action:?}");
        ensure!(
            action.instance_id.as_str() == id && action.group.as_str() == fixture.name,
            "{action:?}"
        );
        ensure!(action.hook.as_str() == "drain", "{action:?}");
        // Held: two real seconds are two API minutes, well inside the hour of the hook.
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(fixture.state_of(&id).await?.as_deref() == Some("Terminating:Wait"));
        ensure!(
            node_runs(&id).await,
            "the node stopped before its action was completed"
        );
        fixture
            .complete("drain", action.token.as_str(), "CONTINUE")
            .await?;
        fixture
            .wait_state(&id, None, Duration::from_secs(30))
            .await?;
        ensure!(
            !node_runs(&id).await,
            "the node still runs after termination"
        );
        ensure!(
            fixture.instances().await?.is_empty(),
            "no replacement: the desired capacity was decremented"
        );
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_heartbeat_restarts_the_heartbeat_timeout_and_then_the_default_result_applies()
-> Result<()> {
    let fixture = Fixture::new("heartbeat", 1, None).await?;
    let outcome = async {
        // 120 API seconds: two real seconds.
        fixture
            .put_hook("drain", TERMINATING, 120, "CONTINUE")
            .await?;
        let id = fixture.wait_in_service(1).await?.remove(0);
        fixture.terminate(&id).await?;
        fixture.next_action().await?;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            fixture
                .asg
                .record_lifecycle_action_heartbeat()
                .auto_scaling_group_name(&fixture.name)
                .lifecycle_hook_name("drain")
                .instance_id(&id)
                .send()
                .await?;
        }
        // Five seconds in, over twice the heartbeat timeout: still held.
        ensure!(fixture.state_of(&id).await?.as_deref() == Some("Terminating:Wait"));
        fixture
            .wait_state(&id, None, Duration::from_secs(15))
            .await?;
        let history = history_of(&id).await?;
        ensure!(
            history
                .iter()
                .any(|h| h == "hook drain: HeartbeatTimeout, default result CONTINUE"),
            "{history:?}"
        );
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn several_hooks_wait_for_all_and_a_timeout_with_abandon_skips_the_others() -> Result<()> {
    let fixture = Fixture::new("two-hooks", 2, None).await?;
    let outcome = async {
        // `quick` times out after one real second; `slow` would hold for an hour of API time.
        fixture
            .put_hook("slow", TERMINATING, 3600, "CONTINUE")
            .await?;
        fixture
            .put_hook("quick", TERMINATING, 60, "CONTINUE")
            .await?;
        let ids = fixture.wait_in_service(2).await?;
        // CONTINUE at the timeout of `quick`: the instance still waits for `slow`.
        fixture.terminate(&ids[0]).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(fixture.state_of(&ids[0]).await?.as_deref() == Some("Terminating:Wait"));
        fixture
            .asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(&fixture.name)
            .lifecycle_hook_name("slow")
            .instance_id(&ids[0])
            .lifecycle_action_result("CONTINUE")
            .send()
            .await?;
        fixture
            .wait_state(&ids[0], None, Duration::from_secs(30))
            .await?;

        // ABANDON at the timeout of `quick`: the remaining hook is skipped, the instance goes.
        fixture
            .put_hook("quick", TERMINATING, 60, "ABANDON")
            .await?;
        let started = Instant::now();
        fixture.terminate(&ids[1]).await?;
        fixture
            .wait_state(&ids[1], None, Duration::from_secs(20))
            .await?;
        ensure!(
            started.elapsed() < Duration::from_secs(20),
            "waited for the skipped hook"
        );
        let history = history_of(&ids[1]).await?;
        ensure!(
            history
                .iter()
                .any(|h| h == "hook quick: HeartbeatTimeout, default result ABANDON"),
            "{history:?}"
        );
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn completing_twice_or_with_a_wrong_token_answers_the_validation_error_aws_answers()
-> Result<()> {
    let fixture = Fixture::new("complete-twice", 1, None).await?;
    let outcome = async {
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let id = fixture.wait_in_service(1).await?.remove(0);
        fixture.terminate(&id).await?;
        let action = fixture.next_action().await?;
        let complete = |token: &str| {
            fixture
                .asg
                .complete_lifecycle_action()
                .auto_scaling_group_name(&fixture.name)
                .lifecycle_hook_name("drain")
                .lifecycle_action_token(token)
                .lifecycle_action_result("CONTINUE")
                .send()
        };
        let wrong = "00000000-0000-4000-8000-000000000000";
        let (code, message) = code_and_message(complete(wrong).await.expect_err("a wrong token"));
        ensure!(code == "ValidationError", "{code}");
        ensure!(
            message == format!("No active Lifecycle Action found with token {wrong}"),
            "{message}"
        );
        complete(action.token.as_str()).await?;
        let (code, message) =
            code_and_message(complete(action.token.as_str()).await.expect_err("twice"));
        ensure!(code == "ValidationError", "{code}");
        ensure!(
            message.starts_with("No active Lifecycle Action found with token"),
            "{message}"
        );
        let by_instance = fixture
            .asg
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&fixture.name)
            .lifecycle_hook_name("drain")
            .instance_id(&id)
            .send()
            .await
            .expect_err("a heartbeat after completion");
        let (code, message) = code_and_message(by_instance);
        ensure!(code == "ValidationError", "{code}");
        ensure!(
            message == format!("No active Lifecycle Action found with instance ID {id}"),
            "{message}"
        );
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_launch_completed_with_abandon_is_terminated_and_replaced() -> Result<()> {
    let fixture = Fixture::new("abandon-launch", 0, None).await?;
    let outcome = async {
        fixture
            .put_hook("admit", LAUNCHING, 3600, "CONTINUE")
            .await?;
        fixture.set_desired(1).await?;
        let first = fixture.next_action().await?;
        ensure!(first.transition == Transition::Launching, "{first:?}");
        let id = first.instance_id.as_str().to_owned();
        fixture
            .wait_state(&id, Some("Pending:Wait"), Duration::from_secs(30))
            .await?;
        fixture
            .complete("admit", first.token.as_str(), "ABANDON")
            .await?;
        fixture
            .wait_state(&id, None, Duration::from_secs(30))
            .await?;
        let second = fixture.next_action().await?;
        ensure!(second.transition == Transition::Launching, "{second:?}");
        ensure!(
            second.instance_id.as_str() != id,
            "the replacement is a new instance"
        );
        fixture
            .asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(&fixture.name)
            .lifecycle_hook_name("admit")
            .instance_id(second.instance_id.as_str())
            .lifecycle_action_result("CONTINUE")
            .send()
            .await?;
        let ids = fixture.wait_in_service(1).await?;
        ensure!(ids == [second.instance_id.as_str()], "{ids:?}");
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_launch_hook_timing_out_with_abandon_replaces_the_instance() -> Result<()> {
    let fixture = Fixture::new("launch-timeout", 0, None).await?;
    let outcome = async {
        fixture.put_hook("admit", LAUNCHING, 60, "ABANDON").await?;
        fixture.set_desired(1).await?;
        let first = fixture.next_action().await?;
        // Nobody completes it: after one real second (60 API seconds) ABANDON applies.
        fixture
            .wait_state(first.instance_id.as_str(), None, Duration::from_secs(30))
            .await?;
        let second = fixture.next_action().await?;
        ensure!(
            second.instance_id != first.instance_id,
            "a replacement was launched"
        );
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn scaling_the_workers_out_from_two_to_four_makes_two_new_ready_swarm_nodes() -> Result<()> {
    let fixture = Fixture::new("scale-out", 2, Some(JOIN)).await?;
    let outcome = async {
        let before: BTreeSet<String> = fixture.wait_in_service(2).await?.into_iter().collect();
        fixture.set_desired(4).await?;
        let after: BTreeSet<String> = fixture.wait_in_service(4).await?.into_iter().collect();
        let new: Vec<&String> = after.difference(&before).collect();
        ensure!(new.len() == 2, "{new:?}");
        let manager = Testbed::load()?.manager().await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        for id in after {
            loop {
                let node = docker::node_by_instance_id(&manager, &id).await?;
                if node.as_ref().is_some_and(docker::is_ready) {
                    break;
                }
                ensure!(
                    Instant::now() < deadline,
                    "instance {id} is not a ready swarm node"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn scale_in_balances_the_zones_then_takes_the_oldest_launch_configuration() -> Result<()> {
    let fixture = Fixture::new("scale-in", 3, None).await?;
    let outcome = async {
        // Three instances over zones a and b: two in one, one in the other.
        let instances = fixture.instances().await?;
        let zone_of = |id: &str| instances.iter().find(|i| i.0 == id).map(|i| i.2.clone());
        let count = |zone: &str| instances.iter().filter(|i| i.2 == zone).count();
        let crowded = if count("us-east-1a") == 2 {
            "us-east-1a"
        } else {
            "us-east-1b"
        };
        fixture.set_desired(2).await?;
        let left = fixture.wait_in_service(2).await?;
        let gone: Vec<&(String, String, String, String)> =
            instances.iter().filter(|i| !left.contains(&i.0)).collect();
        ensure!(
            gone.len() == 1 && zone_of(&gone[0].0).as_deref() == Some(crowded),
            "{gone:?} from {instances:?}"
        );

        // A newer launch configuration, two more instances (one per zone), then scale-in by
        // one: the zones tie, so an instance of the old configuration goes.
        let newer = format!("{}-v2", fixture.name);
        fixture
            .asg
            .create_launch_configuration()
            .launch_configuration_name(&newer)
            .image_id("ami-0e2e2")
            .instance_type("t3.micro")
            .send()
            .await?;
        fixture
            .asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(&fixture.name)
            .launch_configuration_name(&newer)
            .desired_capacity(4)
            .send()
            .await?;
        fixture.wait_in_service(4).await?;
        fixture.set_desired(3).await?;
        fixture.wait_in_service(3).await?;
        let configurations: Vec<String> = fixture
            .instances()
            .await?
            .into_iter()
            .map(|i| i.3)
            .collect();
        ensure!(
            configurations.iter().filter(|c| **c == newer).count() == 2,
            "the old configuration should have lost an instance: {configurations:?}"
        );
        fixture
            .asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(&fixture.name)
            .launch_configuration_name(&fixture.name)
            .send()
            .await?;
        fixture
            .asg
            .delete_launch_configuration()
            .launch_configuration_name(&newer)
            .send()
            .await?;
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn instance_metadata_answers_each_node_with_its_own_identity_and_only_with_a_token()
-> Result<()> {
    let bed = Testbed::load()?;
    let node = bed.node("w1")?;
    // Asked from inside the node's namespace, as a process on the instance would.
    let script = r#"
import json, sys, urllib.request, urllib.error
base = sys.argv[1]
def call(method, path, headers):
    request = urllib.request.Request(base + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
status, token = call("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
answers = {"token": status, "no_token": call("GET", "/latest/meta-data/instance-id", {})[0]}
for path in ["instance-id", "local-ipv4", "placement/availability-zone", "autoscaling/target-lifecycle-state", "tags/instance/aws:autoscaling:groupName"]:
    answers[path] = call("GET", "/latest/meta-data/" + path, {"X-aws-ec2-metadata-token": token})
print(json.dumps(answers))
"#;
    let output = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.netns()))
        .args(["python3", "-c", script])
        .arg(testbed::autoscaling::imds_endpoint())
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        answers["token"] == 200 && answers["no_token"] == 401,
        "{answers}"
    );
    ensure!(
        answers["instance-id"] == serde_json::json!([200, node.instance_id]),
        "{answers}"
    );
    ensure!(
        answers["local-ipv4"] == serde_json::json!([200, node.ip.to_string()]),
        "{answers}"
    );
    ensure!(
        answers["placement/availability-zone"][1]
            .as_str()
            .is_some_and(|z| z.starts_with("us-east-1")),
        "{answers}"
    );
    ensure!(
        answers["autoscaling/target-lifecycle-state"] == serde_json::json!([200, "InService"]),
        "{answers}"
    );
    ensure!(
        answers["tags/instance/aws:autoscaling:groupName"]
            == serde_json::json!([200, "testbed-workers"]),
        "{answers}"
    );
    Ok(())
}
