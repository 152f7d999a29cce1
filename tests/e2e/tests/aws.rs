//! The test bed's local AWS: moto server, reached by the AWS SDK through its standard
//! endpoint settings only (`AWS_ENDPOINT_URL`, exported by `testbed env`).

use anyhow::{Context, Result};
use e2e::sdk_config;

#[tokio::test]
async fn a_message_sent_to_a_moto_queue_is_received_back_intact() -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config().await?);
    let name = format!("e2e-{}", std::process::id());
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await?
        .queue_url
        .context("no queue url")?;
    let body = r#"{"Event":"autoscaling:TEST_NOTIFICATION"}"#;
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(body)
        .send()
        .await?;
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .max_number_of_messages(10)
        .send()
        .await?;
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body.as_deref(), Some(body));
    sqs.delete_queue().queue_url(&queue_url).send().await?;
    Ok(())
}

#[tokio::test]
async fn a_conditional_put_to_a_moto_table_succeeds_once_and_then_fails_as_dynamodb_does()
-> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await?);
    let table = format!("e2e-{}", std::process::id());
    testbed::create_table(&dynamodb, &table).await?;
    // The pattern the node bootstrap relies on: only the first writer creates the record.
    let put = || {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("cluster".to_owned()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put().await?;
    let second = put()
        .await
        .expect_err("the second conditional put must fail");
    assert!(
        second
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
    dynamodb.delete_table().table_name(&table).send().await?;
    Ok(())
}
