//! [`ClusterStore`] over DynamoDB, with `aws-sdk-dynamodb`: one item (`pk = "cluster"`) in the
//! stack's table, created with `attribute_not_exists(pk)` so that exactly one manager ever
//! initialises the swarm, even when every manager boots in the same second.
//!
//! The join tokens are not written here (each is a secret of its own, which only the roles
//! that join with it may read). A record written by an earlier version holds them, read as
//! [`Swarm::legacy_tokens`] until a manager moves them out ([`ClusterStore::forget_tokens`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::cluster::{ClusterRecord, JoinToken, JoinTokens, Swarm};
use crate::error::Error;
use crate::ports::{Claim, ClusterStore};

/// The partition key of the one item.
const KEY: &str = "cluster";
/// The partition key of the claim to make the Docker API's CA (its owner only: the CA itself
/// is in Secrets Manager, which the processor's role cannot read).
const CA_KEY: &str = "docker-ca";

/// The cluster record in a DynamoDB table whose partition key is `pk` (a string).
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// The record in `table`.
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

fn failed<E, R>(call: &'static str, error: SdkError<E, R>) -> Error
where
    E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::DynamoDb {
        call,
        source: crate::error::sdk_cause(error),
    }
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, Error> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| Error::MalformedRecord(format!("no string `{name}`")))
}

/// Whether a conditional put won.
fn won<R: std::fmt::Debug + Send + Sync + 'static>(
    put: Result<
        aws_sdk_dynamodb::operation::put_item::PutItemOutput,
        SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
    >,
) -> Result<Claim, Error> {
    match put {
        Ok(_) => Ok(Claim::Won),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(Claim::Lost)
        }
        Err(error) => Err(failed("PutItem", error)),
    }
}

/// Reads the item (pure, so it is unit-tested).
fn record(item: &HashMap<String, AttributeValue>) -> Result<ClusterRecord, Error> {
    match string(item, "status")?.as_str() {
        "initializing" => Ok(ClusterRecord::Initializing {
            owner: string(item, "owner")?,
        }),
        "ready" => Ok(ClusterRecord::Ready(Swarm {
            id: string(item, "swarm_id")?,
            managers: item
                .get("managers")
                .and_then(|v| v.as_l().ok())
                .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            legacy_tokens: match (item.get("manager_token"), item.get("worker_token")) {
                (None, None) => None,
                _ => Some(JoinTokens {
                    manager: JoinToken::new(string(item, "manager_token")?),
                    worker: JoinToken::new(string(item, "worker_token")?),
                }),
            },
        })),
        other => Err(Error::MalformedRecord(format!("unknown status `{other}`"))),
    }
}

impl ClusterStore for DynamoStore {
    async fn read(&self) -> Result<Option<ClusterRecord>, Error> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        answer.item.as_ref().map(record).transpose()
    }

    async fn claim(&self, owner: &str) -> Result<Claim, Error> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(KEY.into()))
            .item("status", AttributeValue::S("initializing".into()))
            .item("owner", AttributeValue::S(owner.into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        won(put)
    }

    async fn claim_ca(&self, owner: &str) -> Result<Claim, Error> {
        // The owner may claim again: a manager that rebooted before writing the CA makes it.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(CA_KEY.into()))
            .item("owner", AttributeValue::S(owner.into()))
            .condition_expression("attribute_not_exists(pk) OR #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.into()))
            .send()
            .await;
        won(put)
    }

    async fn publish(&self, owner: &str, swarm: &Swarm) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(KEY.into()))
            .item("status", AttributeValue::S("ready".into()))
            .item("owner", AttributeValue::S(owner.into()))
            .item("swarm_id", AttributeValue::S(swarm.id.clone()))
            .item(
                "managers",
                AttributeValue::L(
                    swarm
                        .managers
                        .iter()
                        .cloned()
                        .map(AttributeValue::S)
                        .collect(),
                ),
            )
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.into()))
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    async fn remove_manager(&self, address: &str) -> Result<(), Error> {
        // Read, then write the list without the address on the condition that it did not
        // change meanwhile (a manager joining appends to it): retried on a conflict.
        for _ in 0..10 {
            let Some(ClusterRecord::Ready(swarm)) = self.read().await? else {
                return Ok(());
            };
            if !swarm.managers.iter().any(|m| m == address) {
                return Ok(());
            }
            let list = |managers: &[String]| {
                AttributeValue::L(managers.iter().cloned().map(AttributeValue::S).collect())
            };
            let kept: Vec<String> = swarm
                .managers
                .iter()
                .filter(|m| *m != address)
                .cloned()
                .collect();
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(KEY.into()))
                .update_expression("SET managers = :kept")
                .condition_expression("managers = :seen")
                .expression_attribute_values(":kept", list(&kept))
                .expression_attribute_values(":seen", list(&swarm.managers))
                .send()
                .await;
            match update {
                Ok(_) => return Ok(()),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(failed("UpdateItem", error)),
            }
        }
        Err(Error::MalformedRecord(format!(
            "the managers' list kept changing while {address} was being removed from it"
        )))
    }

    async fn forget_tokens(&self) -> Result<(), Error> {
        // Idempotent: removing attributes that are gone changes nothing.
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(KEY.into()))
            .update_expression("REMOVE manager_token, worker_token")
            .condition_expression("#status = :ready")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", AttributeValue::S("ready".into()))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", e))?;
        Ok(())
    }

    async fn add_manager(&self, address: &str) -> Result<(), Error> {
        // Appended, then read back until it is there, twice a second apart: two managers
        // joining at once each append their own address, and a store that loses one of two
        // concurrent writes (moto does; DynamoDB does not) is repaired by the writer that lost,
        // even when the other's stale write lands just after its first check.
        let mut seen_once = false;
        for _ in 0..10 {
            match self.read().await? {
                Some(ClusterRecord::Ready(swarm))
                    if swarm.managers.iter().any(|m| m == address) =>
                {
                    if seen_once {
                        return Ok(());
                    }
                    seen_once = true;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                Some(ClusterRecord::Ready(_)) => seen_once = false,
                _ => {
                    return Err(Error::MalformedRecord(
                        "no ready swarm to add a manager to".into(),
                    ));
                }
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(KEY.into()))
                .update_expression("SET managers = list_append(managers, :address)")
                .condition_expression("#status = :ready")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":address",
                    AttributeValue::L(vec![AttributeValue::S(address.into())]),
                )
                .expression_attribute_values(":ready", AttributeValue::S("ready".into()))
                .send()
                .await
                .map_err(|e| failed("UpdateItem", e))?;
        }
        Err(Error::MalformedRecord(format!(
            "the manager address {address} did not stay in the record after ten writes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    #[test]
    fn a_claim_and_a_ready_swarm_are_read_back() {
        let claim = record(&item(&[("status", "initializing"), ("owner", "i-1")])).expect("claim");
        assert_eq!(
            claim,
            ClusterRecord::Initializing {
                owner: "i-1".into()
            }
        );
        let mut ready = item(&[("status", "ready"), ("swarm_id", "s1")]);
        ready.insert(
            "managers".into(),
            AttributeValue::L(vec![AttributeValue::S("10.0.1.10:2377".into())]),
        );
        let ClusterRecord::Ready(swarm) = record(&ready).expect("ready") else {
            panic!("not ready");
        };
        assert_eq!(swarm.managers, ["10.0.1.10:2377"]);
        assert_eq!(swarm.legacy_tokens, None);
    }

    #[test]
    fn a_record_of_an_earlier_version_is_read_with_its_tokens() {
        let old = item(&[
            ("status", "ready"),
            ("swarm_id", "s1"),
            ("manager_token", "SWMTKN-m"),
            ("worker_token", "SWMTKN-w"),
        ]);
        let ClusterRecord::Ready(swarm) = record(&old).expect("ready") else {
            panic!("not ready");
        };
        let tokens = swarm.legacy_tokens.expect("the old record's tokens");
        assert_eq!(tokens.worker.expose(), "SWMTKN-w");
        assert_eq!(tokens.manager.expose(), "SWMTKN-m");
        // Half of the pair is a record this code did not write.
        let half = item(&[
            ("status", "ready"),
            ("swarm_id", "s1"),
            ("worker_token", "w"),
        ]);
        let error = record(&half).expect_err("half the tokens");
        assert!(error.to_string().contains("manager_token"), "{error}");
    }

    #[test]
    fn a_record_this_code_did_not_write_is_refused_with_what_is_wrong() {
        let error = record(&item(&[("status", "ready")])).expect_err("no swarm id");
        assert!(error.to_string().contains("swarm_id"), "{error}");
        let error = record(&item(&[("status", "weird")])).expect_err("unknown");
        assert!(error.to_string().contains("weird"), "{error}");
    }
}
