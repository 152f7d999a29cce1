//! The rule that reads the Engine API's services for the listener sync, pure: which ports each
//! publishes, and its certificate label.

use bollard::models::{EndpointPortConfigProtocolEnum, Service};

use super::label::CERTIFICATE_LABEL;
use super::observation::{CertificateLabel, Published, Publishing, Transport};

/// The ports `services` publish explicitly (a `published` port in their endpoint spec, in
/// ingress or host mode: one Swarm picks itself from its 30000+ range is not served, as the
/// original did not), TCP or UDP, and their certificate labels.
///
/// ```
/// use swarm_aws::listeners::read::published;
/// let services: Vec<bollard::models::Service> = serde_json::from_str(r#"[{"Spec":{
///     "Name":"web","Labels":{"com.docker.aws.lb.arn":"arn:aws:acm:us-east-1:1:certificate/a"},
///     "EndpointSpec":{"Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":443}]}}}]"#).unwrap();
/// let read = published(&services);
/// let (ports, labels) = (read.published, read.certificates);
/// assert_eq!((ports[0].service.as_str(), ports[0].port), ("web", 443));
/// assert_eq!(labels[0].service, "web");
/// ```
pub fn published(services: &[Service]) -> Publishing {
    let mut ports = Vec::new();
    let mut labels = Vec::new();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let name = spec
            .name
            .clone()
            .or_else(|| service.id.clone())
            .unwrap_or_default();
        let configs = spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.as_deref())
            .unwrap_or_default();
        for config in configs {
            let transport = match config.protocol {
                Some(EndpointPortConfigProtocolEnum::UDP) => Transport::Udp,
                Some(EndpointPortConfigProtocolEnum::SCTP) => continue,
                _ => Transport::Tcp,
            };
            let Some(port) = config
                .published_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
            else {
                continue;
            };
            ports.push(Published {
                service: name.clone(),
                port,
                transport,
            });
        }
        if let Some(value) = spec.labels.as_ref().and_then(|l| l.get(CERTIFICATE_LABEL)) {
            labels.push(CertificateLabel {
                service: name,
                value: value.clone(),
            });
        }
    }
    Publishing {
        published: ports,
        certificates: labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_explicitly_published_tcp_and_udp_ports_are_read() {
        let services: Vec<Service> = serde_json::from_str(
            r#"[
            {"ID":"s1","Spec":{"Name":"web","EndpointSpec":{"Ports":[
                {"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"},
                {"Protocol":"udp","TargetPort":53,"PublishedPort":5353,"PublishMode":"host"},
                {"Protocol":"sctp","TargetPort":9,"PublishedPort":9999},
                {"Protocol":"tcp","TargetPort":81}
            ]}}},
            {"ID":"s2","Spec":{"Name":"worker"}},
            {"ID":"s3","Spec":{"EndpointSpec":{"Ports":[{"TargetPort":1,"PublishedPort":7000}]}}}
        ]"#,
        )
        .expect("services as the Engine API lists them");
        let read = published(&services);
        let (ports, labels) = (read.published, read.certificates);
        let read: Vec<(&str, u16, Transport)> = ports
            .iter()
            .map(|p| (p.service.as_str(), p.port, p.transport))
            .collect();
        assert_eq!(
            read,
            [
                ("web", 8080, Transport::Tcp),
                ("web", 5353, Transport::Udp),
                // No name: named by id. No protocol: TCP, as Docker defaults it.
                ("s3", 7000, Transport::Tcp),
            ]
        );
        assert!(labels.is_empty());
    }
}
