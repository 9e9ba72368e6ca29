//! What the tests read back from the emulated account: snapshots, volumes,
//! groups, SSM commands, the messages delivered, the state table.

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, Tag};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SnapshotSeen {
    pub id: String,
    /// Epoch seconds.
    pub start_time: f64,
    pub volume: String,
    pub description: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Snapshots in the account created by first-responder, oldest first.
pub async fn snapshots(sdk: &SdkConfig) -> Result<Vec<SnapshotSeen>> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:created-by")
                .values("first-responder")
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .snapshots()
        .iter()
        .map(|s| SnapshotSeen {
            id: s.snapshot_id().unwrap_or_default().to_owned(),
            start_time: s.start_time().map(|t| t.as_secs_f64()).unwrap_or_default(),
            volume: s.volume_id().unwrap_or_default().to_owned(),
            description: s.description().unwrap_or_default().to_owned(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        })
        .collect())
}

/// Size of a volume in GiB.
pub async fn volume_size(sdk: &SdkConfig, volume: &str) -> Result<i32> {
    let out = aws_sdk_ec2::Client::new(sdk)
        .describe_volumes()
        .volume_ids(volume)
        .send()
        .await?;
    out.volumes()
        .first()
        .and_then(|v| v.size())
        .with_context(|| format!("volume {volume} not found"))
}

/// Every modification of a volume: (target size, start time in epoch seconds).
pub async fn volume_modifications(sdk: &SdkConfig, volume: &str) -> Result<Vec<(i32, f64)>> {
    let out = aws_sdk_ec2::Client::new(sdk)
        .describe_volumes_modifications()
        .volume_ids(volume)
        .send()
        .await?;
    Ok(out
        .volumes_modifications()
        .iter()
        .map(|m| {
            (
                m.target_size().unwrap_or_default(),
                m.start_time().map(|t| t.as_secs_f64()).unwrap_or_default(),
            )
        })
        .collect())
}

/// The health an Auto Scaling group holds for an instance (HEALTHY, UNHEALTHY).
pub async fn instance_health(sdk: &SdkConfig, instance: &str) -> Result<String> {
    let out = aws_sdk_autoscaling::Client::new(sdk)
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await?;
    out.auto_scaling_instances()
        .first()
        .and_then(|i| i.health_status())
        .map(str::to_ascii_uppercase)
        .with_context(|| format!("{instance} is in no group"))
}

/// The instance's EC2 state (running, stopped, ...).
pub async fn instance_state(sdk: &SdkConfig, instance: &str) -> Result<String> {
    let out = aws_sdk_ec2::Client::new(sdk)
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await?;
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| {
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
        })
        .with_context(|| format!("no state for {instance}"))
}

/// Ends every lease in the state table, as if their time had passed: what
/// a redelivery after a crash finds once the crashed delivery's lease is up.
/// (The leases run minutes; the tests do not wait them out.)
pub async fn expire_leases(sdk: &SdkConfig, table: &str) -> Result<usize> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let items = ddb.scan().table_name(table).send().await?;
    let mut n = 0;
    for item in items.items() {
        if !item.contains_key("lease_until") {
            continue;
        }
        let Some(pk) = item.get("pk") else { continue };
        ddb.update_item()
            .table_name(table)
            .key("pk", pk.clone())
            .update_expression("SET lease_until = :past")
            .expression_attribute_values(":past", AttributeValue::N("1".into()))
            .send()
            .await?;
        n += 1;
    }
    Ok(n)
}

/// Items of the state table: pk → status.
pub async fn state_records(
    sdk: &SdkConfig,
    table: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let items = ddb.scan().table_name(table).send().await?;
    Ok(items
        .items()
        .iter()
        .filter_map(|i| {
            let pk = i.get("pk")?.as_s().ok()?.clone();
            let st = i
                .get("status")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            Some((pk, st))
        })
        .collect())
}

/// Everything first-responder could change in the account, as text that
/// compares equal when nothing changed: instances (state, tags), volumes
/// (size, type, attachments, tags, modifications), snapshots, and the group
/// (capacities, instance health, tags). Notifications and SSM commands are
/// not in it: dry-run still diagnoses and notifies.
pub async fn fleet_state(sdk: &SdkConfig) -> Result<String> {
    use std::fmt::Write;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let tags = |t: &[Tag]| {
        let mut v: Vec<String> = t
            .iter()
            .map(|t| {
                format!(
                    "{}={}",
                    t.key().unwrap_or_default(),
                    t.value().unwrap_or_default()
                )
            })
            .collect();
        v.sort();
        v.join(",")
    };
    let mut out = String::new();
    let mut lines = Vec::new();
    for r in ec2.describe_instances().send().await?.reservations() {
        for i in r.instances() {
            lines.push(format!(
                "instance {} {} [{}]",
                i.instance_id().unwrap_or_default(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str())
                    .unwrap_or_default(),
                tags(i.tags())
            ));
        }
    }
    for v in ec2.describe_volumes().send().await?.volumes() {
        let id = v.volume_id().unwrap_or_default();
        let mods = volume_modifications(sdk, id).await?;
        lines.push(format!(
            "volume {id} {} GiB {:?} attached {:?} [{}] modifications {:?}",
            v.size().unwrap_or_default(),
            v.volume_type(),
            v.attachments()
                .iter()
                .map(|a| (
                    a.instance_id().unwrap_or_default(),
                    a.device().unwrap_or_default()
                ))
                .collect::<Vec<_>>(),
            tags(v.tags()),
            mods.iter().map(|m| m.0).collect::<Vec<_>>()
        ));
    }
    for snap in ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await?
        .snapshots()
    {
        lines.push(format!(
            "snapshot {} of {} [{}]",
            snap.snapshot_id().unwrap_or_default(),
            snap.volume_id().unwrap_or_default(),
            tags(snap.tags())
        ));
    }
    for g in asg
        .describe_auto_scaling_groups()
        .send()
        .await?
        .auto_scaling_groups()
    {
        let mut inst: Vec<String> = g
            .instances()
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i.instance_id().unwrap_or_default(),
                    i.health_status().unwrap_or_default()
                )
            })
            .collect();
        inst.sort();
        lines.push(format!(
            "group {} desired {:?} min {:?} max {:?} instances {inst:?}",
            g.auto_scaling_group_name().unwrap_or_default(),
            g.desired_capacity(),
            g.min_size(),
            g.max_size()
        ));
    }
    lines.sort();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    Ok(out)
}

pub async fn desired_capacity(sdk: &SdkConfig, group: &str) -> Result<i32> {
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await?;
    out.auto_scaling_groups()
        .first()
        .and_then(|g| g.desired_capacity())
        .with_context(|| format!("group {group} not found"))
}

#[derive(Clone, Debug)]
pub struct CommandSeen {
    pub document: String,
    pub instances: Vec<String>,
    pub commands: Vec<String>,
    pub comment: String,
}

/// Every SSM command sent in the account.
pub async fn ssm_commands(sdk: &SdkConfig) -> Result<Vec<CommandSeen>> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let out = ssm.list_commands().send().await?;
    Ok(out
        .commands()
        .iter()
        .map(|c| CommandSeen {
            document: c.document_name().unwrap_or_default().to_owned(),
            instances: c.instance_ids().to_vec(),
            commands: c
                .parameters()
                .and_then(|p| p.get("commands"))
                .cloned()
                .unwrap_or_default(),
            comment: c.comment().unwrap_or_default().to_owned(),
        })
        .collect())
}

/// A notification as an SQS subscriber received it (the SNS envelope).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Delivered {
    #[serde(rename = "Subject")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "MessageAttributes", default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Delivered {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.get("Value")?.as_str()
    }

    pub fn document(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.message).context("the sqs body is not the JSON document")
    }

    /// The document's `text`: what the email says.
    pub fn text(&self) -> Result<String> {
        Ok(self.document()?["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The short first page sent while long work goes on (not the report).
    pub fn is_first_page(&self) -> bool {
        self.document()
            .is_ok_and(|d| d["first_page"].as_bool() == Some(true))
    }
}

/// The full report among an incident's messages (a first page may precede it).
pub fn the_report(messages: &[Delivered]) -> Result<&Delivered> {
    messages
        .iter()
        .find(|m| !m.is_first_page())
        .with_context(|| format!("no report among {} messages", messages.len()))
}

/// Receives what a queue holds (up to 10 messages) and deletes it, as a
/// consumer that handled it would: (message id, body) each.
pub async fn receive_and_delete(sdk: &SdkConfig, queue_url: &str) -> Result<Vec<(String, String)>> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await?;
    let mut got = Vec::new();
    for m in out.messages() {
        let body = m.body().context("message without body")?;
        got.push((
            m.message_id().unwrap_or_default().to_owned(),
            body.to_owned(),
        ));
        if let Some(h) = m.receipt_handle() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(h)
                .send()
                .await?;
        }
    }
    Ok(got)
}

/// Drains a queue: everything delivered so far.
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Result<Vec<Delivered>> {
    let mut all = Vec::new();
    loop {
        let got = receive_and_delete(sdk, queue_url).await?;
        if got.is_empty() {
            return Ok(all);
        }
        for (_, body) in got {
            all.push(
                serde_json::from_str(&body)
                    .with_context(|| format!("not an SNS envelope: {body}"))?,
            );
        }
    }
}

/// A state-table item's string and number attributes (None: no such item).
pub async fn state_item(
    sdk: &SdkConfig,
    table: &str,
    pk: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    let out = aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await?;
    Ok(out.item.map(|item| {
        item.into_iter()
            .filter_map(|(k, v)| match v {
                aws_sdk_dynamodb::types::AttributeValue::S(s)
                | aws_sdk_dynamodb::types::AttributeValue::N(s) => Some((k, s)),
                _ => None,
            })
            .collect()
    }))
}

/// Polls `check` every 200 ms until it returns `Some`, at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("condition not met within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What Lambda's SQS event source would hand the responder: the queue's
/// messages as an SQS event (received and deleted, as a successful batch).
pub async fn take_sqs_event(sdk: &SdkConfig, queue_url: &str) -> Result<Option<serde_json::Value>> {
    let got = receive_and_delete(sdk, queue_url).await?;
    if got.is_empty() {
        return Ok(None);
    }
    let records: Vec<serde_json::Value> = got
        .into_iter()
        .map(|(id, body)| serde_json::json!({"messageId": id, "eventSource": "aws:sqs", "body": body}))
        .collect();
    Ok(Some(serde_json::json!({ "Records": records })))
}

/// The first incident's `action`: (status, detail or else reason), or
/// ("absent", "") when it is not in the report.
pub fn status_of(r: &first_responder::Report, action: &str) -> (String, String) {
    r.incidents[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == action)
        .map(|a| {
            (
                a.status.as_str().to_owned(),
                a.detail.clone().unwrap_or_else(|| a.reason.clone()),
            )
        })
        .unwrap_or_else(|| ("absent".into(), String::new()))
}
