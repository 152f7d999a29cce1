//! The listener sync end to end: two `lifecycle serve` processes keep the test bed's network
//! load balancer in step with the real swarm's published ports, and a client reaches every
//! port through it (HAProxy carrying each listener, the emulator registering the groups'
//! instances in each target group as Auto Scaling does).
//!
//! One test, its steps in order: every step changes the one swarm and the one load balancer.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, ProtocolEnum, TargetTypeEnum,
};
use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, ServiceSpec, TaskSpecContainerSpec,
};
use e2e::fixture::Fixture;
use e2e::listeners::{Balancer, GROUPS, remove_services, wait_answers, wait_silent};
use testbed::{Testbed, service};

/// How long a change may take to show here: far more than it takes (the demo measures it),
/// so that a loaded machine does not fail the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// A service of one idle task publishing `port` over `protocol` in `mode`, with `labels`.
fn publishing(
    name: &str,
    port: u16,
    protocol: EndpointPortConfigProtocolEnum,
    mode: EndpointPortConfigPublishModeEnum,
    labels: &[(&str, &str)],
) -> ServiceSpec {
    let container = TaskSpecContainerSpec {
        command: Some(vec!["sleep".to_owned(), "3600".to_owned()]),
        init: Some(true),
        ..Default::default()
    };
    ServiceSpec {
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        ),
        endpoint_spec: Some(EndpointSpec {
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(80),
                published_port: Some(i64::from(port)),
                protocol: Some(protocol),
                publish_mode: Some(mode),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..service::replicated(name, 1, container)
    }
}

/// Makes a listener on `port` as an operator would by hand, untagged, with its own target
/// group.
async fn foreign_listener(balancer: &Balancer, port: u16) -> Result<(String, String)> {
    let group_arn = target_group(balancer, &format!("by-hand-{port}"), port).await?;
    let listener = balancer
        .elb
        .create_listener()
        .load_balancer_arn(&balancer.described.arn)
        .port(i32::from(port))
        .protocol(ProtocolEnum::Tcp)
        .default_actions(
            ElbAction::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&group_arn)
                .build(),
        )
        .send()
        .await?;
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_owned();
    Ok((listener_arn, group_arn))
}

/// Makes a TCP target group `name` on `port` (or finds it: the same settings again), as an
/// operator would by hand; its ARN.
async fn target_group(balancer: &Balancer, name: &str, port: u16) -> Result<String> {
    let made = balancer
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Tcp)
        .port(i32::from(port))
        .vpc_id(&balancer.described.vpc)
        .target_type(TargetTypeEnum::Instance)
        .send()
        .await?;
    Ok(made.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_owned())
}

/// Waits until a processor's log holds every one of `parts` on one line.
async fn wait_logged(processor: &e2e::processor::ProcessorProcess, parts: &[&str]) -> Result<()> {
    e2e::wait::until(PATIENCE, Duration::from_millis(200), async || {
        let logged = processor.logged();
        Ok(
            if logged.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
                Ok(())
            } else {
                Err(format!("no log line with {parts:?}"))
            },
        )
    })
    .await
}

/// The target groups attached to each of the test bed's groups.
async fn attached() -> Result<Vec<Vec<String>>> {
    let autoscaling = aws_sdk_autoscaling::Client::new(&e2e::sdk_config().await?);
    let mut all = Vec::new();
    for group in GROUPS.split(',') {
        let answer = autoscaling
            .describe_traffic_sources()
            .auto_scaling_group_name(group)
            .send()
            .await?;
        all.push(
            answer
                .traffic_sources()
                .iter()
                .filter_map(|s| s.identifier().map(str::to_owned))
                .collect(),
        );
    }
    Ok(all)
}

#[tokio::test]
async fn every_published_port_is_reachable_through_the_load_balancer_and_only_those() -> Result<()>
{
    let bed = Testbed::load()?;
    let manager: Docker = bed.manager().await?;
    let balancer = Balancer::new().await?;
    let fixture = Fixture::new("listeners", 0, None).await?;
    // One prefix for every run: a run that failed halfway left what a rerun's sync adopts.
    let prefix = "e2e-listeners".to_owned();
    // Two processes sync at once, as two `serve` replicas (or a Lambda invocation beside one)
    // would: every change is made once.
    let first = balancer.processor(&fixture, &prefix)?;
    let second = balancer.processor(&fixture, &prefix)?;
    let names = [
        "lb-a",
        "lb-b",
        "lb-c",
        "lb-taken",
        "lb-bad",
        "lb-udp",
        "lb-ingress",
    ];
    remove_services(&manager, &names).await;

    // Two services published on two ports answer through the load balancer.
    service::deploy_web(&manager, "lb-a", 2, 8201).await?;
    service::deploy_web(&manager, "lb-b", 2, 8202).await?;
    wait_answers(8201, PATIENCE).await?;
    wait_answers(8202, PATIENCE).await?;

    // A third, published later, answers too (the demo measures how soon).
    service::deploy_web(&manager, "lb-c", 1, 8203).await?;
    let took = wait_answers(8203, PATIENCE).await?;
    eprintln!(
        "8203 answered {} ms after its service was created",
        took.as_millis()
    );

    // Each port has one listener, whatever two processes did, each forwarding to a target
    // group attached to both groups.
    let listeners = balancer.listeners().await?;
    for port in [8201, 8202, 8203] {
        let on_port: Vec<_> = listeners.iter().filter(|l| l.port == port).collect();
        ensure!(on_port.len() == 1, "port {port}: {on_port:?}");
        let groups = attached().await?;
        ensure!(
            groups.iter().all(|g| g.contains(&on_port[0].target_group)),
            "port {port}'s target group is not attached to both groups: {groups:?}"
        );
    }

    // A listener made by hand is left alone, and a service publishing its port is refused,
    // saying why.
    let (by_hand, by_hand_group) = foreign_listener(&balancer, 8299).await?;
    service::create(
        &manager,
        publishing(
            "lb-taken",
            8299,
            EndpointPortConfigProtocolEnum::TCP,
            EndpointPortConfigPublishModeEnum::HOST,
            &[],
        ),
    )
    .await?;
    wait_logged(&first, &["not served", "8299", "lb-taken"]).await?;
    let listener = balancer.listener(8299).await?;
    ensure!(
        listener.as_ref().map(|l| l.arn.as_str()) == Some(by_hand.as_str()),
        "the listener made by hand was changed: {listener:?}"
    );

    // A certificate label that cannot be read is named in a warning, and its service's port
    // gets nothing.
    service::create(
        &manager,
        publishing(
            "lb-bad",
            8204,
            EndpointPortConfigProtocolEnum::TCP,
            EndpointPortConfigPublishModeEnum::HOST,
            &[("com.docker.aws.lb.arn", "my-certificate")],
        ),
    )
    .await?;
    wait_logged(&first, &["certificate label cannot be read", "lb-bad"]).await?;
    ensure!(
        balancer.listener(8204).await?.is_none(),
        "8204 got a listener"
    );

    // UDP and the ingress routing mesh: the control plane (no UDP in the test bed's HAProxy,
    // no IPVS for the mesh), each its listener of the right protocol.
    service::create(
        &manager,
        publishing(
            "lb-udp",
            5353,
            EndpointPortConfigProtocolEnum::UDP,
            EndpointPortConfigPublishModeEnum::HOST,
            &[],
        ),
    )
    .await?;
    service::create(
        &manager,
        publishing(
            "lb-ingress",
            8205,
            EndpointPortConfigProtocolEnum::TCP,
            EndpointPortConfigPublishModeEnum::INGRESS,
            &[],
        ),
    )
    .await?;
    balancer.wait_listener(5353, true, PATIENCE).await?;
    balancer.wait_listener(8205, true, PATIENCE).await?;
    let protocols: Vec<(u16, String)> = balancer
        .listeners()
        .await?
        .into_iter()
        .filter(|l| [5353, 8205].contains(&l.port))
        .map(|l| (l.port, l.protocol))
        .collect();
    ensure!(
        protocols.contains(&(5353, "UDP".to_owned()))
            && protocols.contains(&(8205, "TCP".to_owned())),
        "{protocols:?}"
    );

    // An unpublished port's listener goes, and the port stops answering.
    manager.delete_service("lb-b").await?;
    balancer.wait_listener(8202, false, PATIENCE).await?;
    wait_silent(8202, PATIENCE).await?;
    ensure!(
        e2e::listeners::answer(8201).is_some(),
        "8201 stopped answering when 8202 went"
    );

    // Everything of the sync's goes with the services; the listener made by hand stays.
    // (Other tests' services may publish other ports: only these are looked at.)
    remove_services(&manager, &names).await;
    let ours = [8201, 8202, 8203, 8204, 8205, 5353, 8299];
    e2e::wait::until(PATIENCE, Duration::from_millis(200), async || {
        let left: Vec<u16> = balancer
            .listeners()
            .await?
            .iter()
            .map(|l| l.port)
            .filter(|p| ours.contains(p))
            .collect();
        Ok(if left == [8299] {
            Ok(())
        } else {
            Err(format!("listeners left: {left:?}"))
        })
    })
    .await?;
    let of_ours = |arn: &String| {
        arn.contains(&format!("{prefix}-")) && ours.iter().any(|p| arn.contains(&format!("-{p}/")))
    };
    e2e::wait::until(PATIENCE, Duration::from_millis(200), async || {
        let groups = attached().await?;
        let described = balancer.elb.describe_target_groups().send().await?;
        let left: Vec<String> = described
            .target_groups()
            .iter()
            .filter_map(|g| g.target_group_arn().map(str::to_owned))
            .filter(of_ours)
            .collect();
        Ok(
            if groups.iter().all(|g| !g.iter().any(of_ours)) && left.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the sync's target groups are still attached ({groups:?}) or there ({left:?})"
                ))
            },
        )
    })
    .await?;
    for processor in [&first, &second] {
        let logged = processor.logged();
        ensure!(
            !logged.contains("panicked") && !logged.contains(" ERROR "),
            "{logged}"
        );
    }
    balancer
        .elb
        .delete_listener()
        .listener_arn(&by_hand)
        .send()
        .await?;
    balancer
        .elb
        .delete_target_group()
        .target_group_arn(&by_hand_group)
        .send()
        .await?;
    drop((first, second));
    fixture.remove().await
}

/// The test bed's moto answers a repeated `CreateListener` and `CreateTargetGroup` as the
/// API reference says ELB does (moto alone does not: tests/testbed/moto/server.py): the same
/// settings again return what exists; a listener of other settings on a taken port is
/// refused with `DuplicateListener`.
#[tokio::test]
async fn moto_answers_a_repeated_create_as_elb_does() -> Result<()> {
    let balancer = Balancer::new().await?;
    let port: u16 = 8290;
    let name = format!("conformance-{port}");
    let create_group = async || target_group(&balancer, &name, port).await;
    let group = create_group().await?;
    ensure!(
        create_group().await? == group,
        "a second CreateTargetGroup made another"
    );
    let create_listener = async |protocol: ProtocolEnum| {
        balancer
            .elb
            .create_listener()
            .load_balancer_arn(&balancer.described.arn)
            .port(i32::from(port))
            .protocol(protocol)
            .default_actions(
                ElbAction::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(&group)
                    .build(),
            )
            .send()
            .await
    };
    let listener = create_listener(ProtocolEnum::Tcp).await?.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_owned();
    let again = create_listener(ProtocolEnum::Tcp).await?;
    ensure!(
        again.listeners()[0].listener_arn() == Some(listener.as_str()),
        "a second CreateListener with the same settings made another"
    );
    let other = create_listener(ProtocolEnum::TcpUdp).await;
    let code = other
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .and_then(|e| aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata::code(e));
    ensure!(code == Some("DuplicateListener"), "{other:?}");
    balancer
        .elb
        .delete_listener()
        .listener_arn(&listener)
        .send()
        .await?;
    balancer
        .elb
        .delete_target_group()
        .target_group_arn(&group)
        .send()
        .await?;
    Ok(())
}
