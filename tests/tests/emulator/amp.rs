//! Amazon Managed Service for Prometheus delivers alerts only to SNS. The
//! shipped alert manager definition (`infra/amp/`), made local by its
//! check script, runs in Debian's real Alertmanager: its SNS receiver
//! publishes the group, rendered by the shipped template, to a topic in the
//! emulated account; the topic's SQS subscription holds what SNS would hand
//! the responder, which gets it as Lambda's SNS event.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use harness::alertmanager::Alertmanager;
use harness::{
    FleetSpec, World, desired_capacity, eventually, receive_and_delete, root, status_of,
};

#[tokio::test]
async fn amp_alerts_through_sns_reach_the_responder() -> Result<()> {
    let w = World::start(FleetSpec::default()).await?;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let topic = sns
        .create_topic()
        .name("first-responder-amp")
        .send()
        .await?
        .topic_arn
        .context("topic arn")?;
    let queue = sqs
        .create_queue()
        .queue_name("amp-delivery")
        .send()
        .await?
        .queue_url
        .context("queue url")?;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("queue arn")?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await?;
    // The definition's configuration and template, its SNS receiver pointed
    // at the emulator.
    let dir = std::env::temp_dir().join(format!("first-responder-amp-{}", std::process::id()));
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("infra/amp/check.py"))
        .args(["--local", &dir.display().to_string(), "--topic-arn", &topic])
        .args(["--api-url", &w.moto.endpoint])
        .output()
        .context("running infra/amp/check.py (make test installs .venv)")?;
    if !out.status.success() {
        bail!("check.py --local: {}", String::from_utf8_lossy(&out.stderr));
    }
    let config = String::from_utf8(out.stdout)?.trim().to_owned();
    let am = Alertmanager::start_with_config(std::path::Path::new(&config))?;
    // As AMP's ruler posts it: the shipped HighCPUUsage rule's labels and
    // annotations, with a description that needs escaping.
    am.post(&serde_json::json!([{
        "labels": {
            "alertname": "HighCPUUsage",
            "instance": format!("{}:9100", w.fleet.private_ip),
            "job": "node-exporter",
            "severity": "warning"
        },
        "annotations": {
            "summary": "High CPU usage detected",
            "description": "CPU usage is \"above\" 80% \\ (current value: 95.3%)\nsee the runbook",
            "value": "95.3",
            "threshold": "80"
        }
    }]))?;
    let message = eventually(Duration::from_secs(30), || async {
        Ok(receive_and_delete(&w.sdk, &queue).await?.into_iter().next())
    })
    .await
    .with_context(|| format!("no SNS delivery; alertmanager's log:\n{}", am.logs()))?
    .1;
    let body: serde_json::Value = serde_json::from_str(&message)
        .with_context(|| format!("the rendered message is not JSON: {message}"))?;
    assert_eq!(body["version"], "4");
    assert_eq!(
        body["alerts"][0]["annotations"]["description"],
        "CPU usage is \"above\" 80% \\ (current value: 95.3%) see the runbook",
        "quotes and backslashes escaped, the line break a space"
    );
    // Lambda's SNS event for that message.
    let event = serde_json::json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic}:0b1c2d3e"),
        "Sns": {
            "Type": "Notification",
            "MessageId": "5f1c0a4e-0000-4000-8000-000000000001",
            "TopicArn": topic,
            "Subject": "first-responder: HighCPUUsage",
            "Message": message,
            "Timestamp": "2026-11-25T02:04:13.000Z",
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertUrl": "",
            "UnsubscribeUrl": "",
            "MessageAttributes": {}
        }
    }]});
    let r = w.handle(&event.to_string()).await?;
    let i = &r.incidents[0];
    assert_eq!(
        (i.kind.as_str(), i.source, i.instance.as_deref(), i.value),
        (
            "high_cpu",
            "alertmanager",
            Some(w.fleet.instance()),
            Some(95.3)
        ),
        "{r:#?}"
    );
    let (st, _) = status_of(&r, "scale_out");
    assert_eq!(st, "done", "{r:#?}");
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    Ok(())
}
