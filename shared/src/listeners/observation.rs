//! What the listener sync observed before it decides: plain values, filled in by the adapters
//! (the swarm's services, the load balancer's listeners and target groups, the Auto Scaling
//! groups' attachments), or by a test table.

/// A transport protocol a service publishes a port with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A port one service publishes, as its endpoint says (ingress or host mode alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The service's name.
    pub service: String,
    /// The published port.
    pub port: u16,
    /// Its protocol.
    pub transport: Transport,
}

/// What the swarm's services ask of the load balancer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publishing {
    /// Every port they publish.
    pub published: Vec<Published>,
    /// Their certificate labels.
    pub certificates: Vec<CertificateLabel>,
}

/// A service's certificate label (`com.docker.aws.lb.arn`), as the service carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateLabel {
    /// The service's name.
    pub service: String,
    /// The label's value: `ACM-ARN[@[HTTPS:|SSL:]port,...]`.
    pub value: String,
}

/// A listener's protocol on a Network Load Balancer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerProtocol {
    /// TCP passed through.
    Tcp,
    /// UDP passed through.
    Udp,
    /// TCP and UDP on the same port.
    TcpUdp,
    /// TLS ended at the load balancer with this ACM certificate, TCP to the nodes.
    Tls {
        /// The certificate's ARN.
        certificate: String,
    },
}

/// A listener of the stack's load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its ARN.
    pub arn: String,
    /// Its port.
    pub port: u16,
    /// Its protocol (and certificate).
    pub protocol: ListenerProtocol,
    /// The target group it forwards to, if one.
    pub target_group: Option<String>,
    /// Whether the sync made it (it carries the sync's tag): only those are changed.
    pub ours: bool,
}

/// A target group the sync made for a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Its ARN.
    pub arn: String,
    /// The nodes' port it forwards to.
    pub port: u16,
    /// Its protocol toward the nodes.
    pub protocol: ListenerProtocol,
    /// Whether both Auto Scaling groups have it attached (they register their instances).
    pub attached: bool,
    /// Whether a group is still detaching it (its instances deregistering): it is deleted
    /// only once that is done.
    pub detaching: bool,
}

/// Everything [`super::decide`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Every port the swarm's services publish.
    pub published: Vec<Published>,
    /// The services' certificate labels.
    pub certificates: Vec<CertificateLabel>,
    /// The load balancer's listeners, the sync's and any other.
    pub listeners: Vec<Listener>,
    /// The target groups the sync made (tagged).
    pub target_groups: Vec<TargetGroup>,
    /// Listeners a load balancer may have (50 for a Network Load Balancer).
    pub max_listeners: usize,
    /// Target groups an Auto Scaling group may have attached, those of others included.
    pub max_target_groups: usize,
    /// Target groups attached to the groups that the sync did not make.
    pub foreign_target_groups: usize,
}
