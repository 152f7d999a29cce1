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

/// The deadline of one request.
pub const TIMEOUT: Duration = Duration::from_secs(2);

impl Load {
    /// Starts `rate` requests a second to `http://addr/`.
    pub fn start(addr: SocketAddr, rate: u32) -> Self {
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
                    inflight.spawn(async move {
                        let sent = Instant::now();
                        let at = sent.duration_since(started).as_secs_f64();
                        let error = match tokio::time::timeout(TIMEOUT, get(addr)).await {
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
