//! The lifecycle processor end to end: `lifecycle serve` as a process of its own, a group of
//! the test's own in the Auto Scaling emulator whose instances are real swarm nodes, moto's
//! SQS, and services that must keep running while nodes go.

use anyhow::{Context, Result, ensure};
use aws_sdk_sqs::types::QueueAttributeName;
use bollard::Docker;
use e2e::fixture::{Fixture, JOIN, TERMINATING, history_of};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::time::{Duration, Instant};
use testbed::{Testbed, docker};

/// Requires that the instance's action was completed with CONTINUE exactly once; the error
/// shows its history.
async fn completed_once(instance_id: &str) -> Result<()> {
    let history = history_of(instance_id).await?;
    let completions = history
        .iter()
        .filter(|h| h.ends_with("completed with CONTINUE"))
        .count();
    ensure!(completions == 1, "{completions} completions: {history:?}");
    Ok(())
}

/// Requires that the instance has no node in the swarm any more.
async fn out_of_the_swarm(manager: &bollard::Docker, instance_id: &str) -> Result<()> {
    ensure!(
        docker::node_by_instance_id(manager, instance_id)
            .await?
            .is_none(),
        "the node of {instance_id} is still in the swarm"
    );
    Ok(())
}

/// Waits until the queue holds nothing, visible or in flight.
async fn wait_queue_empty(fixture: &Fixture, timeout: Duration) -> Result<()> {
    e2e::wait::until(timeout, Duration::from_millis(250), async || {
        let attributes = fixture
            .sqs
            .get_queue_attributes()
            .queue_url(&fixture.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        let count = |name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let (visible, hidden) = (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        );
        Ok(if visible + hidden == 0 {
            Ok(())
        } else {
            Err(format!(
                "the queue still holds {visible} visible and {hidden} in-flight messages"
            ))
        })
    })
    .await
}

/// The swarm node id of an instance, once it has joined.
async fn node_id(manager: &Docker, instance_id: &str) -> Result<String> {
    docker::node_by_instance_id(manager, instance_id)
        .await?
        .and_then(|n| n.id)
        .with_context(|| format!("instance {instance_id} is not in the swarm"))
}

/// Follows the instance until its action ends, and returns what the swarm looked like at
/// that moment: whether its node was still in the swarm, and how many tasks of `service` ran.
async fn at_completion(
    fixture: &Fixture,
    manager: &Docker,
    instance_id: &str,
    service: &str,
    timeout: Duration,
) -> Result<(bool, usize)> {
    e2e::wait::until(timeout, Duration::from_millis(50), async || {
        let state = fixture.state_of(instance_id).await?;
        if matches!(state.as_deref(), Some("Terminating" | "Terminating:Wait")) {
            return Ok(Err(format!("instance {instance_id} is still {state:?}")));
        }
        let in_swarm = docker::node_by_instance_id(manager, instance_id)
            .await?
            .is_some();
        let running = workload::running_on(manager, service).await?.len();
        Ok(Ok((in_swarm, running)))
    })
    .await
}

/// Waits until the processor has set the swarm node `node_id` to drain.
async fn wait_drain_started(manager: &Docker, node_id: &str) -> Result<()> {
    e2e::wait::until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || {
            let availability = manager
                .inspect_node(node_id)
                .await?
                .spec
                .and_then(|s| s.availability);
            Ok(
                if availability == Some(bollard::models::NodeSpecAvailabilityEnum::DRAIN) {
                    Ok(())
                } else {
                    Err(format!("the drain has not started: {availability:?}"))
                },
            )
        },
    )
    .await
}

/// A group `name` of one worker, with a processor started with `env` on it: terminates the
/// worker and checks the processor drained it: the node removed from the test bed's swarm
/// (the log says so), the action completed exactly once. Returns the processor's log.
async fn one_terminated_and_drained(name: &str, env: &[(&str, &str)]) -> Result<String> {
    one_terminated_and_drained_with(name, env, 600, async |_| Ok(()), async || Ok(())).await
}

/// [`one_terminated_and_drained`], its hook's heartbeat timeout `hook_timeout` (API
/// seconds), with `prepare` run on the group before the processor starts, and `check` run
/// while the processor still runs.
async fn one_terminated_and_drained_with(
    name: &str,
    env: &[(&str, &str)],
    hook_timeout: i32,
    prepare: impl AsyncFnOnce(&Fixture) -> Result<()>,
    check: impl AsyncFnOnce() -> Result<()>,
) -> Result<String> {
    let fixture = Fixture::new(name, 1, Some(JOIN)).await?;
    let outcome = async {
        prepare(&fixture).await?;
        let processor = ProcessorProcess::start(&fixture, env)?;
        fixture
            .put_hook("drain", TERMINATING, hook_timeout, "ABANDON")
            .await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        let manager = Testbed::load()?.manager().await?;
        workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;
        fixture.terminate(&instance).await?;
        fixture
            .wait_state(&instance, None, Duration::from_secs(60))
            .await?;
        completed_once(&instance).await?;
        out_of_the_swarm(&manager, &instance).await?;
        let log = processor.logged();
        ensure!(log.contains("removing the node"), "{log}");
        check().await?;
        Ok(log)
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn throttled_auto_scaling_calls_are_waited_out_inside_the_step() -> Result<()> {
    // Auto Scaling answers "Rate exceeded" to the first calls of this group's drain, as it
    // does to an account over its rate: the processor backs off and tries again within the
    // step; the drain completes once, and no step fails for it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let log = one_terminated_and_drained_with(
        "throttled",
        &[("METRICS_ADDR", &addr.to_string())],
        // An hour of API time (a minute here): backing off from four throttled calls takes
        // seconds, longer than the usual test hook's ten.
        3600,
        async |fixture| {
            for (action, remaining) in [
                ("DescribeAutoScalingInstances", 2),
                ("CompleteLifecycleAction", 4),
            ] {
                let rule = serde_json::json!({"action": action, "group": fixture.name, "remaining": remaining});
                let (status, body) = tokio::task::spawn_blocking(move || {
                    testbed::http::post_json(
                        testbed::autoscaling::addr(),
                        "/emulator/throttle",
                        &rule.to_string(),
                        Duration::from_secs(5),
                    )
                })
                .await??;
                ensure!(status == 204, "the emulator refused to throttle: {status} {body}");
            }
            Ok(())
        },
        async || {
            let (_, text) = tokio::task::spawn_blocking(move || {
                testbed::http::get(addr, "/metrics", Duration::from_secs(5))
            })
            .await??;
            for line in [
                "swarm_lifecycle_calls_total{service=\"Auto Scaling\",api=\"CompleteLifecycleAction\",outcome=\"throttled\"} 4",
                "swarm_lifecycle_calls_total{service=\"Auto Scaling\",api=\"CompleteLifecycleAction\",outcome=\"ok\"} 1",
            ] {
                ensure!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
            }
            // Its first look was throttled too (the other throttled look may be another test's
            // processor's, asking about this group's instance once it is gone).
            let described = "swarm_lifecycle_calls_total{service=\"Auto Scaling\",api=\"DescribeAutoScalingInstances\",outcome=\"throttled\"} ";
            ensure!(
                text.lines()
                    .filter_map(|l| l.strip_prefix(described))
                    .any(|count| count.parse::<u64>().is_ok_and(|n| n >= 1)),
                "no throttled DescribeAutoScalingInstances in:\n{text}"
            );
            Ok(())
        },
    )
    .await?;
    ensure!(!log.contains("step failed"), "a step failed: {log}");
    Ok(())
}

#[tokio::test]
async fn serve_answers_on_its_metrics_port_with_what_a_drain_did() -> Result<()> {
    // A free port of this machine, for the processor to listen on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let metrics_addr = addr.to_string();
    one_terminated_and_drained_with(
        "metrics",
        &[("METRICS_ADDR", &metrics_addr)],
        600,
        async |_| Ok(()),
        async || {
            let (status, text) = tokio::task::spawn_blocking(move || {
                testbed::http::get(addr, "/metrics", Duration::from_secs(5))
            })
            .await??;
            ensure!(status == 200, "{status}: {text}");
            for line in [
                "swarm_lifecycle_drains_started_total 1",
                "swarm_lifecycle_actions_completed_total{transition=\"terminating\",result=\"CONTINUE\"} 1",
                "swarm_lifecycle_overhead_seconds_count 1",
                "swarm_lifecycle_action_seconds_count{transition=\"terminating\"} 1",
            ] {
                ensure!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
            }
            // The calls it made, by API and outcome, AWS and Docker alike.
            for call in [
                "swarm_lifecycle_calls_total{service=\"Auto Scaling\",api=\"CompleteLifecycleAction\",outcome=\"ok\"} 1",
                "swarm_lifecycle_calls_total{service=\"docker\",api=\"DELETE /nodes/ID\",outcome=\"ok\"} 1",
            ] {
                ensure!(text.lines().any(|l| l == call), "no `{call}` in:\n{text}");
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_terminated_worker_is_drained_its_replicas_run_elsewhere_and_its_action_is_completed_once()
-> Result<()> {
    let fixture = Fixture::new("drain-worker", 3, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-web", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(3).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        workload::deploy(
            &manager,
            &service,
            &fixture.name,
            4,
            2,
            false,
            Duration::from_secs(10),
        )
        .await?;
        let nodes = workload::wait_running(&manager, &service, 4).await?;
        fixture
            .put_hook("drain", TERMINATING, 600, "ABANDON")
            .await?;
        let processor = ProcessorProcess::start(&fixture, &[])?;
        // An instance whose node runs replicas.
        let victim = workload::instance_running_a_task(&manager, &instances, &nodes).await?;
        let victim_node = node_id(&manager, &victim).await?;
        fixture.terminate(&victim).await?;
        let (in_swarm, running) = at_completion(
            &fixture,
            &manager,
            &victim,
            &service,
            Duration::from_secs(60),
        )
        .await?;
        ensure!(
            !in_swarm,
            "the action was completed before the node left the swarm"
        );
        ensure!(
            running == 4,
            "the action was completed with {running} of 4 replicas running"
        );
        fixture
            .wait_state(&victim, None, Duration::from_secs(30))
            .await?;
        let nodes = workload::wait_running(&manager, &service, 4).await?;
        ensure!(
            !nodes.contains(&victim_node),
            "a replica still runs on the removed node"
        );
        completed_once(&victim).await?;
        wait_queue_empty(&fixture, Duration::from_secs(20)).await?;
        let log = processor.logged();
        ensure!(
            log.contains("draining the node") && log.contains("removing the node"),
            "{log}"
        );
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn the_same_action_delivered_three_times_and_a_processor_killed_mid_drain_give_one_drain_and_one_completion()
-> Result<()> {
    let fixture = Fixture::new("duplicates", 3, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-slow", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(3).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        // Tasks that ignore SIGTERM: each drain takes the 4 s stop grace period.
        workload::deploy(
            &manager,
            &service,
            &fixture.name,
            2,
            1,
            true,
            Duration::from_secs(4),
        )
        .await?;
        let nodes = workload::wait_running(&manager, &service, 2).await?;
        // A killed processor's messages come back only after their visibility timeout (and
        // moto's long poll can take longer): the hook must outlast that, as in production.
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let victim = workload::instance_running_a_task(&manager, &instances, &nodes).await?;
        let victim_node = node_id(&manager, &victim).await?;
        fixture.terminate(&victim).await?;
        // The notification, and two more copies of it: SQS delivers at least once.
        let action = fixture.next_action().await?;
        let body = fixture.notification_body(&action);
        for _ in 0..3 {
            fixture
                .sqs
                .send_message()
                .queue_url(&fixture.queue_url)
                .message_body(&body)
                .send()
                .await?;
        }
        let mut first = ProcessorProcess::start(&fixture, &[])?;
        // Killed (SIGKILL) once the drain has started, before it can finish.
        wait_drain_started(&manager, &victim_node).await?;
        first.kill();
        ensure!(
            fixture.state_of(&victim).await?.as_deref() == Some("Terminating:Wait"),
            "the action ended while the first processor ran: the test could not kill it mid-drain"
        );
        let second = ProcessorProcess::start(&fixture, &[])?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(60))
            .await?;
        completed_once(&victim).await?;
        out_of_the_swarm(&manager, &victim).await?;
        workload::wait_running(&manager, &service, 2).await?;
        wait_queue_empty(&fixture, Duration::from_secs(30)).await?;
        let log = second.logged();
        ensure!(
            log.contains("lifecycle action completed") || log.contains("had already ended"),
            "{log}"
        );
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_drain_that_outlives_the_hooks_heartbeat_timeout_is_kept_alive_by_heartbeats()
-> Result<()> {
    let fixture = Fixture::new("heartbeats", 2, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-slow", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(2).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        // The drain takes the 8 s stop grace period; the hook times out after 2 s (120 API
        // seconds) without a heartbeat, and would then ABANDON.
        workload::deploy(
            &manager,
            &service,
            &fixture.name,
            1,
            1,
            true,
            Duration::from_secs(8),
        )
        .await?;
        let nodes = workload::wait_running(&manager, &service, 1).await?;
        fixture
            .put_hook("drain", TERMINATING, 120, "ABANDON")
            .await?;
        let _processor = ProcessorProcess::start(&fixture, &[])?;
        let victim = workload::instance_running_a_task(&manager, &instances, &nodes).await?;
        let started = Instant::now();
        fixture.terminate(&victim).await?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(60))
            .await?;
        ensure!(
            started.elapsed() > Duration::from_secs(6),
            "the drain was quicker than the test assumes"
        );
        let history = history_of(&victim).await?;
        ensure!(
            !history.iter().any(|h| h.contains("Timeout")),
            "{history:?}"
        );
        completed_once(&victim).await?;
        ensure!(
            history.iter().filter(|h| h.ends_with("heartbeat")).count() >= 3,
            "{history:?}"
        );
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_service_that_cannot_be_placed_elsewhere_is_given_up_at_the_drain_deadline_loudly()
-> Result<()> {
    let fixture = Fixture::new("unplaceable", 1, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-pinned", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(1).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        workload::deploy(
            &manager,
            &service,
            &fixture.name,
            1,
            1,
            false,
            Duration::from_secs(10),
        )
        .await?;
        workload::wait_running(&manager, &service, 1).await?;
        fixture
            .put_hook("drain", TERMINATING, 600, "ABANDON")
            .await?;
        let processor = ProcessorProcess::start(&fixture, &[("DRAIN_DEADLINE_SECONDS", "5")])?;
        let victim = instances[0].clone();
        let started = Instant::now();
        fixture.terminate(&victim).await?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(60))
            .await?;
        ensure!(
            started.elapsed() >= Duration::from_secs(4),
            "completed before the deadline"
        );
        completed_once(&victim).await?;
        let log = processor.logged();
        let warning = log
            .lines()
            .find(|l| l.contains("DRAIN DEADLINE PASSED"))
            .with_context(|| format!("no deadline warning in:\n{log}"))?;
        ensure!(
            warning.contains(&service) && warning.contains("WARN"),
            "{warning}"
        );
        out_of_the_swarm(&manager, &victim).await?;
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn malformed_and_foreign_messages_mixed_with_a_good_one_neither_crash_nor_vanish()
-> Result<()> {
    let fixture = Fixture::new("mixed-batch", 1, Some(JOIN)).await?;
    let dlq_name = format!("{}-dlq", fixture.name);
    let dlq_url = fixture
        .sqs
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await?
        .queue_url
        .context("no url")?;
    let outcome = async {
        fixture
            .sqs
            .set_queue_attributes()
            .queue_url(&fixture.queue_url)
            .attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({
                    "deadLetterTargetArn": format!("arn:aws:sqs:us-east-1:123456789012:{dlq_name}"),
                    "maxReceiveCount": 2,
                })
                .to_string(),
            )
            .send()
            .await?;
        let malformed = [
            "not json at all",
            "[1, 2, 3]",
            "{}",
            r#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0123456789abcdef0"}"#,
        ];
        let foreign = e2e::fixture::foreign_action();
        for body in malformed.iter().copied().chain([foreign.as_str()]) {
            fixture.sqs.send_message().queue_url(&fixture.queue_url).message_body(body).send().await?;
        }
        fixture.put_hook("drain", TERMINATING, 600, "ABANDON").await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        fixture.terminate(&instance).await?;
        let processor = ProcessorProcess::start(&fixture, &[("VISIBILITY_TIMEOUT_SECONDS", "1")])?;
        fixture.wait_state(&instance, None, Duration::from_secs(60)).await?;
        completed_once(&instance).await?;
        // The malformed ones reach the dead-letter queue after two receives; nothing else does.
        let mut dead = Vec::new();
        // Long polls back to back: the receive itself waits.
        e2e::wait::until(Duration::from_secs(40), Duration::ZERO, async || {
            let received = fixture
                .sqs
                .receive_message()
                .queue_url(&dlq_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            dead.extend(received.messages.unwrap_or_default().into_iter().filter_map(|m| m.body));
            Ok(if dead.len() >= malformed.len() { Ok(()) } else { Err(format!("dead-lettered {dead:?}")) })
        })
        .await?;
        dead.sort();
        let mut expected: Vec<String> = malformed.iter().map(|b| (*b).to_owned()).collect();
        expected.sort();
        ensure!(dead == expected, "dead-lettered {dead:?}, expected {expected:?}");
        wait_queue_empty(&fixture, Duration::from_secs(20)).await?;
        ensure!(history_of(e2e::fixture::FOREIGN_INSTANCE).await?.is_empty(), "the foreign action was touched");
        let log = processor.logged();
        ensure!(log.contains("not one of this stack's groups"), "{log}");
        ensure!(log.matches("malformed message kept for the dead-letter queue").count() >= malformed.len(), "{log}");
        ensure!(log.contains("not json at all"), "a rejected body must be logged");
        Ok(())
    }
    .await;
    fixture
        .sqs
        .delete_queue()
        .queue_url(&dlq_url)
        .send()
        .await?;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn the_processor_reaches_the_managers_over_mutual_tls_past_a_dead_endpoint() -> Result<()> {
    let bed = Testbed::load()?;
    // A first endpoint where nothing answers, then the managers' TLS ports.
    let hosts: Vec<String> = std::iter::once("tcp://10.77.0.250:2376".to_owned())
        .chain(bed.managers().map(testbed::Node::docker_tls_host))
        .collect();
    let client = testbed::tls::client_dir();
    let hosts = hosts.join(",");
    let env = [
        ("DOCKER_HOSTS", hosts.as_str()),
        ("DOCKER_CERT_PATH", &client.display().to_string()),
    ];
    one_terminated_and_drained("tls", &env).await?;
    Ok(())
}

#[tokio::test]
async fn a_manager_refuses_a_client_without_a_certificate_and_the_processor_refuses_a_manager_of_another_ca()
-> Result<()> {
    let bed = Testbed::load()?;
    let m1 = bed.node("m1")?;
    let ca = testbed::tls::client_dir().join("ca.pem");
    // No client certificate: the manager ends the handshake.
    let script = "import socket, ssl, sys\n\
        ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
        try:\n    s = ctx.wrap_socket(socket.create_connection((sys.argv[2], 2376), timeout=30), server_hostname=sys.argv[2])\n    s.sendall(b'GET /_ping HTTP/1.0\\r\\n\\r\\n')\n    print('answered', s.recv(64))\n\
        except (ssl.SSLError, ConnectionError) as e:\n    print('refused', e)\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script, &ca.display().to_string(), &m1.ip.to_string()])
        .output()?;
    let said = String::from_utf8_lossy(&output.stdout);
    ensure!(
        said.starts_with("refused"),
        "without a client certificate: {said} {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The processor's own certificate but another CA: the manager's certificate is refused.
    let rogue = std::env::temp_dir().join(format!("e2e-rogue-ca-{}", std::process::id()));
    swarm_aws::pki::Authority::generate()?
        .issue_client()?
        .write_to(&rogue)?;
    let client = testbed::tls::client_dir();
    let docker = Docker::connect_with_ssl(
        &m1.docker_tls_host(),
        &client.join("key.pem"),
        &client.join("cert.pem"),
        &rogue.join("ca.pem"),
        5,
        bollard::API_DEFAULT_VERSION,
    )?;
    let ping = docker.ping().await;
    std::fs::remove_dir_all(&rogue)?;
    ensure!(ping.is_err(), "a manager signed by another CA was trusted");
    // And with the right CA, the same client is let in.
    let docker = Docker::connect_with_ssl(
        &m1.docker_tls_host(),
        &client.join("key.pem"),
        &client.join("cert.pem"),
        &client.join("ca.pem"),
        5,
        bollard::API_DEFAULT_VERSION,
    )?;
    docker
        .ping()
        .await
        .context("the processor's certificate was refused")?;
    Ok(())
}

#[tokio::test]
async fn sigterm_mid_drain_releases_the_message_at_once_and_another_processor_finishes()
-> Result<()> {
    let fixture = Fixture::new("sigterm", 3, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-slow", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(3).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        // Tasks that ignore SIGTERM: the drain takes the 6 s stop grace period.
        workload::deploy(
            &manager,
            &service,
            &fixture.name,
            2,
            1,
            true,
            Duration::from_secs(6),
        )
        .await?;
        let nodes = workload::wait_running(&manager, &service, 2).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        // A long visibility timeout: only an explicit release makes the message visible soon.
        let mut first = ProcessorProcess::start(&fixture, &[("VISIBILITY_TIMEOUT_SECONDS", "30")])?;
        let victim = workload::instance_running_a_task(&manager, &instances, &nodes).await?;
        let victim_node = node_id(&manager, &victim).await?;
        fixture.terminate(&victim).await?;
        wait_drain_started(&manager, &victim_node).await?;
        let stopping = Instant::now();
        let status = first.stop()?;
        ensure!(status.success(), "serve exited with {status} on SIGTERM");
        ensure!(
            stopping.elapsed() < Duration::from_secs(5),
            "serve took {:?} to stop",
            stopping.elapsed()
        );
        ensure!(
            first.logged().contains("released for another consumer"),
            "{}",
            first.logged()
        );
        // Visible again now, not in 30 s.
        let visible = fixture
            .sqs
            .receive_message()
            .queue_url(&fixture.queue_url)
            .wait_time_seconds(5)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        ensure!(
            visible.len() == 1,
            "the released message is not visible: {visible:?}"
        );
        let handle = visible[0]
            .receipt_handle
            .clone()
            .context("no receipt handle")?;
        fixture
            .sqs
            .change_message_visibility()
            .queue_url(&fixture.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await?;
        let _second = ProcessorProcess::start(&fixture, &[])?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(60))
            .await?;
        completed_once(&victim).await?;
        wait_queue_empty(&fixture, Duration::from_secs(20)).await?;
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn the_processor_finds_the_managers_in_the_cluster_record_and_its_certificate_in_a_secret()
-> Result<()> {
    // No DOCKER_HOSTS: the managers come from the record the bootstrap wrote, and the client
    // certificate from its secret, as the stack configures the Lambda function.
    let secret = e2e::secrets::put_client_certificate("directory").await?;
    let env = [
        ("DOCKER_HOSTS", ""),
        ("CLUSTER_TABLE", testbed::layout::CLUSTER_TABLE),
        ("DOCKER_TLS_SECRET", secret.as_str()),
    ];
    one_terminated_and_drained("directory", &env).await?;
    Ok(())
}

#[tokio::test]
async fn a_manager_of_another_swarm_named_first_is_never_used_and_the_node_is_drained_in_its_own()
-> Result<()> {
    // A node of the test bed that is the lone manager of a swarm of its own.
    let foreign = Testbed::allocate_node(testbed::Role::Worker)?;
    let outcome = async {
        foreign.provision().await?;
        swarm_aws::adapters::engine::LocalEngine::connect(&foreign.docker_host())?
            .init(&foreign.ip.to_string(), None)
            .await?;
        let hosts = format!("{},{}", foreign.docker_host(), e2e::manager_sockets()?);
        let env = [
            ("DOCKER_HOSTS", hosts.as_str()),
            ("CLUSTER_TABLE", testbed::layout::CLUSTER_TABLE),
        ];
        let log = one_terminated_and_drained("foreign", &env).await?;
        // Through the foreign manager the node would have looked absent, and the action been
        // completed at once with nothing drained and nothing removed.
        ensure!(log.contains("draining the node"), "{log}");
        Ok(())
    }
    .await;
    Testbed::destroy_node(&foreign.name)?;
    outcome
}
