//! The Docker API's certificates as the stack makes them: managers booting at once make one
//! CA (in Secrets Manager, through moto) and each its own server certificate; the processor's
//! client certificate is written beside it. The chains are checked by `openssl verify`, an
//! implementation that is not ours; the test bed's managers run on certificates from the same
//! code, so every TLS test of the suite also proves them against `dockerd`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, ensure};
use bootstrap::tls::{SecretIds, provision};
use swarm_aws::adapters::dynamodb::DynamoStore;
use swarm_aws::adapters::secrets::Secrets;
use swarm_aws::pki::{Authority, Issued};

struct Stack {
    store: DynamoStore,
    secrets: Secrets,
    ids: SecretIds,
    dir: PathBuf,
}

async fn stack(name: &str) -> Result<Stack> {
    let sdk = e2e::sdk_config().await?;
    let table = format!("e2e-pki-{name}-{}", std::process::id());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    testbed::create_table(&dynamodb, &table).await?;
    let dir = std::env::temp_dir().join(format!("e2e-pki-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Stack {
        store: DynamoStore::new(dynamodb, table),
        secrets: Secrets::new(aws_sdk_secretsmanager::Client::new(&sdk)),
        ids: SecretIds {
            ca: e2e::secrets::create_empty(&format!("{name}-ca")).await?,
            client: e2e::secrets::create_empty(&format!("{name}-client")).await?,
        },
        dir,
    })
}

impl Stack {
    async fn boot(&self, instance_id: &str, address: &str) -> Result<Issued> {
        let address: IpAddr = address.parse()?;
        Ok(provision(
            instance_id,
            address,
            &self.store,
            &self.secrets,
            &self.ids,
            &self.dir.join(instance_id),
            Duration::from_secs(30),
        )
        .await?)
    }
}

/// `openssl verify` of `dir/cert.pem` against `dir/ca.pem` for `purpose`.
fn verify(dir: &Path, purpose: &str) -> Result<()> {
    let output = std::process::Command::new("openssl")
        .args(["verify", "-purpose", purpose, "-CAfile"])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("cert.pem"))
        .output()?;
    ensure!(
        output.status.success(),
        "openssl verify -purpose {purpose}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn three_managers_booting_at_once_make_one_ca_and_each_a_certificate_for_its_address()
-> Result<()> {
    let stack = stack("three").await?;
    let (a, b, c) = tokio::join!(
        stack.boot("i-0000000000000000a", "10.0.1.10"),
        stack.boot("i-0000000000000000b", "10.0.2.10"),
        stack.boot("i-0000000000000000c", "10.0.1.11"),
    );
    let (a, b, c) = (a?, b?, c?);
    ensure!(
        a.ca == b.ca && b.ca == c.ca,
        "the managers made several CAs"
    );
    ensure!(
        a.cert != b.cert && b.cert != c.cert,
        "certificates were shared"
    );
    for id in [
        "i-0000000000000000a",
        "i-0000000000000000b",
        "i-0000000000000000c",
    ] {
        let dir = stack.dir.join(id);
        verify(&dir, "sslserver")?;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem"))?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "the key is readable by others: {mode:o}");
    }
    // The address is the certificate's subject alternative name: what the processor checks.
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(stack.dir.join("i-0000000000000000b/cert.pem"))
        .output()?;
    ensure!(
        String::from_utf8_lossy(&text.stdout).contains("IP Address:10.0.2.10"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // The processor's certificate, from its own secret, chains to the same CA.
    let client: Issued = stack
        .secrets
        .read(&stack.ids.client)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client certificate was written"))?;
    ensure!(client.ca == a.ca, "the client certificate has another CA");
    let client_dir = stack.dir.join("client");
    client.write_to(&client_dir)?;
    verify(&client_dir, "sslclient")?;
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}

#[tokio::test]
async fn a_manager_booting_again_keeps_the_ca_and_gets_a_fresh_certificate() -> Result<()> {
    let stack = stack("again").await?;
    let first = stack.boot("i-0000000000000000d", "10.0.1.20").await?;
    let ca: Authority = stack
        .secrets
        .read(&stack.ids.ca)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no CA was written"))?;
    let again = stack.boot("i-0000000000000000d", "10.0.1.20").await?;
    ensure!(again.ca == first.ca, "a second boot made another CA");
    let still: Option<Authority> = stack.secrets.read(&stack.ids.ca).await?;
    ensure!(still.as_ref() == Some(&ca), "the CA secret changed");
    verify(&stack.dir.join("i-0000000000000000d"), "sslserver")?;
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}

#[tokio::test]
async fn a_manager_waits_for_the_ca_another_claimed_and_says_so_when_it_never_comes() -> Result<()>
{
    use swarm_aws::ports::ClusterStore;
    let stack = stack("orphan").await?;
    // A manager claimed the CA and died before writing it.
    stack.store.claim_ca("i-00000000000000dead").await?;
    let address: IpAddr = "10.0.1.30".parse()?;
    let error = provision(
        "i-0000000000000000e",
        address,
        &stack.store,
        &stack.secrets,
        &stack.ids,
        &stack.dir.join("e"),
        Duration::from_secs(2),
    )
    .await
    .expect_err("no CA can come");
    ensure!(
        error.to_string().contains("delete that item"),
        "the error does not say what to do: {error}"
    );
    ensure!(
        !stack.dir.join("e").exists(),
        "files were written without a CA"
    );
    Ok(())
}
