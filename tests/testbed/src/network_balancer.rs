//! The test bed's Network Load Balancer, `testbed-nlb`: moto holds it and what the stack's
//! listener sync makes on it (listeners, target groups: ELBv2 as moto implements it), the Auto
//! Scaling emulator keeps each target group's registrations as Auto Scaling does for attached
//! traffic sources ([`Targets`]), and HAProxy carries the traffic of each listener
//! ([`follow`]).
//!
//! **One HAProxy per listener**, started and stopped as the listeners come and go. HAProxy's
//! runtime API adds and removes servers but not frontends or backends: one process for all
//! would be reloaded on every listener change, losing the health state of every other
//! listener's servers and, with it, the "initial until healthy" step a new registration goes
//! through. A process per listener changes nothing but the listener that changed, and stops
//! with it, as the listener's port closes on AWS.
//!
//! Each process listens on the load balancer's own address on the bridge ([`address`]), as
//! the NLB's DNS name resolves to its own addresses, so a published port never meets the test
//! bed's own (moto's 5000, the emulator's 5001). TCP, `TCP_UDP` and TLS listeners are carried
//! as TCP (the test bed has no certificate moto's ACM would hand out with its key); UDP is not
//! carried (Debian's HAProxy has no UDP): those are proven on the control plane only.
//!
//! Health checks are TCP connects, as the sync's target groups ask (two in a row to change
//! state), every half second rather than every ten: the emulator's time scale.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;

use crate::balancer::{Proxy, Server};
use crate::layout;

/// The load balancer's name in moto.
pub const NAME: &str = "testbed-nlb";
/// The backend of each listener's HAProxy.
const BACKEND: &str = "targets";
/// How often the listeners are read from moto.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// The load balancer's address on the bridge.
pub fn address() -> Ipv4Addr {
    Ipv4Addr::new(layout::SUBNET[0], layout::SUBNET[1], layout::SUBNET[2], 250)
}

/// The load balancer as the stack's outputs name it: its ARN and VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its ARN.
    pub arn: String,
    /// Its VPC (moto's default one).
    pub vpc: String,
}

/// Makes the load balancer in moto unless it exists, in moto's default VPC and subnets with a
/// security group of its own, as the template does; run from the virtualenv's boto3, the one
/// client of the test bed that has EC2 (the subnets are EC2's).
pub fn create() -> Result<()> {
    let python = crate::moto::venv().join("bin/python");
    let script = r#"
import boto3, sys
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
elb = boto3.client("elbv2", endpoint_url=sys.argv[1], region_name="us-east-1")
try:
    elb.describe_load_balancers(Names=[sys.argv[2]])
    sys.exit(0)
except elb.exceptions.LoadBalancerNotFoundException:
    pass
vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
group = ec2.create_security_group(GroupName=sys.argv[2], Description="the load balancer", VpcId=vpc)["GroupId"]
elb.create_load_balancer(Name=sys.argv[2], Type="network", Scheme="internet-facing", Subnets=subnets, SecurityGroups=[group])
"#;
    let output = Command::new(&python)
        .args(["-c", script, &crate::moto::endpoint(), NAME])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "cannot make the test bed's load balancer in moto: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Its ARN and VPC, read from moto.
pub async fn describe(elb: &aws_sdk_elasticloadbalancingv2::Client) -> Result<Described> {
    let answer = elb
        .describe_load_balancers()
        .names(NAME)
        .send()
        .await
        .context("the test bed's load balancer is not in moto: run `testbed up`")?;
    let balancer = answer
        .load_balancers()
        .first()
        .context("moto lists no test bed load balancer")?;
    Ok(Described {
        arn: balancer.load_balancer_arn().unwrap_or_default().to_owned(),
        vpc: balancer.vpc_id().unwrap_or_default().to_owned(),
    })
}

/// One registration in a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// The node's address.
    pub ip: Ipv4Addr,
    /// Deregistering: no new connections, those open finish (the deregistration delay).
    pub draining: bool,
}

/// The registrations of the sync's target groups, by target group ARN then instance id, as
/// the emulator makes them for the groups they are attached to.
#[derive(Debug, Default)]
pub struct Targets {
    by_group: Mutex<BTreeMap<String, BTreeMap<String, Target>>>,
}

impl Targets {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Target>>> {
        // A panic while holding it leaves plain data behind: still usable.
        self.by_group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers `instance` at `ip` in `target_group`. Idempotent.
    pub fn register(&self, target_group: &str, instance: &str, ip: Ipv4Addr) {
        self.lock()
            .entry(target_group.to_owned())
            .or_default()
            .insert(
                instance.to_owned(),
                Target {
                    ip,
                    draining: false,
                },
            );
    }

    /// Starts deregistering `instance` from `target_group` (no new connections).
    pub fn drain(&self, target_group: &str, instance: &str) {
        if let Some(target) = self
            .lock()
            .get_mut(target_group)
            .and_then(|g| g.get_mut(instance))
        {
            target.draining = true;
        }
    }

    /// Ends its deregistration: it is gone from `target_group`.
    pub fn remove(&self, target_group: &str, instance: &str) {
        if let Some(group) = self.lock().get_mut(target_group) {
            group.remove(instance);
        }
    }

    /// The registrations of `target_group`.
    pub fn of(&self, target_group: &str) -> BTreeMap<String, Target> {
        self.lock().get(target_group).cloned().unwrap_or_default()
    }

    /// Every target group's registrations.
    pub fn all(&self) -> BTreeMap<String, BTreeMap<String, Target>> {
        self.lock().clone()
    }
}

/// A listener as HAProxy carries it: its port, and the target group's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Carried {
    target_group: String,
    target_port: u16,
}

fn socket(port: u16) -> PathBuf {
    Path::new(layout::RUN_DIR).join(format!("nlb-{port}.sock"))
}

fn config(port: u16) -> PathBuf {
    Path::new(layout::DATA_DIR).join(format!("nlb-{port}.cfg"))
}

fn proxy(port: u16) -> Proxy {
    Proxy::new(socket(port), BACKEND, "L4OK")
}

/// Starts the HAProxy of the listener on `port`, no servers yet.
fn start_listener(port: u16) -> Result<()> {
    std::fs::create_dir_all(layout::RUN_DIR)?;
    let _ = std::fs::remove_file(socket(port));
    std::fs::write(
        config(port),
        format!(
            "global\n  stats socket {socket} mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             frontend listener\n  bind {address}:{port}\n  default_backend {BACKEND}\n\
             backend {BACKEND}\n  balance roundrobin\n  default-server inter 500ms fall 2 rise 2\n",
            socket = socket(port).display(),
            address = address(),
        ),
    )?;
    let mut command = Command::new(crate::balancer::which_haproxy()?);
    command.arg("-db").arg("-f").arg(config(port));
    crate::procs::start_server(
        command,
        &Path::new(layout::DATA_DIR).join(format!("nlb-{port}.log")),
        || proxy(port).answers(),
    )
}

/// Stops the HAProxy of the listener on `port` (found by its configuration file on its
/// command line): its port closes, its connections end.
fn stop_listener(port: u16) {
    let config = config(port).display().to_string();
    crate::procs::kill_until_gone(|| crate::procs::running(&config));
    let _ = std::fs::remove_file(socket(port));
}

/// Brings one listener's servers in line with its target group's registrations: a new one is
/// added in maintenance with its health checked, and put in rotation once its check passes
/// (an NLB target's `initial`); a draining one takes no new connection; one gone is removed.
fn carry(port: u16, registered: &BTreeMap<String, Target>, target_port: u16) -> Result<()> {
    let proxy = proxy(port);
    let servers: HashMap<String, Server> = proxy
        .servers()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    for (instance, target) in registered {
        match servers.get(instance) {
            None if !target.draining => proxy.add(instance, target.ip, target_port)?,
            None => {}
            Some(server)
                if target.draining && server.status != "DRAIN" && server.status != "MAINT" =>
            {
                proxy.drain(instance)?;
            }
            Some(server)
                if !target.draining
                    && server.status == "MAINT"
                    && server.check.starts_with(proxy.healthy) =>
            {
                proxy.enable(instance)?;
            }
            Some(_) => {}
        }
    }
    for name in servers
        .keys()
        .filter(|name| !registered.contains_key(*name))
    {
        proxy.remove(name)?;
    }
    Ok(())
}

/// Follows the load balancer's listeners in moto for as long as the emulator runs, carrying
/// each TCP one's traffic to the registrations of its target group (see the module's text).
pub async fn follow(elb: aws_sdk_elasticloadbalancingv2::Client, targets: &Targets) {
    // What a run before this one left (a restarted emulator): started again from nothing.
    let left = Path::new(layout::DATA_DIR).join("nlb-");
    crate::procs::kill_until_gone(|| crate::procs::running(&left.display().to_string()));
    let mut carried: BTreeMap<u16, Carried> = BTreeMap::new();
    let mut target_ports: HashMap<String, u16> = HashMap::new();
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let wanted = match listeners(&elb, &mut target_ports).await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "cannot read the load balancer's listeners");
                continue;
            }
        };
        // Listeners gone: their port closes.
        let gone: Vec<u16> = carried
            .keys()
            .filter(|port| !wanted.contains_key(port))
            .copied()
            .collect();
        for port in gone {
            tracing::info!(port, "listener gone: its HAProxy stops");
            tokio::task::spawn_blocking(move || stop_listener(port))
                .await
                .ok();
            carried.remove(&port);
        }
        for (port, listener) in wanted {
            if !carried.contains_key(&port) {
                tracing::info!(
                    port,
                    target_group = listener.target_group,
                    "new listener: its HAProxy starts"
                );
                match tokio::task::spawn_blocking(move || start_listener(port)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(port, error = %format!("{error:#}"), "cannot start the listener's HAProxy");
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            let registered = targets.of(&listener.target_group);
            if let Err(error) = carry(port, &registered, listener.target_port) {
                tracing::debug!(port, error = %format!("{error:#}"), "cannot bring the listener's servers in line");
            }
            carried.insert(port, listener);
        }
    }
}

/// The load balancer's TCP listeners in moto, by port, with their target group's port.
async fn listeners(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_ports: &mut HashMap<String, u16>,
) -> Result<BTreeMap<u16, Carried>> {
    let balancer = describe(elb).await?;
    let answer = elb
        .describe_listeners()
        .load_balancer_arn(&balancer.arn)
        .send()
        .await
        .context("DescribeListeners")?;
    let mut wanted = BTreeMap::new();
    for listener in answer.listeners() {
        if listener.protocol() == Some(&ProtocolEnum::Udp) {
            continue;
        }
        let (Some(port), Some(target_group)) = (
            listener.port().and_then(|p| u16::try_from(p).ok()),
            listener
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn()),
        ) else {
            continue;
        };
        if !target_ports.contains_key(target_group) {
            let described = elb
                .describe_target_groups()
                .target_group_arns(target_group)
                .send()
                .await
                .context("DescribeTargetGroups")?;
            let Some(target_port) = described
                .target_groups()
                .first()
                .and_then(|g| g.port())
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            target_ports.insert(target_group.to_owned(), target_port);
        }
        wanted.insert(
            port,
            Carried {
                target_group: target_group.to_owned(),
                target_port: target_ports[target_group],
            },
        );
    }
    Ok(wanted)
}
