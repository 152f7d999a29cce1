//! `bootstrap tls`, run by a manager's user data before Docker starts: gives the manager the
//! server certificate of its Docker API (port 2376, mutual TLS), signed by the stack's CA.
//!
//! The CA is made once per stack: the manager that wins a conditional write in the cluster
//! table makes it, writes the processor's client certificate first and the CA second, so
//! whoever sees the CA also finds the client certificate. The others wait for the CA to
//! appear. Every boot signs a fresh server certificate for the manager's current address:
//! running it twice is harmless.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use swarm_aws::adapters::secrets::Secrets;
use swarm_aws::pki::{Authority, Issued};
use swarm_aws::ports::{Claim, ClusterStore};

use crate::BootstrapError;
use crate::retry::{Rounds, retrying};

/// Where the two secrets are.
#[derive(Debug, Clone)]
pub struct SecretIds {
    /// The CA's secret (certificate and key).
    pub ca: String,
    /// The processor's client certificate's secret.
    pub client: String,
}

/// Writes this manager's `ca.pem`, `cert.pem`, `key.pem` into `dir`, making the CA first if
/// this manager wins the claim; waits at most `deadline` for another manager's CA, retrying
/// failed calls until then ([`retrying`]).
pub async fn provision(
    instance_id: &str,
    address: IpAddr,
    store: &impl ClusterStore,
    secrets: &Secrets,
    ids: &SecretIds,
    dir: &Path,
    deadline: Duration,
) -> Result<Issued, BootstrapError> {
    // Each round: the certificate if the CA is there; else claim the making of it, and make
    // it or wait a second for it.
    let rounds = retrying(deadline, async || {
        if let Some(ca) = secrets.read::<Authority>(&ids.ca).await? {
            let issued = ca.issue_server(address)?;
            issued.write_to(dir)?;
            tracing::info!(step = "tls", instance_id, dir = %dir.display(), "wrote the Docker API's server certificate");
            return Ok(Some(issued));
        }
        match store.claim_ca(instance_id).await? {
            Claim::Won => {
                let ca = Authority::generate()?;
                secrets.write(&ids.client, &ca.issue_client()?).await?;
                secrets.write(&ids.ca, &ca).await?;
                tracing::info!(
                    step = "tls",
                    instance_id,
                    "made the stack's Docker API CA and the processor's certificate"
                );
            }
            Claim::Lost => {
                tracing::info!(
                    step = "tls",
                    instance_id,
                    "waiting for the manager that makes the CA"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Ok(None)
    })
    .await?;
    match rounds {
        Rounds::Done(issued) => Ok(issued),
        Rounds::OutOfTime(last_error) => Err(BootstrapError::NoCa {
            seconds: deadline.as_secs(),
            last_error,
        }),
    }
}
