//! The stack's template, checked as code: `cfn-guard` (pinned, installed by
//! `scripts/setup.sh`) holds it to the rules in `tests/template/stack.guard`, and each rule is
//! shown to catch a template broken on purpose, one break at a time.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

fn cfn_guard() -> PathBuf {
    Path::new(testbed::layout::CACHE_DIR).join("cfn-guard/bin/cfn-guard")
}

/// The rules `template` breaks (empty: it passes them all), and all the rules evaluated.
fn broken_rules(template: &str) -> Result<(Vec<String>, Vec<String>)> {
    let file = tempfile(template)?;
    let output = std::process::Command::new(cfn_guard())
        .args(["validate", "--structured", "-S", "none", "-o", "json", "-r"])
        .arg(e2e::workspace().join("tests/template/stack.guard"))
        .arg("-d")
        .arg(&file)
        .output()
        .context("cfn-guard is missing: scripts/setup.sh installs it")?;
    std::fs::remove_file(&file)?;
    // 0: every rule passed; 19: some failed. Anything else is a broken rule or template.
    ensure!(
        matches!(output.status.code(), Some(0 | 19)),
        "cfn-guard failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())?;
    let names = |key: &str, rule: fn(&serde_json::Value) -> Option<&str>| -> Vec<String> {
        report[0][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(rule)
            .map(str::to_owned)
            .collect()
    };
    let broken = names("not_compliant", |v| v["Rule"]["name"].as_str());
    let mut all = names("compliant", |v| v.as_str());
    all.extend(broken.iter().cloned());
    Ok((broken, all))
}

fn tempfile(text: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "template-{}-{}.yaml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn template() -> Result<String> {
    Ok(std::fs::read_to_string(
        e2e::workspace().join("template.yaml"),
    )?)
}

/// One break: the rule that must catch it, and the text replaced (its first occurrence).
struct Break {
    rule: &'static str,
    what: &'static str,
    from: &'static str,
    to: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        rule: "lifecycle_hooks_target_the_queue",
        what: "a hook publishes to the dead-letter queue",
        from: "      AutoScalingGroupName: !Ref WorkerGroup\n      LifecycleTransition: autoscaling:EC2_INSTANCE_TERMINATING\n      NotificationTargetARN: !GetAtt LifecycleQueue.Arn",
        to: "      AutoScalingGroupName: !Ref WorkerGroup\n      LifecycleTransition: autoscaling:EC2_INSTANCE_TERMINATING\n      NotificationTargetARN: !GetAtt LifecycleDeadLetterQueue.Arn",
    },
    Break {
        rule: "lifecycle_hooks_cover_both_groups",
        what: "the workers lose their termination hook",
        from: "      AutoScalingGroupName: !Ref WorkerGroup\n      LifecycleTransition: autoscaling:EC2_INSTANCE_TERMINATING",
        to: "      AutoScalingGroupName: !Ref ManagerGroup\n      LifecycleTransition: autoscaling:EC2_INSTANCE_TERMINATING",
    },
    Break {
        rule: "lifecycle_hooks_match_the_processor",
        what: "a termination hook abandons on timeout",
        from: "      HeartbeatTimeout: 300\n      DefaultResult: CONTINUE",
        to: "      HeartbeatTimeout: 300\n      DefaultResult: ABANDON",
    },
    Break {
        rule: "lifecycle_hooks_match_the_processor",
        what: "a launch hook times out before the launch deadline",
        from: "      HeartbeatTimeout: 900\n      DefaultResult: ABANDON",
        to: "      HeartbeatTimeout: 300\n      DefaultResult: ABANDON",
    },
    Break {
        rule: "groups_roll_one_node_at_a_time",
        what: "two managers replaced at once",
        from: "MaxBatchSize: 1",
        to: "MaxBatchSize: 2",
    },
    Break {
        rule: "groups_roll_one_node_at_a_time",
        what: "the rolling update does not wait for the new node",
        from: "WaitOnResourceSignals: true",
        to: "WaitOnResourceSignals: false",
    },
    Break {
        rule: "groups_roll_one_node_at_a_time",
        what: "old workers go before new ones are in service",
        from: "MinInstancesInService: !Ref ClusterSize",
        to: "MinInstancesInService: 0",
    },
    Break {
        rule: "groups_roll_one_node_at_a_time",
        what: "the rolling update suspends terminations",
        from: "SuspendProcesses: [HealthCheck,",
        to: "SuspendProcesses: [Terminate, HealthCheck,",
    },
    Break {
        rule: "launch_templates_are_hardened",
        what: "IMDSv1 allowed",
        from: "HttpTokens: required",
        to: "HttpTokens: optional",
    },
    Break {
        rule: "launch_templates_are_hardened",
        what: "an unencrypted volume",
        from: "Encrypted: true",
        to: "Encrypted: false",
    },
    Break {
        rule: "swarm_ports_closed_standalone",
        what: "gossip open to the world",
        from: "      Description: Swarm node gossip (7946/tcp) between nodes\n      GroupId: !Ref NodeSecurityGroup\n      SourceSecurityGroupId: !Ref NodeSecurityGroup",
        to: "      Description: Swarm node gossip (7946/tcp) between nodes\n      GroupId: !Ref NodeSecurityGroup\n      CidrIp: 0.0.0.0/0",
    },
    Break {
        rule: "swarm_ports_closed_standalone",
        what: "the Docker API open to every node",
        from: "SourceSecurityGroupId: !Ref ProcessorSecurityGroup",
        to: "SourceSecurityGroupId: !Ref NodeSecurityGroup",
    },
    Break {
        rule: "swarm_ports_closed_inline",
        what: "swarm management open on the load balancer's group",
        from: "        - Description: HTTP from anywhere\n",
        to: "        - Description: Oops\n          IpProtocol: tcp\n          FromPort: 2000\n          ToPort: 3000\n          CidrIp: 0.0.0.0/0\n        - Description: HTTP from anywhere\n",
    },
    Break {
        rule: "published_ports_only_through_the_network_load_balancer",
        what: "a published port open to the world on the nodes",
        from: "          SourceSecurityGroupId: !Ref NetworkLoadBalancerSecurityGroup\n",
        to: "          CidrIp: 0.0.0.0/0\n",
    },
    Break {
        rule: "published_ports_only_through_the_network_load_balancer",
        what: "the load balancer takes the overlay port",
        from: "          FromPort: 4790\n          ToPort: 7945\n          CidrIp: !Ref PublishCidr",
        to: "          FromPort: 4789\n          ToPort: 7945\n          CidrIp: !Ref PublishCidr",
    },
    Break {
        rule: "swarm_ports_closed_inline",
        what: "the load balancer takes gossip from anywhere",
        from: "          FromPort: 7947\n          ToPort: 65535\n          CidrIp: !Ref PublishCidr",
        to: "          FromPort: 7946\n          ToPort: 65535\n          CidrIp: !Ref PublishCidr",
    },
    Break {
        rule: "listener_sync_changes_only_its_own",
        what: "the processor may change any listener of the account",
        from: "                Resource: !Sub arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener/${NetworkLoadBalancer.LoadBalancerFullName}/*\n                Condition:",
        to: "                Resource: !Sub arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener/*\n                Condition:",
    },
    Break {
        rule: "listener_sync_changes_only_its_own",
        what: "the processor may change listeners it did not tag",
        from: "                Condition:\n                  StringEquals:\n                    aws:ResourceTag/swarm:sync:",
        to: "                Condition:\n                  StringEquals:\n                    aws:ResourceTag/owner:",
    },
    Break {
        rule: "published_port_only_from_the_load_balancer",
        what: "the service port open to the world",
        from: "SourceSecurityGroupId: !Ref LoadBalancerSecurityGroup",
        to: "CidrIp: 0.0.0.0/0",
    },
    Break {
        rule: "no_ssh_unless_asked",
        what: "SSH open to the world",
        from: "      CidrIp: !Ref SshCidr",
        to: "      CidrIp: 0.0.0.0/0",
    },
    Break {
        rule: "least_privilege",
        what: "the processor may read every secret",
        from: "                Action: secretsmanager:GetSecretValue\n                Resource: !Ref ProcessorTlsSecret",
        to: "                Action: secretsmanager:GetSecretValue\n                Resource: \"*\"",
    },
    Break {
        rule: "least_privilege",
        what: "every SQS action",
        from: "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueAttributes]",
        to: "Action: sqs:*",
    },
    Break {
        rule: "least_privilege",
        what: "lifecycle actions of any group",
        from: "                Action: [autoscaling:DescribeAutoScalingInstances, autoscaling:DescribeAutoScalingGroups]",
        to: "                Action: [autoscaling:DescribeAutoScalingInstances, autoscaling:DescribeAutoScalingGroups, autoscaling:CompleteLifecycleAction]",
    },
    Break {
        rule: "least_privilege",
        what: "the workers may write the cluster table anywhere",
        from: "                Action: dynamodb:GetItem\n                Resource: !GetAtt ClusterTable.Arn",
        to: "                Action: dynamodb:PutItem\n                Resource: \"*\"",
    },
    Break {
        rule: "data_is_encrypted",
        what: "the cluster table unencrypted",
        from: "SSEEnabled: true",
        to: "SSEEnabled: false",
    },
    Break {
        rule: "data_is_encrypted",
        what: "the dead-letter queue unencrypted",
        from: "SqsManagedSseEnabled: true",
        to: "SqsManagedSseEnabled: false",
    },
    Break {
        rule: "data_is_encrypted",
        what: "no point-in-time recovery",
        from: "PointInTimeRecoveryEnabled: true",
        to: "PointInTimeRecoveryEnabled: false",
    },
    Break {
        rule: "queue_outlives_the_function",
        what: "the visibility timeout only five times the function's",
        from: "VisibilityTimeout: 720",
        to: "VisibilityTimeout: 600",
    },
    Break {
        rule: "processor_function_is_wired",
        what: "no partial batch failures",
        from: "            FunctionResponseTypes: [ReportBatchItemFailures]\n",
        to: "",
    },
    Break {
        rule: "least_privilege",
        what: "instances of any group marked unhealthy",
        from: "                Action: autoscaling:SetInstanceHealth\n                Resource:\n",
        to: "                Action: autoscaling:SetInstanceHealth\n                Resource:\n                  - \"*\"\n",
    },
    Break {
        rule: "spot_notices_reach_the_processor",
        what: "Spot notices sent to the dead-letter queue",
        from: "        - Id: lifecycle-queue\n          Arn: !GetAtt LifecycleQueue.Arn",
        to: "        - Id: lifecycle-queue\n          Arn: !GetAtt LifecycleDeadLetterQueue.Arn",
    },
    Break {
        rule: "spot_notices_reach_the_processor",
        what: "no rebalance recommendations",
        from: "detail-type: [EC2 Spot Instance Interruption Warning, EC2 Instance Rebalance Recommendation]",
        to: "detail-type: [EC2 Spot Instance Interruption Warning]",
    },
    Break {
        rule: "no_ssh_unless_asked",
        what: "port 22 open whether SshCidr is given or not",
        from: "    Type: AWS::EC2::SecurityGroupIngress\n    Condition: SshAllowed\n",
        to: "    Type: AWS::EC2::SecurityGroupIngress\n",
    },
    Break {
        rule: "no_ssh_unless_asked",
        what: "port 22 open to the world in the nodes' own rules",
        from: "        - Description: UDP target groups' health checks",
        to: "        - Description: SSH\n          IpProtocol: tcp\n          FromPort: 22\n          ToPort: 22\n          CidrIp: 0.0.0.0/0\n        - Description: UDP target groups' health checks",
    },
    Break {
        rule: "no_ssh_unless_asked",
        what: "the managers cannot be reached through Session Manager",
        from: "        - !Sub arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore\n",
        to: "        - !Sub arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess\n",
    },
    Break {
        rule: "container_logs_only_to_their_group",
        what: "the nodes may delete log groups",
        from: "            Action: [logs:CreateLogStream, logs:PutLogEvents]\n",
        to: "            Action: [logs:CreateLogStream, logs:PutLogEvents, logs:DeleteLogGroup]\n",
    },
    Break {
        rule: "container_logs_only_to_their_group",
        what: "the nodes may write to every log group",
        from: "            Resource: !GetAtt ContainerLogGroup.Arn\n",
        to: "            Resource: \"*\"\n",
    },
    Break {
        rule: "container_logs_only_to_their_group",
        what: "the container logs kept forever",
        from: "      RetentionInDays: !Ref LogRetentionDays\n",
        to: "",
    },
    Break {
        rule: "alarms_watch_what_operators_must_see",
        what: "an alarm that notifies no one",
        from: "      AlarmActions: [!Ref AlarmTopic]\n",
        to: "",
    },
    Break {
        rule: "alarms_watch_what_operators_must_see",
        what: "no alarm on forced drains",
        from: "      MetricName: DrainsForced\n",
        to: "      MetricName: DrainsStarted\n",
    },
    Break {
        rule: "alarms_watch_what_operators_must_see",
        what: "no alarm on the dead-letter queue",
        from: "      Dimensions: [{ Name: QueueName, Value: !GetAtt LifecycleDeadLetterQueue.QueueName }]\n",
        to: "      Dimensions: [{ Name: QueueName, Value: !GetAtt LifecycleQueue.QueueName }]\n",
    },
    Break {
        rule: "join_tokens_by_role",
        what: "the workers' role reads the manager join token",
        from: "                Resource: !Ref WorkerJoinTokenSecret\n",
        to: "                Resource: !Ref ManagerJoinTokenSecret\n",
    },
    Break {
        rule: "join_tokens_by_role",
        what: "the workers' role reads every secret of the account",
        from: "                Resource: !Ref WorkerJoinTokenSecret\n",
        to: "                Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*\n",
    },
    Break {
        rule: "join_tokens_by_role",
        what: "the processor's role reads the worker join token",
        from: "                Action: secretsmanager:GetSecretValue\n                Resource: !Ref ProcessorTlsSecret\n",
        to: "                Action: secretsmanager:GetSecretValue\n                Resource: [!Ref ProcessorTlsSecret, !Ref WorkerJoinTokenSecret]\n",
    },
    Break {
        rule: "join_tokens_by_role",
        what: "the workers' role gets a managed policy on secrets",
        from: "AmazonSSMManagedInstanceCore\n      Policies:\n        - PolicyName: worker-bootstrap\n",
        to: "AmazonSSMManagedInstanceCore\n        - arn:aws:iam::aws:policy/SecretsManagerReadWrite\n      Policies:\n        - PolicyName: worker-bootstrap\n",
    },
    Break {
        rule: "processor_function_is_wired",
        what: "no membership sweep",
        from: "          Type: Schedule\n",
        to: "          Type: SNS\n",
    },
    Break {
        rule: "processor_function_is_wired",
        what: "no reserved concurrency",
        from: "      ReservedConcurrentExecutions: 6\n",
        to: "",
    },
];

#[test]
fn the_template_keeps_every_rule() -> Result<()> {
    let (broken, all) = broken_rules(&template()?)?;
    ensure!(broken.is_empty(), "template.yaml breaks {broken:?}");
    // Every rule was evaluated (a rule that finds nothing to check is SKIPped, not passed).
    let mut expected: Vec<&str> = BREAKS.iter().map(|b| b.rule).collect();
    expected.dedup();
    for rule in expected {
        ensure!(
            all.iter().any(|r| r == rule),
            "{rule} was not evaluated: {all:?}"
        );
    }
    Ok(())
}

#[test]
fn each_rule_catches_a_template_broken_on_purpose() -> Result<()> {
    let template = template()?;
    let mut missed = Vec::new();
    for case in BREAKS {
        ensure!(
            template.contains(case.from),
            "the break `{}` no longer applies: template.yaml has no {:?}",
            case.what,
            case.from
        );
        let broken = template.replacen(case.from, case.to, 1);
        let (failed, _) = broken_rules(&broken)?;
        if !failed.iter().any(|r| r == case.rule) {
            missed.push(format!("{} ({}): failed {failed:?}", case.what, case.rule));
        }
    }
    ensure!(
        missed.is_empty(),
        "rules that missed their break:\n{}",
        missed.join("\n")
    );
    Ok(())
}

#[test]
fn the_alarms_watch_the_metrics_the_processor_writes() -> Result<()> {
    // The stack's alarms name the processor's metrics by their CloudWatch names, in its
    // namespace, with its `Stack` dimension: a rename on one side would leave an alarm
    // watching nothing, for ever "OK".
    use lifecycle::metrics::{DRAINS_FORCED, NAMESPACE, SWEEP_CANNOT_ACT};
    let template = template()?;
    for metric in [&DRAINS_FORCED, &SWEEP_CANNOT_ACT] {
        let alarm = format!(
            "      Namespace: {NAMESPACE}\n      MetricName: {}\n      Dimensions: [{{ Name: Stack, Value: !Ref AWS::StackName }}]\n",
            metric.cloudwatch
        );
        ensure!(
            template.contains(&alarm),
            "no alarm on {} in {NAMESPACE} by Stack",
            metric.cloudwatch
        );
    }
    ensure!(
        template.contains("          STACK_NAME: !Ref AWS::StackName\n"),
        "the processor is not told the stack's name (its metrics' Stack dimension)"
    );
    Ok(())
}

/// The whole number after `key: ` in the block of `resource` (its lines indented deeper).
fn number_in(template: &str, resource: &str, key: &str) -> Result<u64> {
    let start = template
        .find(&format!("\n  {resource}:\n"))
        .with_context(|| format!("no resource {resource}"))?;
    let value = template[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .with_context(|| format!("no {key} in {resource}"))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{resource}'s {key} is `{value}`"))
}

#[test]
fn fifty_terminations_at_once_are_all_in_flight_in_lambda_and_heartbeated() -> Result<()> {
    let template = template()?;
    let function = |key| number_in(&template, "LifecycleFunction", key);
    let (batch, concurrency, reserved) = (
        function("BatchSize")?,
        function("MaximumConcurrency")?,
        function("ReservedConcurrentExecutions")?,
    );
    // All 50 are received at once: one left in the queue is heartbeated by no one.
    let at_once = e2e::scale::TERMINATIONS as u64;
    ensure!(
        batch * concurrency >= at_once,
        "{batch} a batch x {concurrency} invocations holds fewer than {at_once} actions"
    );
    // The minute's sweep is an invocation too: it must not take a batch's place.
    ensure!(
        reserved > concurrency,
        "reserved concurrency {reserved} leaves no room for the sweep beside {concurrency} batches"
    );
    // Between two heartbeats of a waiting action: the heartbeat interval, and the time its
    // message is away between two invocations. Both hooks' timeouts must be longer.
    let heartbeat = lifecycle::config::Config::from_lookup(|var| {
        (var == lifecycle::config::vars::GROUPS).then(|| "g".to_owned())
    })?
    .heartbeat_every;
    let longest_gap = heartbeat + lifecycle::lambda::COME_BACK_AFTER;
    for hook in ["ManagerTerminatingHook", "WorkerTerminatingHook"] {
        let timeout = number_in(&template, hook, "HeartbeatTimeout")?;
        ensure!(
            longest_gap.as_secs() < timeout,
            "{hook}: a waiting action may go {longest_gap:?} without a heartbeat, past its {timeout} s"
        );
    }
    Ok(())
}
