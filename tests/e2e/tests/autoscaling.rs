//! Conformance of the test bed's Auto Scaling emulator, one test per documented behaviour,
//! each through `aws-sdk-autoscaling` (reaching the emulator by `AWS_ENDPOINT_URL_AUTO_SCALING`
//! only), with moto's SQS and the real swarm nodes of the test bed.
//!
//! Every test makes its own queue, launch configuration and group, so they run side by side.
//! The emulator runs at the test bed's time scale (60: one API minute per real second).

use anyhow::{Result, ensure};
use e2e::fixture::{
    Fixture, JOIN, LAUNCHING, TERMINATING, code_and_message, history_of, node_runs,
};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use swarm_aws::event::{LifecycleMessage, Transition};
use testbed::Testbed;

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
        let after: Vec<String> = after.into_iter().collect();
        e2e::workload::wait_joined(&manager, &after).await?;
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
        with urllib.request.urlopen(request, timeout=20) as response:
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
