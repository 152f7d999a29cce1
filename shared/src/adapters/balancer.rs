//! [`Balancer`] over the stack's Network Load Balancer (`aws-sdk-elasticloadbalancingv2`) and
//! the Auto Scaling groups its target groups are attached to (traffic sources).
//!
//! What the sync makes is known by two marks: its target groups are named
//! `{prefix}-{protocol}-{port}` (a name is unique in the account and region, so the prefix is
//! the stack's own), and everything it makes carries the tag [`SYNC_TAG`] with the prefix as
//! its value. Only what carries both is ever changed or removed.

use std::collections::HashSet;

use aws_sdk_autoscaling::types::TrafficSourceIdentifier;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::SdkError;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Certificate, ProtocolEnum, Tag, TargetGroupAttribute,
    TargetTypeEnum,
};
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::ids::GroupName;
use crate::listeners::{Action, Listener, ListenerProtocol, Observation, TargetGroup};
use crate::ports::Balancer;

/// The tag on everything the sync makes; its value is the sync's prefix.
pub const SYNC_TAG: &str = "swarm:sync";
/// Listeners a Network Load Balancer may have when the account says nothing else.
const DEFAULT_MAX_LISTENERS: usize = 50;
/// Target groups an Auto Scaling group may have attached (Auto Scaling's quota).
const MAX_TARGET_GROUPS: usize = 50;
/// ARNs `DescribeTags` takes in one call.
const TAGS_PER_CALL: usize = 20;
/// The longest prefix that leaves room for `-tcpudp-65535` in a 32-character name.
pub const MAX_PREFIX: usize = 32 - "-tcpudp-65535".len();
/// The port every swarm node listens on over TCP (gossip): what a UDP-only target group's
/// health check connects to, since a load balancer checks UDP targets over TCP.
const UDP_HEALTH_PORT: &str = "7946";
/// Seconds a deregistered node keeps its connections (the target group default is 300: every
/// scale-in would wait five minutes before its hooks run).
const DEREGISTRATION_DELAY: &str = "30";
/// The TLS policy of TLS listeners: TLS 1.3 and 1.2, as AWS recommends.
const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// The stack's load balancer, as the listener sync changes it.
pub struct NetworkLoadBalancer {
    elb: Client,
    autoscaling: aws_sdk_autoscaling::Client,
    /// The load balancer's ARN.
    load_balancer: String,
    /// Its VPC, where target groups are made.
    vpc: String,
    /// The groups every target group is attached to.
    groups: Vec<GroupName>,
    /// The start of the sync's target groups' names, and its tag's value.
    prefix: String,
    /// The account's listener limit, read once.
    max_listeners: OnceCell<usize>,
}

impl NetworkLoadBalancer {
    /// The adapter for the load balancer `load_balancer` in `vpc`, its target groups
    /// attached to `groups` and named from `prefix` (at most [`MAX_PREFIX`] characters).
    pub fn new(
        elb: Client,
        autoscaling: aws_sdk_autoscaling::Client,
        load_balancer: String,
        vpc: String,
        groups: Vec<GroupName>,
        prefix: String,
    ) -> Self {
        Self {
            elb,
            autoscaling,
            load_balancer,
            vpc,
            groups,
            prefix,
            max_listeners: OnceCell::new(),
        }
    }

    /// A target group's name: `{prefix}-{protocol}-{port}`.
    fn name(&self, port: u16, protocol: &ListenerProtocol) -> String {
        format!("{}-{}-{port}", self.prefix, protocol_word(protocol))
    }

    fn tag(&self) -> Tag {
        Tag::builder().key(SYNC_TAG).value(&self.prefix).build()
    }

    /// Which of `arns` carry the sync's tag.
    async fn tagged(&self, arns: &[String]) -> Result<HashSet<String>, Error> {
        let mut tagged = HashSet::new();
        for chunk in arns.chunks(TAGS_PER_CALL) {
            let answer = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| failed("DescribeTags", e))?;
            for description in answer.tag_descriptions() {
                let ours = description
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(SYNC_TAG) && t.value() == Some(&self.prefix));
                if ours && let Some(arn) = description.resource_arn() {
                    tagged.insert(arn.to_owned());
                }
            }
        }
        Ok(tagged)
    }

    /// Which of `items` (by their ARN) carry the sync's tag.
    async fn tagged_of<T>(
        &self,
        items: &[T],
        arn: impl Fn(&T) -> Option<&str>,
    ) -> Result<HashSet<String>, Error> {
        let arns: Vec<String> = items
            .iter()
            .filter_map(|i| arn(i).map(str::to_owned))
            .collect();
        self.tagged(&arns).await
    }

    /// Every listener of the load balancer, each marked ours or not.
    async fn listeners(&self) -> Result<Vec<Listener>, Error> {
        let found = self
            .elb
            .describe_listeners()
            .load_balancer_arn(&self.load_balancer)
            .page_size(400)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failed("DescribeListeners", e))?;
        let ours = self.tagged_of(&found, |l| l.listener_arn()).await?;
        Ok(found
            .iter()
            .filter_map(|l| {
                let arn = l.listener_arn()?.to_owned();
                let certificate = l
                    .certificates()
                    .first()
                    .and_then(|c| c.certificate_arn())
                    .unwrap_or_default();
                Some(Listener {
                    ours: ours.contains(&arn),
                    port: u16::try_from(l.port()?).ok()?,
                    protocol: protocol_of(l.protocol()?, certificate),
                    target_group: forwards_to(l.default_actions()),
                    arn,
                })
            })
            .collect())
    }

    /// The sync's target groups: named from its prefix and tagged. Every target group of the
    /// account and region is listed: one the sync made and a crash left unattached and
    /// without a listener is found too, and removed once no service wants its port.
    async fn target_groups(&self) -> Result<Vec<TargetGroup>, Error> {
        let start = format!("{}-", self.prefix);
        let named: Vec<_> = self
            .elb
            .describe_target_groups()
            .page_size(400)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failed("DescribeTargetGroups", e))?
            .into_iter()
            .filter(|g| g.target_group_name().is_some_and(|n| n.starts_with(&start)))
            .collect();
        let ours = self.tagged_of(&named, |g| g.target_group_arn()).await?;
        Ok(named
            .iter()
            .filter_map(|g| {
                let arn = g.target_group_arn()?.to_owned();
                ours.contains(&arn).then_some(())?;
                Some(TargetGroup {
                    port: u16::try_from(g.port()?).ok()?,
                    protocol: protocol_of(g.protocol()?, ""),
                    attached: false,
                    detaching: false,
                    arn,
                })
            })
            .collect())
    }

    /// The load balancers' target groups attached to each group, and those it is detaching.
    async fn attached(&self) -> Result<(Vec<HashSet<String>>, HashSet<String>), Error> {
        let mut attached = Vec::new();
        let mut detaching = HashSet::new();
        for group in &self.groups {
            let pages = self
                .autoscaling
                .describe_traffic_sources()
                .auto_scaling_group_name(group.as_str())
                .traffic_source_type("elbv2")
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| super::autoscaling::failed("DescribeTrafficSources", e))?;
            let mut identifiers = HashSet::new();
            for source in pages.iter().flat_map(|page| page.traffic_sources()) {
                let Some(id) = source.identifier() else {
                    continue;
                };
                // Removing: on its way out, no longer a place to register with.
                if source.state() == Some("Removing") {
                    detaching.insert(id.to_owned());
                } else {
                    identifiers.insert(id.to_owned());
                }
            }
            attached.push(identifiers);
        }
        Ok((attached, detaching))
    }

    /// The account's listener limit for a Network Load Balancer, read once.
    async fn max_listeners(&self) -> usize {
        *self
            .max_listeners
            .get_or_init(|| async {
                let answer = self.elb.describe_account_limits().send().await;
                let max = answer.ok().and_then(|a| {
                    a.limits()
                        .iter()
                        .find(|l| l.name() == Some("listeners-per-network-load-balancer"))
                        .and_then(|l| l.max()?.parse().ok())
                });
                max.unwrap_or(DEFAULT_MAX_LISTENERS)
            })
            .await
    }

    /// Makes (or finds: the same name and settings answer the one there) a target group,
    /// sets its deregistration delay, and only then tags it: one left untagged by a crash
    /// halfway is made again the same way by the next sync, never taken as finished.
    async fn create_target_group(
        &self,
        port: u16,
        protocol: &ListenerProtocol,
    ) -> Result<(), Error> {
        let mut create = self
            .elb
            .create_target_group()
            .name(self.name(port, protocol))
            .protocol(elb_protocol(protocol))
            .port(i32::from(port))
            .vpc_id(&self.vpc)
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(ProtocolEnum::Tcp)
            .health_check_interval_seconds(10)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(2);
        if *protocol == ListenerProtocol::Udp {
            create = create.health_check_port(UDP_HEALTH_PORT);
        }
        let made = create
            .send()
            .await
            .map_err(|e| failed("CreateTargetGroup", e))?;
        let arn = made
            .target_groups()
            .first()
            .and_then(|g| g.target_group_arn())
            .unwrap_or_default()
            .to_owned();
        self.elb
            .modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(DEREGISTRATION_DELAY)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed("ModifyTargetGroupAttributes", e))?;
        self.elb
            .add_tags()
            .resource_arns(&arn)
            .tags(self.tag())
            .send()
            .await
            .map_err(|e| failed("AddTags", e))?;
        Ok(())
    }

    /// One Auto Scaling call (`call`) for each of the groups, in turn.
    async fn each_group<T, E, R, Fut>(
        &self,
        call: &'static str,
        request: impl Fn(&str) -> Fut,
    ) -> Result<(), Error>
    where
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
        E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        for group in &self.groups {
            request(group.as_str())
                .await
                .map_err(|e| super::autoscaling::failed(call, e))?;
        }
        Ok(())
    }

    fn source(arn: &str) -> TrafficSourceIdentifier {
        TrafficSourceIdentifier::builder()
            .identifier(arn)
            .r#type("elbv2")
            .build()
    }
}

impl Balancer for NetworkLoadBalancer {
    async fn observe(&self) -> Result<Observation, Error> {
        let (listeners, groups, (attached, detaching), max_listeners) = tokio::try_join!(
            self.listeners(),
            self.target_groups(),
            self.attached(),
            async { Ok(self.max_listeners().await) },
        )?;
        let ours: HashSet<&str> = groups.iter().map(|g| g.arn.as_str()).collect();
        let foreign_target_groups = attached
            .iter()
            .map(|a| a.iter().filter(|arn| !ours.contains(arn.as_str())).count())
            .max()
            .unwrap_or(0);
        let target_groups = groups
            .iter()
            .map(|group| TargetGroup {
                attached: !attached.is_empty() && attached.iter().all(|a| a.contains(&group.arn)),
                detaching: detaching.contains(&group.arn),
                ..group.clone()
            })
            .collect();
        Ok(Observation {
            listeners,
            target_groups,
            max_listeners,
            max_target_groups: MAX_TARGET_GROUPS,
            foreign_target_groups,
            ..Observation::default()
        })
    }

    async fn act(&self, action: &Action) -> Result<(), Error> {
        match action {
            Action::CreateTargetGroup { port, protocol } => {
                self.create_target_group(*port, protocol).await
            }
            Action::AttachTargetGroup { arn } => {
                self.each_group("AttachTrafficSources", |group| {
                    self.autoscaling
                        .attach_traffic_sources()
                        .auto_scaling_group_name(group)
                        .traffic_sources(Self::source(arn))
                        .send()
                })
                .await
            }
            Action::CreateListener {
                port,
                protocol,
                target_group,
            } => {
                self.elb
                    .create_listener()
                    .load_balancer_arn(&self.load_balancer)
                    .port(i32::from(*port))
                    .protocol(elb_protocol(protocol))
                    .set_certificates(certificates(protocol))
                    .set_ssl_policy(tls_policy(protocol))
                    .default_actions(forward(target_group))
                    .tags(self.tag())
                    .send()
                    .await
                    .map_err(|e| failed("CreateListener", e))?;
                Ok(())
            }
            Action::ModifyListener {
                arn,
                protocol,
                target_group,
            } => {
                self.elb
                    .modify_listener()
                    .listener_arn(arn)
                    .protocol(elb_protocol(protocol))
                    .set_certificates(certificates(protocol))
                    .set_ssl_policy(tls_policy(protocol))
                    .default_actions(forward(target_group))
                    .send()
                    .await
                    .map_err(|e| failed("ModifyListener", e))?;
                Ok(())
            }
            Action::DeleteListener { arn } => {
                match self.elb.delete_listener().listener_arn(arn).send().await {
                    Ok(_) => Ok(()),
                    Err(error) if code(&error) == Some("ListenerNotFound") => Ok(()),
                    Err(error) => Err(failed("DeleteListener", error)),
                }
            }
            Action::DetachTargetGroup { arn } => {
                self.each_group("DetachTrafficSources", |group| {
                    self.autoscaling
                        .detach_traffic_sources()
                        .auto_scaling_group_name(group)
                        .traffic_sources(Self::source(arn))
                        .send()
                })
                .await
            }
            Action::DeleteTargetGroup { arn } => {
                match self
                    .elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(error) if code(&error) == Some("TargetGroupNotFound") => Ok(()),
                    Err(error) => Err(failed("DeleteTargetGroup", error)),
                }
            }
        }
    }
}

/// The word for a protocol in a target group's name.
fn protocol_word(protocol: &ListenerProtocol) -> &'static str {
    match protocol {
        ListenerProtocol::Tcp | ListenerProtocol::Tls { .. } => "tcp",
        ListenerProtocol::Udp => "udp",
        ListenerProtocol::TcpUdp => "tcpudp",
    }
}

/// A protocol as ELB names it.
fn elb_protocol(protocol: &ListenerProtocol) -> ProtocolEnum {
    match protocol {
        ListenerProtocol::Tcp => ProtocolEnum::Tcp,
        ListenerProtocol::Udp => ProtocolEnum::Udp,
        ListenerProtocol::TcpUdp => ProtocolEnum::TcpUdp,
        ListenerProtocol::Tls { .. } => ProtocolEnum::Tls,
    }
}

/// ELB's protocol as the sync reads it (`certificate`: a TLS listener's first one). Protocols
/// a Network Load Balancer does not have read as TCP: only others' listeners could have them.
fn protocol_of(protocol: &ProtocolEnum, certificate: &str) -> ListenerProtocol {
    match protocol {
        ProtocolEnum::Udp => ListenerProtocol::Udp,
        ProtocolEnum::TcpUdp => ListenerProtocol::TcpUdp,
        ProtocolEnum::Tls => ListenerProtocol::Tls {
            certificate: certificate.to_owned(),
        },
        _ => ListenerProtocol::Tcp,
    }
}

/// The target group a listener's default actions forward to.
fn forwards_to(actions: &[ElbAction]) -> Option<String> {
    let forward = actions
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))?;
    forward
        .target_group_arn()
        .or_else(|| {
            forward
                .forward_config()?
                .target_groups()
                .first()?
                .target_group_arn()
        })
        .map(str::to_owned)
}

fn forward(target_group: &str) -> ElbAction {
    ElbAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group)
        .build()
}

fn certificates(protocol: &ListenerProtocol) -> Option<Vec<Certificate>> {
    match protocol {
        ListenerProtocol::Tls { certificate } => Some(vec![
            Certificate::builder().certificate_arn(certificate).build(),
        ]),
        _ => None,
    }
}

fn tls_policy(protocol: &ListenerProtocol) -> Option<String> {
    matches!(protocol, ListenerProtocol::Tls { .. }).then(|| TLS_POLICY.to_owned())
}

fn code<E: crate::error::ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

fn failed<E, R>(call: &'static str, error: SdkError<E, R>) -> Error
where
    E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::LoadBalancing {
        call,
        source: crate::error::sdk_cause(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_group_name_fits_elbs_32_characters_at_the_longest_prefix() {
        let longest = "p".repeat(MAX_PREFIX);
        let name = format!(
            "{longest}-{}-65535",
            protocol_word(&ListenerProtocol::TcpUdp)
        );
        assert_eq!(name.len(), 32);
    }

    #[test]
    fn a_listener_forwards_to_its_target_group_however_elb_writes_it() {
        let plain = forward("tg-1");
        assert_eq!(forwards_to(&[plain]), Some("tg-1".to_owned()));
        let weighted = ElbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                aws_sdk_elasticloadbalancingv2::types::ForwardActionConfig::builder()
                    .target_groups(
                        aws_sdk_elasticloadbalancingv2::types::TargetGroupTuple::builder()
                            .target_group_arn("tg-2")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(forwards_to(&[weighted]), Some("tg-2".to_owned()));
        assert_eq!(forwards_to(&[]), None);
    }
}
