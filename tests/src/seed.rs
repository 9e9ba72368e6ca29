//! The emulated account seeded: the fleet (instances, volumes, a group, the
//! topic and its queues, the state table), tags, parameters, metric series
//! and alarms.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::*;

#[derive(Clone, Copy, Debug)]
pub struct FleetSpec {
    pub desired: i32,
    pub max: i32,
    /// Tag the group, the instances and their volumes `first-responder=enabled`.
    pub opt_in: bool,
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            desired: 1,
            max: 3,
            opt_in: true,
        }
    }
}

pub const OPT_IN: (&str, &str) = ("first-responder", "enabled");

/// What `seed` created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fleet {
    pub group: String,
    /// Instances of the group; the first one has an extra data volume.
    pub instances: Vec<String>,
    pub data_volume: String,
    /// The first instance's root volume (its first block device mapping).
    #[serde(default)]
    pub root_volume: String,
    /// Private IP and DNS name of the first instance (what a Prometheus
    /// `instance` label carries).
    pub private_ip: String,
    pub private_dns: String,
    /// An instance outside any Auto Scaling group.
    pub standalone: String,
    pub topic_arn: String,
    /// Subscribed to the topic without a filter: receives every notification.
    pub inbox_queue_url: String,
    /// The state table (`pk` string key, TTL `expires_at`).
    pub state_table: String,
    /// Subscribed with the pager's filter policy: `severity = critical` only.
    pub pager_queue_url: String,
    /// `VERIFY_QUEUE_URL`: the check after a fix.
    #[serde(default)]
    pub verify_queue_url: String,
}

impl Fleet {
    pub fn instance(&self) -> &str {
        &self.instances[0]
    }
}

/// An AMI moto knows (its first Amazon image), for instances a test runs.
pub async fn moto_image(ec2: &aws_sdk_ec2::Client) -> Result<String> {
    // A region's first EC2 call makes moto load its AMI catalogue: seconds,
    // and more on a machine busy with a release build, past the product's
    // 5 s attempt timeout (each retry then starts the same load again).
    let patient = aws_sdk_ec2::config::Builder::default().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(120))
            .build(),
    );
    let images = ec2
        .describe_images()
        .owners("amazon")
        .customize()
        .config_override(patient)
        .send()
        .await?;
    Ok(images
        .images()
        .first()
        .and_then(|i| i.image_id())
        .context("moto has no AMI")?
        .to_owned())
}

/// Seeds a small fleet: a launch template, an Auto Scaling group with
/// instances (each with a root volume), a data volume on the first instance,
/// a standalone instance, and an SNS topic with two SQS subscribers.
pub async fn seed(sdk: &SdkConfig, spec: FleetSpec) -> Result<Fleet> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);

    let image = moto_image(&ec2).await?;
    let subnets = ec2.describe_subnets().send().await?;
    let subnet = subnets
        .subnets()
        .first()
        .context("moto has no default subnet")?;
    let subnet_id = subnet.subnet_id().context("subnet without id")?.to_owned();
    let az = subnet
        .availability_zone()
        .context("subnet without AZ")?
        .to_owned();

    ec2.create_launch_template()
        .launch_template_name("web")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(&image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    let group = "web-asg".to_owned();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("web")
                .version("$Latest")
                .build(),
        )
        .min_size(1)
        .max_size(spec.max)
        .desired_capacity(spec.desired)
        .vpc_zone_identifier(&subnet_id)
        .send()
        .await?;
    let instances: Vec<String> = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await?
        .auto_scaling_groups()
        .first()
        .context("group not created")?
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(ToOwned::to_owned))
        .collect();
    let first = instances
        .first()
        .context("the group launched no instance")?
        .clone();

    let vol = ec2
        .create_volume()
        .availability_zone(&az)
        .size(20)
        .volume_type(aws_sdk_ec2::types::VolumeType::Gp3)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .tags(Tag::builder().key("Name").value("web-data").build())
                .build(),
        )
        .send()
        .await?;
    let data_volume = vol.volume_id().context("volume without id")?.to_owned();
    ec2.attach_volume()
        .volume_id(&data_volume)
        .instance_id(&first)
        .device("/dev/sdf")
        .send()
        .await?;

    let described = ec2.describe_instances().instance_ids(&first).send().await?;
    let me = described
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
        .context("first instance not described")?;
    let root_volume = me
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() != Some("/dev/sdf"))
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_id())
        .context("the first instance has no root volume")?
        .to_owned();
    let private_ip = me.private_ip_address().context("no private IP")?.to_owned();
    let private_dns = me
        .private_dns_name()
        .context("no private DNS name")?
        .to_owned();

    let standalone = ec2
        .run_instances()
        .image_id(&image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(&subnet_id)
        .min_count(1)
        .max_count(1)
        .send()
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("standalone instance not created")?
        .to_owned();

    if spec.opt_in {
        // Everything in the fleet opts in: the group, instances and volumes.
        asg.create_or_update_tags()
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&group)
                    .resource_type("auto-scaling-group")
                    .key(OPT_IN.0)
                    .value(OPT_IN.1)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await?;
        let mut ids: Vec<String> = instances.clone();
        ids.push(standalone.clone());
        let vols = ec2
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .set_values(Some(ids.clone()))
                    .build(),
            )
            .send()
            .await?;
        ids.extend(
            vols.volumes()
                .iter()
                .filter_map(|v| v.volume_id().map(ToOwned::to_owned)),
        );
        ec2.create_tags()
            .set_resources(Some(ids))
            .tags(Tag::builder().key(OPT_IN.0).value(OPT_IN.1).build())
            .send()
            .await?;
    }

    let topic_arn = sns
        .create_topic()
        .name("oncall")
        .send()
        .await?
        .topic_arn()
        .context("no topic arn")?
        .to_owned();
    let inbox_queue_url = subscribe_queue(&sns, &sqs, &topic_arn, "oncall-inbox", None).await?;
    let pager_queue_url = subscribe_queue(
        &sns,
        &sqs,
        &topic_arn,
        "pager",
        // As the template's pager subscription: critical pages, and every
        // OK (which resolves the incident a page opened).
        Some(PAGER_FILTER_POLICY),
    )
    .await?;

    Ok(Fleet {
        group,
        instances,
        data_volume,
        root_volume,
        private_ip,
        private_dns,
        standalone,
        topic_arn,
        inbox_queue_url,
        state_table: create_state_table(sdk).await?,
        pager_queue_url,
        verify_queue_url: create_verify_queue(sdk).await?,
    })
}

/// The state table as STATE_TABLE expects it: partition key `pk` (S), TTL on `expires_at`.
pub async fn create_state_table(sdk: &SdkConfig) -> Result<String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let name = "first-responder-state";
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    ddb.update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(name.to_owned())
}

/// The template's `PagerSubscription` filter policy.
pub const PAGER_FILTER_POLICY: &str = r#"{"$or":[{"severity":["critical"]},{"state":["OK"]}]}"#;

pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    name: &str,
    filter_policy: Option<&str>,
) -> Result<String> {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url()
        .context("no queue url")?
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .context("queue without arn")?
        .clone();
    let mut sub = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn);
    if let Some(p) = filter_policy {
        sub = sub.attributes("FilterPolicy", p);
    }
    sub.send().await?;
    Ok(url)
}

/// A sample event from `events/` with the seeded instance in place of the sample id.
pub fn sample_event(name: &str, instance: &str) -> Result<String> {
    let path = root().join("events").join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.replace(SAMPLE_INSTANCE_ID, instance))
}

/// Puts a tag on an EC2 resource.
pub async fn tag(sdk: &SdkConfig, resource: &str, key: &str, value: &str) -> Result<()> {
    aws_sdk_ec2::Client::new(sdk)
        .create_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await?;
    Ok(())
}

/// An SSM SecureString parameter in the emulated account.
pub async fn put_secret(sdk: &SdkConfig, name: &str, value: &str) -> Result<()> {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await?;
    Ok(())
}

/// One datapoint a period, oldest first, ending at `end`: what CloudWatch
/// would hold for the metric (through the bridge, as the product reads it).
pub async fn put_series(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    end: chrono::DateTime<chrono::Utc>,
    period_seconds: i64,
    values: &[f64],
) -> Result<()> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let n = values.len() as i64;
    let data: Vec<MetricDatum> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = end - chrono::Duration::seconds((n - 1 - i as i64) * period_seconds);
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(
                    dimensions
                        .iter()
                        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                        .collect(),
                ))
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    at.timestamp(),
                ))
                .value(*v)
                .build()
        })
        .collect();
    // PutMetricData takes up to 1,000 datapoints a call.
    for chunk in data.chunks(1000) {
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .context("PutMetricData")?;
    }
    Ok(())
}

/// A metric alarm as CloudWatch would hold it, in `state`.
#[allow(clippy::too_many_arguments)]
pub async fn put_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    alarm: &str,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    period: i32,
    threshold: f64,
    state: &str,
) -> Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    cw.put_metric_alarm()
        .alarm_name(alarm)
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                .collect(),
        ))
        .period(period)
        .evaluation_periods(1)
        .statistic(Statistic::Average)
        .threshold(threshold)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .context("PutMetricAlarm")?;
    cw.set_alarm_state()
        .alarm_name(alarm)
        .state_value(StateValue::from(state))
        .state_reason("seeded by the test")
        .send()
        .await
        .context("SetAlarmState")?;
    Ok(())
}

/// The verification queue (`VERIFY_QUEUE_URL`): a plain SQS queue.
pub async fn create_verify_queue(sdk: &SdkConfig) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let out = sqs
        .create_queue()
        .queue_name(format!("first-responder-verify-{}", std::process::id()))
        .send()
        .await
        .context("CreateQueue")?;
    out.queue_url().map(ToOwned::to_owned).context("queue url")
}
