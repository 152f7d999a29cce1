//! Secrets in moto's Secrets Manager, as the stack makes them: created holding `{}`, written
//! by the first manager's bootstrap, read by the processor.

use anyhow::Result;
use swarm_aws::pki::Issued;

/// A new secret holding `{}`, named after `name` and this process; its ARN.
pub async fn create_empty(name: &str) -> Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&crate::sdk_config().await?);
    let created = client
        .create_secret()
        .name(format!("e2e-{name}-{}-{}", std::process::id(), uuid_like()))
        .secret_string("{}")
        .send()
        .await?;
    Ok(created.arn().unwrap_or_default().to_owned())
}

/// A secret holding the test bed's client certificate (what the first manager writes for the
/// processor); its ARN.
pub async fn put_client_certificate(name: &str) -> Result<String> {
    let dir = testbed::tls::client_dir();
    let read = |file: &str| std::fs::read_to_string(dir.join(file));
    let issued = Issued {
        ca: read("ca.pem")?,
        cert: read("cert.pem")?,
        key: read("key.pem")?,
    };
    let arn = create_empty(name).await?;
    let secrets = swarm_aws::adapters::secrets::Secrets::new(aws_sdk_secretsmanager::Client::new(
        &crate::sdk_config().await?,
    ));
    secrets.write(&arn, &issued).await?;
    Ok(arn)
}

/// A short unique suffix: secret names must not repeat within moto's lifetime.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{nanos:x}")
}
