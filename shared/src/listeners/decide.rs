//! The decision: one pure function from an [`Observation`] to the [`Plan`] that brings the
//! load balancer one step closer to the swarm's published ports.

use std::collections::{BTreeMap, BTreeSet};

use super::label::read_label;
use super::observation::{ListenerProtocol, Observation, Transport};

/// Ports the stack itself uses on the nodes: never given to a service's listener.
pub const STACK_PORTS: [(u16, &str); 5] = [
    (22, "SSH"),
    (2376, "the managers' Engine API over mutual TLS"),
    (2377, "swarm management"),
    (7946, "swarm gossip"),
    (4789, "the overlay network (VXLAN)"),
];

/// One change to the load balancer or its target groups. The nodes' security group needs none:
/// the stack lets the load balancer's group reach every port but its own, once, so the sync
/// holds no right over security groups and spends none of their rules per port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make a target group (tagged) forwarding to the nodes' `port` with `protocol` (TCP,
    /// UDP or TCP and UDP), its health checked over TCP.
    CreateTargetGroup {
        /// The nodes' port.
        port: u16,
        /// Toward the nodes.
        protocol: ListenerProtocol,
    },
    /// Attach a target group to both Auto Scaling groups: they register their instances.
    AttachTargetGroup {
        /// Its ARN.
        arn: String,
    },
    /// Make a listener (tagged) on `port` forwarding to `target_group`.
    CreateListener {
        /// Its port.
        port: u16,
        /// Its protocol.
        protocol: ListenerProtocol,
        /// Where it forwards.
        target_group: String,
    },
    /// Change a listener of the sync's to `protocol`, forwarding to `target_group`.
    ModifyListener {
        /// Its ARN.
        arn: String,
        /// Its protocol now.
        protocol: ListenerProtocol,
        /// Where it forwards now.
        target_group: String,
    },
    /// Remove a listener of the sync's.
    DeleteListener {
        /// Its ARN.
        arn: String,
    },
    /// Detach a target group of the sync's from both Auto Scaling groups.
    DetachTargetGroup {
        /// Its ARN.
        arn: String,
    },
    /// Remove a target group of the sync's.
    DeleteTargetGroup {
        /// Its ARN.
        arn: String,
    },
}

/// A published port the sync does not serve, and why: said to the operator, never acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The port.
    pub port: u16,
    /// The services that publish it (or carry the label at fault).
    pub services: Vec<String>,
    /// Why.
    pub reason: String,
}

/// What to do now, and what is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, in the order to make them. Some wait for others (a listener for its
    /// target group): the sync observes again after acting and decides the rest then.
    pub actions: Vec<Action>,
    /// What is not served, with why.
    pub refusals: Vec<Refusal>,
    /// Services whose certificate label cannot be read, with why: their ports are left as
    /// they are, neither made, changed nor removed.
    pub unreadable: Vec<(String, String)>,
    /// Whether a step waits on AWS (a target group still detaching): look again soon.
    pub waiting: bool,
}

/// A port as the services want it served.
#[derive(Debug, Default)]
struct Want {
    transports: BTreeSet<Transport>,
    services: BTreeSet<String>,
    certificates: BTreeSet<String>,
}

/// The plan for `seen`.
pub fn decide(seen: &Observation) -> Plan {
    let mut plan = Plan::default();

    // What the services publish, by port.
    let mut wanted: BTreeMap<u16, Want> = BTreeMap::new();
    for published in &seen.published {
        let want = wanted.entry(published.port).or_default();
        want.transports.insert(published.transport);
        want.services.insert(published.service.clone());
    }

    // Certificates: a label read names the TLS ports of its service; one that cannot be read
    // freezes every port of its service (nothing made, changed or removed there).
    let mut frozen: BTreeSet<u16> = BTreeSet::new();
    for label in &seen.certificates {
        let ports_of_service: Vec<u16> = seen
            .published
            .iter()
            .filter(|p| p.service == label.service)
            .map(|p| p.port)
            .collect();
        match read_label(&label.value) {
            Ok(certificate) => {
                for port in certificate.ports {
                    if ports_of_service.contains(&port)
                        && let Some(want) = wanted.get_mut(&port)
                    {
                        want.certificates.insert(certificate.arn.clone());
                    }
                }
            }
            Err(why) => {
                plan.unreadable.push((label.service.clone(), why));
                frozen.extend(ports_of_service);
            }
        }
    }

    // Each port's listener, or why it gets none.
    let foreign: BTreeMap<u16, &str> = seen
        .listeners
        .iter()
        .filter(|l| !l.ours)
        .map(|l| (l.port, l.arn.as_str()))
        .collect();
    let mut protocols: BTreeMap<u16, ListenerProtocol> = BTreeMap::new();
    for (&port, want) in &wanted {
        let services: Vec<String> = want.services.iter().cloned().collect();
        let refuse = |reason: String| Refusal {
            port,
            services: services.clone(),
            reason,
        };
        if frozen.contains(&port) {
            continue;
        }
        if let Some((_, what)) = STACK_PORTS.iter().find(|(p, _)| *p == port) {
            plan.refusals.push(refuse(format!(
                "port {port} is the stack's own ({what}): not opened to the load balancer"
            )));
            continue;
        }
        if foreign.contains_key(&port) {
            plan.refusals.push(refuse(format!(
                "port {port} already has a listener this sync did not make: left alone"
            )));
            continue;
        }
        let tcp = want.transports.contains(&Transport::Tcp);
        let udp = want.transports.contains(&Transport::Udp);
        let protocol = match (want.certificates.len(), tcp, udp) {
            (0, true, true) => ListenerProtocol::TcpUdp,
            (0, false, true) => ListenerProtocol::Udp,
            (0, _, _) => ListenerProtocol::Tcp,
            (1, true, false) => ListenerProtocol::Tls {
                certificate: want.certificates.iter().next().cloned().unwrap_or_default(),
            },
            (1, _, _) => {
                plan.refusals.push(refuse(format!(
                    "port {port} is published over UDP and named for TLS: TLS listeners take TCP only"
                )));
                continue;
            }
            (_, _, _) => {
                plan.refusals.push(refuse(format!(
                    "port {port} is named for TLS with {} different certificates",
                    want.certificates.len()
                )));
                continue;
            }
        };
        protocols.insert(port, protocol);
    }

    // The limits: listeners those of others leave room for, and target groups the Auto
    // Scaling groups can hold. Ports that already have the sync's listener keep their place;
    // new ones come in port order.
    let room = seen.max_listeners.saturating_sub(foreign.len()).min(
        seen.max_target_groups
            .saturating_sub(seen.foreign_target_groups),
    );
    let has_ours = |port: u16| seen.listeners.iter().any(|l| l.ours && l.port == port);
    let mut order: Vec<u16> = protocols.keys().copied().collect();
    order.sort_by_key(|port| (!has_ours(*port), *port));
    for port in order.iter().skip(room) {
        let services = wanted[port].services.iter().cloned().collect();
        protocols.remove(port);
        plan.refusals.push(Refusal {
            port: *port,
            services,
            reason: format!(
                "the load balancer's limit is reached: {} listeners at most ({} not the sync's), {} target groups a group ({} not the sync's)",
                seen.max_listeners,
                foreign.len(),
                seen.max_target_groups,
                seen.foreign_target_groups
            ),
        });
    }

    // Served ports: target group, attached, listener, in that order.
    for (&port, protocol) in &protocols {
        let toward = toward_nodes(protocol);
        let group = seen
            .target_groups
            .iter()
            .find(|g| g.port == port && g.protocol == toward);
        let Some(group) = group else {
            plan.actions.push(Action::CreateTargetGroup {
                port,
                protocol: toward,
            });
            continue;
        };
        if !group.attached {
            plan.actions.push(Action::AttachTargetGroup {
                arn: group.arn.clone(),
            });
        }
        match seen.listeners.iter().find(|l| l.ours && l.port == port) {
            None => plan.actions.push(Action::CreateListener {
                port,
                protocol: protocol.clone(),
                target_group: group.arn.clone(),
            }),
            Some(listener)
                if listener.protocol != *protocol
                    || listener.target_group.as_deref() != Some(group.arn.as_str()) =>
            {
                plan.actions.push(Action::ModifyListener {
                    arn: listener.arn.clone(),
                    protocol: protocol.clone(),
                    target_group: group.arn.clone(),
                });
            }
            Some(_) => {}
        }
    }

    // What no service wants any more (a frozen port keeps what it has): listeners first,
    // then the target groups no listener of the sync's forwards to.
    for listener in seen.listeners.iter().filter(|l| l.ours) {
        if !protocols.contains_key(&listener.port) && !frozen.contains(&listener.port) {
            plan.actions.push(Action::DeleteListener {
                arn: listener.arn.clone(),
            });
        }
    }
    for group in &seen.target_groups {
        let wanted_here = protocols
            .get(&group.port)
            .is_some_and(|p| toward_nodes(p) == group.protocol);
        let forwarded_to = seen
            .listeners
            .iter()
            .any(|l| l.ours && l.target_group.as_deref() == Some(group.arn.as_str()));
        if wanted_here || forwarded_to || frozen.contains(&group.port) {
            continue;
        }
        if group.attached {
            plan.actions.push(Action::DetachTargetGroup {
                arn: group.arn.clone(),
            });
        } else if group.detaching {
            plan.waiting = true;
        } else {
            plan.actions.push(Action::DeleteTargetGroup {
                arn: group.arn.clone(),
            });
        }
    }
    plan
}

/// What a listener's target group speaks to the nodes: TLS ends at the load balancer.
fn toward_nodes(protocol: &ListenerProtocol) -> ListenerProtocol {
    match protocol {
        ListenerProtocol::Tls { .. } => ListenerProtocol::Tcp,
        other => other.clone(),
    }
}
