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

/// How the demo's run goes (`scripts/demo.sh listeners`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests a second to each of the two services published from the start.
    pub rate: u32,
    /// Services published, then unpublished, one after another, while the load runs.
    pub rounds: u16,
}

/// What the demo measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Each round's port, from its service created to its listener in moto (the sync's part).
    pub publish_to_listener_ms: Vec<u64>,
    /// Each round's port, from its service created to its first answer through the load
    /// balancer (the sync, the listener's HAProxy starting, the targets' health checks).
    pub publish_to_first_answer_ms: Vec<u64>,
    /// Their median.
    pub publish_to_first_answer_ms_p50: u64,
    /// Their maximum.
    pub publish_to_first_answer_ms_max: u64,
    /// Each round's port, from its service removed to its listener gone from moto.
    pub unpublish_to_gone_ms: Vec<u64>,
    /// Their maximum.
    pub unpublish_to_gone_ms_max: u64,
    /// Each round's port, from its service removed to no answer through the load balancer.
    pub unpublish_to_silent_ms: Vec<u64>,
    /// Requests to the two services published all along (while the others came and went).
    pub requests_total: usize,
    /// Those that failed or timed out.
    pub requests_failed: usize,
    /// The first failures: seconds from the start, and what.
    pub failures: Vec<(f64, String)>,
    /// From the first request to the last round.
    pub total_seconds: f64,
    /// Each round on the timeline: publish → first answer, unpublish → gone.
    pub spans: Vec<crate::timeline::Span>,
    /// Nothing is expected here: what went wrong, and when.
    pub events: Vec<(f64, String)>,
    /// Every request (for the timeline; not written to the JSON).
    #[serde(skip)]
    pub samples: Vec<crate::load::Sample>,
}

crate::timeline_of!(Report);

/// The ports the services published all along take.
const STEADY: [u16; 2] = [8401, 8402];
/// The first port of the rounds' services.
const FIRST_ROUND_PORT: u16 = 8411;

/// The demo: two services published and under load through the network load balancer, then
/// `rounds` more published and unpublished one after another, each timed.
pub async fn run(
    options: &Options,
    progress: &mut dyn FnMut(&crate::demo::Progress),
) -> Result<Report> {
    let bed = testbed::Testbed::load()?;
    let manager = bed.manager().await?;
    let balancer = Balancer::new().await?;
    let fixture = Fixture::new("listeners-demo", 0, None).await?;
    let processor = balancer.processor(&fixture, "demo")?;
    let names: Vec<String> = STEADY
        .iter()
        .chain(
            (0..options.rounds)
                .map(|r| FIRST_ROUND_PORT + r)
                .collect::<Vec<_>>()
                .iter(),
        )
        .map(|port| format!("published-{port}"))
        .collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    remove_services(&manager, &all).await;
    for port in STEADY {
        testbed::service::deploy_web(&manager, &format!("published-{port}"), 3, port).await?;
    }
    for port in STEADY {
        wait_answers(port, Duration::from_secs(60)).await?;
    }

    let started = Instant::now();
    let loads: Vec<crate::load::Load> = STEADY
        .iter()
        .map(|&port| crate::load::Load::start(address(port), options.rate))
        .collect();
    let seconds = |at: Instant| at.duration_since(started).as_secs_f64();
    let mut report = Report {
        publish_to_listener_ms: Vec::new(),
        publish_to_first_answer_ms: Vec::new(),
        publish_to_first_answer_ms_p50: 0,
        publish_to_first_answer_ms_max: 0,
        unpublish_to_gone_ms: Vec::new(),
        unpublish_to_gone_ms_max: 0,
        unpublish_to_silent_ms: Vec::new(),
        requests_total: 0,
        requests_failed: 0,
        failures: Vec::new(),
        total_seconds: 0.0,
        spans: Vec::new(),
        events: Vec::new(),
        samples: Vec::new(),
    };
    let total = usize::from(options.rounds) * 2;
    for round in 0..options.rounds {
        let port = FIRST_ROUND_PORT + round;
        let name = format!("published-{port}");
        // Where the run is: steps done, what happens now, the steady load's requests.
        let mut say = |done: usize, phase: String| {
            let samples: Vec<_> = loads.iter().flat_map(|l| l.samples()).collect();
            let failed = samples.iter().filter(|s| s.error.is_some()).count();
            progress(&crate::demo::Progress {
                done,
                total,
                phase,
                requests: (samples.len(), failed),
            });
        };
        say(usize::from(round) * 2, format!("publishing {port}"));
        // Published: the listener in moto, then the first answer through the load balancer.
        let published = Instant::now();
        testbed::service::deploy_web(&manager, &name, 1, port).await?;
        let (listener, answered) = tokio::join!(
            balancer.wait_listener(port, true, Duration::from_secs(60)),
            wait_answers(port, Duration::from_secs(60)),
        );
        listener?;
        let answered = answered?;
        report.publish_to_listener_ms.push(
            // The listener showed no later than the answer: read its time from the log.
            listener_made_ms(&processor, port, published).unwrap_or(answered.as_millis() as u64),
        );
        report
            .publish_to_first_answer_ms
            .push(answered.as_millis() as u64);
        report.spans.push(crate::timeline::Span {
            label: format!("{port} published → answers"),
            start: seconds(published),
            end: seconds(published + answered),
        });
        say(usize::from(round) * 2 + 1, format!("unpublishing {port}"));
        // A little traffic on it, then unpublished: the listener goes, the port falls silent.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let removed = Instant::now();
        manager.delete_service(&name).await?;
        let (gone, silent) = tokio::join!(
            async {
                balancer
                    .wait_listener(port, false, Duration::from_secs(60))
                    .await
                    .map(|()| removed.elapsed())
            },
            wait_silent(port, Duration::from_secs(60)),
        );
        let (gone, silent) = (gone?, silent?);
        report.unpublish_to_gone_ms.push(gone.as_millis() as u64);
        report
            .unpublish_to_silent_ms
            .push(silent.as_millis() as u64);
        report.spans.push(crate::timeline::Span {
            label: format!("{port} removed → gone"),
            start: seconds(removed),
            end: seconds(removed + gone),
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut samples = Vec::new();
    for load in loads {
        samples.extend(load.stop().await);
    }
    samples.sort_by(|a, b| a.at.total_cmp(&b.at));
    report.total_seconds = started.elapsed().as_secs_f64();
    report.requests_total = samples.len();
    report.requests_failed = samples.iter().filter(|s| s.error.is_some()).count();
    report.failures = samples
        .iter()
        .filter_map(|s| s.error.clone().map(|e| ((s.at * 10.0).round() / 10.0, e)))
        .take(20)
        .collect();
    report.samples = samples;
    let mut sorted = report.publish_to_first_answer_ms.clone();
    sorted.sort_unstable();
    report.publish_to_first_answer_ms_p50 = sorted[sorted.len().saturating_sub(1) / 2];
    report.publish_to_first_answer_ms_max = sorted.last().copied().unwrap_or(0);
    report.unpublish_to_gone_ms_max = report
        .unpublish_to_gone_ms
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    remove_services(&manager, &all).await;
    drop(processor);
    fixture.remove().await?;
    Ok(report)
}

/// When the processor logged the listener on `port` made, in milliseconds after `since`.
fn listener_made_ms(processor: &ProcessorProcess, port: u16, since: Instant) -> Option<u64> {
    let since_wall = chrono::Utc::now() - chrono::Duration::from_std(since.elapsed()).ok()?;
    let logged = processor.logged();
    let line = logged
        .lines()
        .find(|l| l.contains("CreateListener") && l.contains(&format!("port: {port},")))?;
    let stamp = line.split_whitespace().next()?;
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    u64::try_from((at.with_timezone(&chrono::Utc) - since_wall).num_milliseconds()).ok()
}
