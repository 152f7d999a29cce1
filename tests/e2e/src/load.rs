//! A load generator: HTTP GETs to one address at a steady rate, each with a deadline, every
//! result kept with its time. Requests are started on a fixed schedule whatever the answers
//! take (an open loop), so a slow or dead backend shows as failures, not as fewer requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// One request's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Seconds from the start of the load when it was sent.
    pub at: f64,
    /// Milliseconds until the whole answer, or until it failed.
    pub ms: f64,
    /// `None`: a 200 answer; otherwise what went wrong (`503`, `timeout`, `refused`...).
    pub error: Option<String>,
}

/// A running load.
pub struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<tokio::sync::Notify>,
    task: JoinHandle<()>,
    /// When it started.
    pub started: Instant,
}

/// Where each request goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// One address (a load balancer's).
    Fixed(SocketAddr),
    /// The addresses a [`Mesh`] keeps, in turn.
    Mesh(Arc<Mesh>),
}

impl Target {
    /// The address of the next request, `None` when there is none to send it to.
    fn next(&self) -> Option<SocketAddr> {
        match self {
            Self::Fixed(addr) => Some(*addr),
            Self::Mesh(mesh) => mesh.next(),
        }
    }
}

/// Swarm's ingress routing mesh as the test bed stands it in (the kernel has no IPVS): a
/// published port's requests go to the service's tasks that Swarm says are running (healthy,
/// for a service with a health check), in turn, as IPVS balances over the running tasks on
/// every node, the load balancer's targets. The tasks publish in host mode, and the set is
/// read again every 100 ms, as the mesh follows task states.
#[derive(Debug, Default)]
pub struct Mesh {
    backends: Mutex<Vec<SocketAddr>>,
    turn: std::sync::atomic::AtomicUsize,
}

impl Mesh {
    /// Follows the running tasks of `service` (host-mode `port`) until the returned mesh is
    /// dropped by everyone holding it; its first reading done before it returns. The tasks
    /// are read through `manager`, and through another manager of the test bed once that one
    /// stops answering (a rolling upgrade replaces them all).
    pub async fn follow(manager: bollard::Docker, service: String, port: u16) -> Arc<Self> {
        let mesh = Arc::new(Self::default());
        let mut addresses = std::collections::HashMap::new();
        let mut manager = manager;
        mesh.refresh(&mut manager, &service, port, &mut addresses)
            .await;
        let weak = Arc::downgrade(&mesh);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(mesh) = weak.upgrade() else {
                    return;
                };
                mesh.refresh(&mut manager, &service, port, &mut addresses)
                    .await;
            }
        });
        mesh
    }

    /// Reads the running tasks again; `addresses` keeps each node's address once read. A
    /// manager that does not answer is replaced by one that does, for the next reading (the
    /// backends are kept as they were meanwhile, as the mesh keeps routing when a manager
    /// goes).
    async fn refresh(
        &self,
        manager: &mut bollard::Docker,
        service: &str,
        port: u16,
        addresses: &mut std::collections::HashMap<String, std::net::IpAddr>,
    ) {
        let tasks = match testbed::service::running_tasks(manager, service).await {
            Ok(tasks) => tasks,
            Err(_) => {
                if let Ok(bed) = testbed::Testbed::load()
                    && let Ok(answering) = bed.manager().await
                {
                    *manager = answering;
                }
                return;
            }
        };
        let mut backends = Vec::new();
        for node in tasks.iter().filter_map(|t| t.node_id.clone()) {
            if !addresses.contains_key(&node)
                && let Ok(inspected) = manager.inspect_node(&node).await
                && let Some(ip) = inspected
                    .status
                    .and_then(|s| s.addr)
                    .and_then(|a| a.parse().ok())
            {
                addresses.insert(node.clone(), ip);
            }
            if let Some(ip) = addresses.get(&node) {
                backends.push(SocketAddr::new(*ip, port));
            }
        }
        *self
            .backends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = backends;
    }

    fn next(&self) -> Option<SocketAddr> {
        let backends = self
            .backends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (!backends.is_empty()).then(|| backends[turn % backends.len()])
    }
}

/// The deadline of one request.
pub const TIMEOUT: Duration = Duration::from_secs(2);

impl Load {
    /// Starts `rate` requests a second to `http://addr/`.
    pub fn start(addr: SocketAddr, rate: u32) -> Self {
        Self::start_to(Target::Fixed(addr), rate)
    }

    /// Starts `rate` requests a second to whatever `target` names at each request.
    pub fn start_to(target: Target, rate: u32) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let started = Instant::now();
        let task = {
            let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut inflight = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.notified() => break,
                    }
                    let samples = Arc::clone(&samples);
                    let addr = target.next();
                    inflight.spawn(async move {
                        let sent = Instant::now();
                        let at = sent.duration_since(started).as_secs_f64();
                        let answered = match addr {
                            Some(addr) => tokio::time::timeout(TIMEOUT, get(addr)).await,
                            None => Ok(Err("no running task".to_owned())),
                        };
                        let error = match answered {
                            Ok(Ok(200)) => None,
                            Ok(Ok(status)) => Some(status.to_string()),
                            Ok(Err(error)) => Some(error),
                            Err(_) => Some("timeout".to_owned()),
                        };
                        let ms = sent.elapsed().as_secs_f64() * 1000.0;
                        samples
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Sample { at, ms, error });
                    });
                    while inflight.try_join_next().is_some() {}
                }
                // Requests already sent are waited for: each ends within its deadline.
                while inflight.join_next().await.is_some() {}
            })
        };
        Self {
            samples,
            stop,
            task,
            started,
        }
    }

    /// The results so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops sending, waits for the requests in flight, and returns every result in the
    /// order they were sent.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.notify_one();
        let Self { samples, task, .. } = self;
        let _ = task.await;
        let mut samples = samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        samples.sort_by(|a, b| a.at.total_cmp(&b.at));
        samples
    }
}

/// One `GET /` over a fresh connection (HTTP/1.0: the answer ends with the connection); its
/// status code, or what failed.
async fn get(addr: SocketAddr) -> Result<u16, String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "refused".to_owned(),
            _ => format!("connect: {e}"),
        })?;
    stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| "not HTTP".to_owned())
}
