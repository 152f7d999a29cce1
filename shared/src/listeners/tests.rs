//! The listener sync's decision, by tables of observed worlds.

use super::*;

const CERT: &str = "arn:aws:acm:us-east-1:0123456789:certificate/c02117b6";
const OTHER_CERT: &str = "arn:aws:acm:us-east-1:0123456789:certificate/d13228c7";

fn tcp(service: &str, port: u16) -> Published {
    Published {
        service: service.into(),
        port,
        transport: Transport::Tcp,
    }
}

fn udp(service: &str, port: u16) -> Published {
    Published {
        transport: Transport::Udp,
        ..tcp(service, port)
    }
}

fn group(port: u16, protocol: ListenerProtocol, attached: bool) -> TargetGroup {
    TargetGroup {
        arn: format!("tg-{port}-{protocol:?}"),
        port,
        protocol,
        attached,
        detaching: false,
    }
}

fn ours(port: u16, protocol: ListenerProtocol, target_group: &str) -> Listener {
    Listener {
        arn: format!("listener-{port}"),
        port,
        protocol,
        target_group: Some(target_group.into()),
        ours: true,
    }
}

fn theirs(port: u16) -> Listener {
    Listener {
        arn: format!("manual-{port}"),
        port,
        protocol: ListenerProtocol::Tcp,
        target_group: None,
        ours: false,
    }
}

/// The first step of serving a port: its target group, and nothing else yet.
fn first_step(port: u16, protocol: ListenerProtocol) -> Vec<Action> {
    vec![Action::CreateTargetGroup { port, protocol }]
}

/// A load balancer with nothing on it, at AWS's limits.
fn empty() -> Observation {
    Observation {
        max_listeners: 50,
        max_target_groups: 50,
        ..Observation::default()
    }
}

/// `web` published on TCP 8080 and served, end to end.
fn serving_8080() -> Observation {
    let tg = group(8080, ListenerProtocol::Tcp, true);
    Observation {
        published: vec![tcp("web", 8080)],
        listeners: vec![ours(8080, ListenerProtocol::Tcp, &tg.arn)],
        target_groups: vec![tg],
        ..empty()
    }
}

#[test]
fn a_published_port_is_served_step_by_step_and_then_left_alone() {
    let tg = group(8080, ListenerProtocol::Tcp, false);
    let table: Vec<(&str, Observation, Vec<Action>)> = vec![
        (
            "nothing yet: its target group first",
            Observation {
                published: vec![tcp("web", 8080)],
                ..empty()
            },
            first_step(8080, ListenerProtocol::Tcp),
        ),
        (
            "the target group made: attached, the listener made",
            Observation {
                published: vec![tcp("web", 8080)],
                target_groups: vec![tg.clone()],
                ..empty()
            },
            vec![
                Action::AttachTargetGroup {
                    arn: tg.arn.clone(),
                },
                Action::CreateListener {
                    port: 8080,
                    protocol: ListenerProtocol::Tcp,
                    target_group: tg.arn.clone(),
                },
            ],
        ),
        ("all in place: nothing", serving_8080(), vec![]),
    ];
    for (what, seen, expected) in table {
        let plan = decide(&seen);
        assert_eq!(plan.actions, expected, "{what}");
        assert!(plan.refusals.is_empty(), "{what}: {:?}", plan.refusals);
        assert_eq!(decide(&seen), plan, "{what}: decided twice, the same");
    }
}

#[test]
fn a_port_no_service_publishes_any_more_goes_listener_first() {
    let served = serving_8080();
    let tg = served.target_groups[0].clone();
    let table: Vec<(&str, Observation, Vec<Action>)> = vec![
        (
            "unpublished: the listener goes; the target group it forwards to waits",
            Observation {
                published: vec![],
                ..served.clone()
            },
            vec![Action::DeleteListener {
                arn: "listener-8080".into(),
            }],
        ),
        (
            "the listener gone: the target group is detached",
            Observation {
                published: vec![],
                listeners: vec![],
                ..served.clone()
            },
            vec![Action::DetachTargetGroup {
                arn: tg.arn.clone(),
            }],
        ),
        (
            "still detaching: the target group waits",
            Observation {
                published: vec![],
                listeners: vec![],
                target_groups: vec![TargetGroup {
                    attached: false,
                    detaching: true,
                    ..tg.clone()
                }],
                ..served.clone()
            },
            vec![],
        ),
        (
            "detached: the target group goes",
            Observation {
                published: vec![],
                listeners: vec![],
                target_groups: vec![TargetGroup {
                    attached: false,
                    ..tg.clone()
                }],
                ..served.clone()
            },
            vec![Action::DeleteTargetGroup { arn: tg.arn }],
        ),
    ];
    for (what, seen, expected) in table {
        assert_eq!(decide(&seen).actions, expected, "{what}");
    }
}

#[test]
fn a_listener_the_sync_did_not_make_is_never_touched_and_its_port_is_refused() {
    // On a port nobody publishes: left alone.
    let mut seen = serving_8080();
    seen.listeners.push(theirs(9000));
    assert_eq!(decide(&seen).actions, vec![]);
    // On a published port: left alone, and the port is refused, saying why.
    let seen = Observation {
        published: vec![tcp("api", 9000)],
        listeners: vec![theirs(9000)],
        ..empty()
    };
    let plan = decide(&seen);
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.refusals.len(), 1);
    assert_eq!(plan.refusals[0].services, ["api"]);
    assert!(plan.refusals[0].reason.contains("did not make"));
}

#[test]
fn the_stacks_own_ports_are_refused_with_what_they_are() {
    for (port, what) in STACK_PORTS {
        let plan = decide(&Observation {
            published: vec![tcp("sneaky", port)],
            ..empty()
        });
        assert_eq!(plan.actions, vec![], "{port}");
        assert_eq!(plan.refusals.len(), 1, "{port}");
        assert!(plan.refusals[0].reason.contains(what), "{port}");
    }
}

/// What one port is published as, with the certificate labels, and the listener it gets
/// (`None`: refused).
type Row = (
    &'static str,
    Vec<Published>,
    Vec<CertificateLabel>,
    Option<ListenerProtocol>,
);

#[test]
fn each_port_gets_the_listener_protocol_its_services_and_labels_ask_for() {
    let label = |service: &str, value: &str| CertificateLabel {
        service: service.into(),
        value: value.into(),
    };
    let table: Vec<Row> = vec![
        (
            "TCP",
            vec![tcp("web", 80)],
            vec![],
            Some(ListenerProtocol::Tcp),
        ),
        (
            "UDP",
            vec![udp("dns", 53)],
            vec![],
            Some(ListenerProtocol::Udp),
        ),
        (
            "TCP and UDP on one port",
            vec![tcp("dns", 53), udp("dns", 53)],
            vec![],
            Some(ListenerProtocol::TcpUdp),
        ),
        (
            "a certificate on 443 by default",
            vec![tcp("web", 443)],
            vec![label("web", CERT)],
            Some(ListenerProtocol::Tls {
                certificate: CERT.into(),
            }),
        ),
        (
            "a certificate on another port than the one published: plain TCP",
            vec![tcp("web", 443)],
            vec![label("web", &format!("{CERT}@8443"))],
            Some(ListenerProtocol::Tcp),
        ),
        (
            "another service's certificate does not apply",
            vec![tcp("web", 443)],
            vec![label("api", CERT)],
            Some(ListenerProtocol::Tcp),
        ),
        (
            "TLS and UDP on one port: refused",
            vec![tcp("web", 443), udp("web", 443)],
            vec![label("web", CERT)],
            None,
        ),
        (
            "two certificates for one port: refused",
            vec![tcp("web", 443), tcp("api", 443)],
            vec![label("web", CERT), label("api", OTHER_CERT)],
            None,
        ),
    ];
    for (what, published, certificates, expected) in table {
        let port = published[0].port;
        let tg_protocol = match &expected {
            Some(ListenerProtocol::Tls { .. }) => ListenerProtocol::Tcp,
            Some(other) => other.clone(),
            None => ListenerProtocol::Tcp,
        };
        let tg = group(port, tg_protocol, true);
        let plan = decide(&Observation {
            published,
            certificates,
            target_groups: vec![tg.clone()],
            ..empty()
        });
        let made = plan.actions.iter().find_map(|a| match a {
            Action::CreateListener { protocol, .. } => Some(protocol.clone()),
            _ => None,
        });
        assert_eq!(made, expected, "{what}: {plan:?}");
        assert_eq!(plan.refusals.is_empty(), expected.is_some(), "{what}");
    }
}

#[test]
fn a_changed_label_changes_the_listener_and_an_unreadable_one_changes_nothing() {
    // Served as TLS with one certificate; the label now names another.
    let tg = group(443, ListenerProtocol::Tcp, true);
    let served = Observation {
        published: vec![tcp("web", 443)],
        certificates: vec![CertificateLabel {
            service: "web".into(),
            value: OTHER_CERT.into(),
        }],
        listeners: vec![ours(
            443,
            ListenerProtocol::Tls {
                certificate: CERT.into(),
            },
            &tg.arn,
        )],
        target_groups: vec![tg.clone()],
        ..empty()
    };
    assert_eq!(
        decide(&served).actions,
        vec![Action::ModifyListener {
            arn: "listener-443".into(),
            protocol: ListenerProtocol::Tls {
                certificate: OTHER_CERT.into()
            },
            target_group: tg.arn.clone(),
        }]
    );
    // A label that cannot be read: the service is named, its listener kept as it is.
    let mut unreadable = served.clone();
    unreadable.certificates[0].value = "my-cert".into();
    let plan = decide(&unreadable);
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.unreadable.len(), 1);
    assert_eq!(plan.unreadable[0].0, "web");
    // Nor is a new port of that service made, while another service's is.
    unreadable.published.push(tcp("web", 8443));
    unreadable.published.push(tcp("api", 9000));
    let plan = decide(&unreadable);
    assert_eq!(plan.actions, first_step(9000, ListenerProtocol::Tcp));
}

#[test]
fn past_the_limits_the_ports_left_out_are_named_and_those_served_keep_their_place() {
    // Room for three listeners, one taken by someone else: two ports served of four.
    let mut seen = Observation {
        published: vec![
            tcp("a", 8001),
            tcp("b", 8002),
            tcp("c", 8003),
            tcp("d", 8004),
        ],
        listeners: vec![theirs(9999)],
        max_listeners: 3,
        ..empty()
    };
    // 8004 is already served: it keeps its place before the new ones.
    let tg = group(8004, ListenerProtocol::Tcp, true);
    seen.listeners
        .push(ours(8004, ListenerProtocol::Tcp, &tg.arn));
    seen.target_groups.push(tg);
    let plan = decide(&seen);
    assert_eq!(plan.actions, first_step(8001, ListenerProtocol::Tcp));
    let refused: Vec<u16> = plan.refusals.iter().map(|r| r.port).collect();
    assert_eq!(refused, [8002, 8003]);
    assert!(plan.refusals[0].reason.contains("limit"));
    // The Auto Scaling groups' target groups limit the same way.
    seen.max_listeners = 50;
    seen.max_target_groups = 3;
    seen.foreign_target_groups = 1;
    let refused: Vec<u16> = decide(&seen).refusals.iter().map(|r| r.port).collect();
    assert_eq!(refused, [8002, 8003]);
}

#[test]
fn a_port_that_changes_protocol_gets_a_new_target_group_before_the_old_one_goes() {
    // web moves 8080 from TCP to UDP.
    let mut seen = serving_8080();
    seen.published = vec![udp("web", 8080)];
    let old = seen.target_groups[0].clone();
    assert_eq!(
        decide(&seen).actions,
        first_step(8080, ListenerProtocol::Udp)
    );
    // The new one made and attached: the listener moves to it; the old one waits for that.
    let new = group(8080, ListenerProtocol::Udp, true);
    seen.target_groups.push(new.clone());
    assert_eq!(
        decide(&seen).actions,
        vec![Action::ModifyListener {
            arn: "listener-8080".into(),
            protocol: ListenerProtocol::Udp,
            target_group: new.arn.clone(),
        },]
    );
    // Moved: the old target group is detached.
    seen.listeners = vec![ours(8080, ListenerProtocol::Udp, &new.arn)];
    assert_eq!(
        decide(&seen).actions,
        vec![Action::DetachTargetGroup { arn: old.arn },]
    );
}
