//! The certificate label of a service, as Docker for AWS read it:
//! `com.docker.aws.lb.arn=ACM-ARN[@[HTTPS:|SSL:]port,...]`. The ports default to 443; a
//! `HTTPS:` or `SSL:` prefix (the Classic ELB's listener kinds) means a TLS listener on a
//! Network Load Balancer as well.

use std::collections::BTreeSet;

/// The label's name.
pub const CERTIFICATE_LABEL: &str = "com.docker.aws.lb.arn";

/// The port a certificate applies to when the label names none.
pub const DEFAULT_TLS_PORT: u16 = 443;

/// A certificate label, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The ACM certificate's ARN.
    pub arn: String,
    /// The published ports it ends TLS on.
    pub ports: BTreeSet<u16>,
}

/// Reads a label's value, or says why it cannot.
///
/// ```
/// use swarm_aws::listeners::label::read_label;
/// let read = read_label("arn:aws:acm:us-east-1:123456789012:certificate/abc@444,SSL:8443").unwrap();
/// assert_eq!(read.arn, "arn:aws:acm:us-east-1:123456789012:certificate/abc");
/// assert_eq!(read.ports.into_iter().collect::<Vec<_>>(), [444, 8443]);
/// assert!(read_label("my-cert").is_err());
/// ```
pub fn read_label(value: &str) -> Result<Certificate, String> {
    let value = value.trim();
    let (arn, ports) = match value.split_once('@') {
        Some((arn, ports)) => (arn, Some(ports)),
        None => (value, None),
    };
    let resource = arn
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(1).map(|service| (service, rest)))
        .filter(|(service, rest)| *service == "acm" && rest.split(':').count() >= 5)
        .and_then(|(_, rest)| rest.rsplit(':').next());
    if !resource.is_some_and(|r| r.starts_with("certificate/") && r.len() > "certificate/".len()) {
        return Err(format!(
            "`{arn}` is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
        ));
    }
    let ports = match ports {
        None => BTreeSet::from([DEFAULT_TLS_PORT]),
        Some(list) => list
            .split(',')
            .map(|port| {
                let port = port.trim();
                let number = port
                    .strip_prefix("HTTPS:")
                    .or_else(|| port.strip_prefix("SSL:"))
                    .unwrap_or(port);
                number
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{port}` is not a port"))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Certificate {
        arn: arn.to_owned(),
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:acm:us-east-1:0123456789:certificate/c02117b6-2b5f-4507-8115-87726f4ab963";

    #[test]
    fn a_label_reads_as_its_certificate_and_ports_or_says_why_not() {
        let ok = |ports: &[u16]| Ok::<_, ()>(ports.iter().copied().collect::<BTreeSet<u16>>());
        for (value, expected) in [
            // As Docker for AWS documented it.
            (ARN.to_owned(), ok(&[443])),
            (format!("{ARN}@444"), ok(&[444])),
            (format!("{ARN}@444,8080"), ok(&[444, 8080])),
            (format!("{ARN}@HTTPS:443,SSL:8443"), ok(&[443, 8443])),
            (format!(" {ARN}@ 444 , 8080 "), ok(&[444, 8080])),
            // Not read.
            ("my-certificate".to_owned(), Err(())),
            (
                "arn:aws:iam::0123456789:server-certificate/x".to_owned(),
                Err(()),
            ),
            (
                "arn:aws:acm:us-east-1:0123456789:certificate/".to_owned(),
                Err(()),
            ),
            (format!("{ARN}@"), Err(())),
            (format!("{ARN}@https"), Err(())),
            (format!("{ARN}@0"), Err(())),
            (format!("{ARN}@70000"), Err(())),
        ] {
            let read = read_label(&value);
            match (&read, expected) {
                (Ok(read), Ok(ports)) => {
                    assert_eq!(read.arn, ARN, "{value}");
                    assert_eq!(read.ports, ports, "{value}");
                }
                (Err(why), Err(())) => assert!(!why.is_empty(), "{value}"),
                (read, expected) => panic!("{value}: {read:?}, expected {expected:?}"),
            }
        }
    }
}
