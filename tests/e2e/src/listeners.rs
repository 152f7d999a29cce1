//! The listener sync as its tests and its demo drive it: a processor keeping the test bed's
//! network load balancer (`testbed-nlb`) in step with the swarm's published ports, for the
//! test bed's two groups, and what a client of the load balancer sees.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use bollard::Docker;
use testbed::network_balancer;

use crate::fixture::Fixture;
use crate::processor::ProcessorProcess;

/// The groups the sync attaches its target groups to: the test bed's own, whose instances
/// are the swarm's nodes.
pub const GROUPS: &str = "testbed-managers,testbed-workers";

/// A listener of the load balancer, as moto lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its ARN.
    pub arn: String,
    /// Its port.
    pub port: u16,
    /// `TCP`, `UDP`, `TCP_UDP`, `TLS`.
    pub protocol: String,
    /// The target group it forwards to.
    pub target_group: String,
}

/// The load balancer, through moto.
pub struct Balancer {
    /// The ELBv2 client.
    pub elb: Elb,
    /// The load balancer.
    pub described: network_balancer::Described,
}

impl Balancer {
    /// The test bed's load balancer.
    pub async fn new() -> Result<Self> {
        let elb = Elb::new(&crate::sdk_config().await?);
        let described = network_balancer::describe(&elb).await?;
        Ok(Self { elb, described })
    }

    /// The environment of a processor whose listener sync names its target groups from
    /// `prefix`, over the test bed's two groups.
    pub fn settings(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SWARM_GROUPS", GROUPS.to_owned()),
            ("LISTENERS_LOAD_BALANCER_ARN", self.described.arn.clone()),
            ("LISTENERS_VPC_ID", self.described.vpc.clone()),
            ("LISTENERS_PREFIX", prefix.to_owned()),
        ]
    }

    /// A processor of `fixture`'s queue running the listener sync with `prefix`.
    pub fn processor(&self, fixture: &Fixture, prefix: &str) -> Result<ProcessorProcess> {
        let settings = self.settings(prefix);
        let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ProcessorProcess::start(fixture, &extra)
    }

    /// Its listeners now.
    pub async fn listeners(&self) -> Result<Vec<Seen>> {
        let answer = self
            .elb
            .describe_listeners()
            .load_balancer_arn(&self.described.arn)
            .send()
            .await
            .context("DescribeListeners")?;
        Ok(answer
            .listeners()
            .iter()
            .map(|l| Seen {
                arn: l.listener_arn().unwrap_or_default().to_owned(),
                port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                protocol: l
                    .protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                target_group: l
                    .default_actions()
                    .iter()
                    .find_map(|a| a.target_group_arn())
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect())
    }

    /// The listener on `port`, if any.
    pub async fn listener(&self, port: u16) -> Result<Option<Seen>> {
        Ok(self.listeners().await?.into_iter().find(|l| l.port == port))
    }

    /// Waits until the listener on `port` is there (`present`) or gone.
    pub async fn wait_listener(&self, port: u16, present: bool, timeout: Duration) -> Result<()> {
        crate::wait::until(timeout, Duration::from_millis(100), async || {
            let there = self.listener(port).await?.is_some();
            Ok(if there == present {
                Ok(())
            } else {
                Err(format!(
                    "the listener on {port} is still {}",
                    if there { "there" } else { "missing" }
                ))
            })
        })
        .await
    }
}

/// The load balancer's address for `port`, as a client reaches it.
pub fn address(port: u16) -> SocketAddr {
    (network_balancer::address(), port).into()
}

/// Whether `port` answers an HTTP request through the load balancer; the answer.
pub fn answer(port: u16) -> Option<String> {
    match testbed::http::get(address(port), "/", Duration::from_secs(1)) {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

/// Waits until `port` answers through the load balancer; how long that took.
pub async fn wait_answers(port: u16, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    crate::wait::until(timeout, Duration::from_millis(50), async || {
        let answered = tokio::task::spawn_blocking(move || answer(port)).await?;
        Ok(answered.map(drop).ok_or(format!(
            "port {port} does not answer through the load balancer"
        )))
    })
    .await?;
    Ok(started.elapsed())
}

/// Waits until `port` no longer answers through the load balancer; how long that took.
pub async fn wait_silent(port: u16, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    crate::wait::until(timeout, Duration::from_millis(50), async || {
        let answered = tokio::task::spawn_blocking(move || answer(port)).await?;
        Ok(match answered {
            None => Ok(()),
            Some(_) => Err(format!(
                "port {port} still answers through the load balancer"
            )),
        })
    })
    .await?;
    Ok(started.elapsed())
}

/// Removes the services `names` (those already gone are no error).
pub async fn remove_services(manager: &Docker, names: &[&str]) {
    for name in names {
        let _ = manager.delete_service(name).await;
    }
}
