//! The stack, packaged and translated from SAM to plain CloudFormation offline
//! (`tests/template/package.py`, aws-sam-translator), created in moto's CloudFormation: a
//! smoke test that the template is deployable as a whole, with the resources it makes
//! checked through the services' own APIs. moto skips some types silently (listed in the
//! README); `tests/template/stack.guard` proves their wiring instead.

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use aws_sdk_cloudformation::types::{Capability, Parameter};

fn parameter(key: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_key(key)
        .parameter_value(value)
        .build()
}

#[tokio::test]
async fn the_translated_stack_is_created_in_moto_with_its_groups_queue_table_and_function()
-> Result<()> {
    let sdk = e2e::sdk_config().await?;
    let moto = testbed::moto::endpoint();
    let name = format!("e2e-stack-{}", std::process::id());
    let workspace = e2e::workspace();
    let translated = std::env::temp_dir().join(format!("{name}.json"));
    let output = std::process::Command::new(e2e::python())
        .arg(workspace.join("tests/template/package.py"))
        .arg(workspace.join("template.yaml"))
        .arg(&translated)
        .arg("--binary")
        .arg(e2e::binary("lifecycle")?)
        .args(["--endpoint", &moto, "--bucket", &name, "--moto"])
        .output()?;
    ensure!(
        output.status.success(),
        "package.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = std::fs::read_to_string(&translated)?;
    std::fs::remove_file(&translated)?;
    ensure!(
        !body.contains("AWS::Serverless"),
        "the SAM transform left serverless types"
    );

    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(body)
        .capabilities(Capability::CapabilityIam)
        // KeyName and SshCidr left empty (their default): no key, no port 22; Session
        // Manager is the way in.
        .parameters(parameter(
            "BootstrapUrl",
            "https://releases.example/bootstrap",
        ))
        .parameters(parameter("BootstrapSha256", &"0".repeat(64)))
        .send()
        .await
        .context("create_stack")?;
    let stack = cloudformation
        .describe_stacks()
        .stack_name(&name)
        .send()
        .await?
        .stacks()
        .first()
        .cloned()
        .context("no stack")?;
    ensure!(
        stack.stack_status().map(|s| s.as_str()) == Some("CREATE_COMPLETE"),
        "{:?} {:?}",
        stack.stack_status(),
        stack.stack_status_reason()
    );
    let outputs: HashMap<String, String> = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    for key in [
        "PublishedDnsName",
        "FindManagers",
        "LifecycleQueueUrl",
        "LifecycleDeadLetterQueueUrl",
        "ManagerGroupName",
        "WorkerGroupName",
    ] {
        ensure!(outputs.contains_key(key), "no output {key}: {outputs:?}");
    }

    // Every resource of a type moto makes was made.
    let resources = cloudformation
        .describe_stack_resources()
        .stack_name(&name)
        .send()
        .await?;
    let made: HashMap<&str, &str> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?,
                r.physical_resource_id().unwrap_or_default(),
            ))
        })
        .collect();
    for logical in [
        "Vpc",
        "PublicSubnetA",
        "PublicSubnetB",
        "PrivateSubnetA",
        "PrivateSubnetB",
        "NatGateway",
        "DynamoDbEndpoint",
        "NodeSecurityGroup",
        "ManagerSecurityGroup",
        "ProcessorSecurityGroup",
        "ClusterTable",
        "LifecycleQueue",
        "LifecycleDeadLetterQueue",
        "ManagerRole",
        "WorkerRole",
        "ProcessorRole",
        "ManagerLaunchTemplate",
        "WorkerLaunchTemplate",
        "ManagerGroup",
        "WorkerGroup",
        "NetworkLoadBalancer",
        "NetworkLoadBalancerSecurityGroup",
        "LifecycleFunction",
        "LifecycleFunctionLifecycle",
        "ContainerLogGroup",
        "ContainerLogsPolicy",
        "AlarmTopic",
    ] {
        ensure!(
            made.get(logical).is_some_and(|id| !id.is_empty()),
            "{logical} was not created: {made:?}"
        );
    }

    // No ServicePort: no Application Load Balancer.
    ensure!(
        !made.contains_key("LoadBalancer"),
        "an Application Load Balancer was made without ServicePort"
    );

    // No key and no SshCidr: nothing opens port 22 on the nodes.
    ensure!(
        !made.contains_key("NodeSshIngress"),
        "port 22 was opened without SshCidr"
    );
    let described = std::process::Command::new(e2e::python())
        .args([
            "-c",
            "import boto3,json,sys; g=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1').describe_security_groups(GroupIds=[sys.argv[2]]); print(json.dumps([p.get('FromPort') for p in g['SecurityGroups'][0]['IpPermissions']]))",
            &moto,
            made["NodeSecurityGroup"],
        ])
        .output()?;
    ensure!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    let ports: Vec<Option<i64>> = serde_json::from_slice(&described.stdout)?;
    ensure!(
        !ports.contains(&Some(22)),
        "the nodes' group opens port 22: {ports:?}"
    );

    // The groups as the stack sized them (3 managers, 2 workers, one spare for the rolling
    // update). The test bed points Auto Scaling at its emulator:
    // this stack lives in moto.
    let autoscaling = aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(&sdk)
            .endpoint_url(&moto)
            .build(),
    );
    for (group, min, max) in [("ManagerGroupName", 3, 4), ("WorkerGroupName", 2, 100)] {
        let described = autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&outputs[group])
            .send()
            .await?;
        let found = described
            .auto_scaling_groups()
            .first()
            .with_context(|| format!("{group} not found"))?;
        ensure!(
            found.min_size() == Some(min) && found.max_size() == Some(max),
            "{group}: min {:?} max {:?}",
            found.min_size(),
            found.max_size()
        );
        ensure!(
            found.launch_template().is_some(),
            "{group} has no launch template"
        );
        // No ServicePort: no Application Load Balancer, no target group from the stack; the
        // listener sync attaches those of the published ports.
        ensure!(
            found.target_group_arns().is_empty(),
            "{group} has a target group without ServicePort: {:?}",
            found.target_group_arns()
        );
        ensure!(
            found
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .count()
                == 2,
            "{group} is not in two subnets"
        );
    }

    // The queue: visibility six times the function's timeout, redriven to the DLQ.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(
            outputs["LifecycleQueueUrl"].replace("https://sqs.us-east-1.amazonaws.com", &moto),
        )
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await?;
    let attributes = attributes.attributes().context("no attributes")?;
    let get = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes.get(&name).cloned().unwrap_or_default()
    };
    ensure!(get(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout) == "720");
    let redrive = get(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy);
    ensure!(
        redrive.contains("LifecycleDeadLetterQueue") && redrive.contains("40"),
        "{redrive}"
    );

    // The table, keyed as the bootstrap writes it.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamodb
        .describe_table()
        .table_name(made["ClusterTable"])
        .send()
        .await?;
    let key = table
        .table()
        .map(|t| t.key_schema().to_vec())
        .unwrap_or_default();
    ensure!(
        key.len() == 1 && key[0].attribute_name() == "pk",
        "the table's key is {key:?}"
    );
    // Not deleted: moto deletes the VPC before what is in it and fails. The stack goes with
    // moto when the test bed goes down.
    Ok(())
}
