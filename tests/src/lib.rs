//! Test harness: a real moto server on a free loopback port, a seeded fleet,
//! and helpers that read the results back from the emulated account.
//!
//! The AWS SDK talks HTTP to moto exactly as it would to AWS; nothing is mocked.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde::{Deserialize, Serialize};

pub mod alertmanager;
pub mod cloudwatch;
pub mod prometheus;
pub mod proxy;
pub mod sandbox;
pub mod ssm;

pub const REGION: &str = "us-east-1";
/// The instance id used in `events/`; tests and the demo put a seeded one in its place.
pub const SAMPLE_INSTANCE_ID: &str = "i-0123456789abcdef0";

/// The workspace root (where `events/` and `.venv/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn moto_server_bin() -> Result<PathBuf> {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/moto_server"));
    if !path.exists() {
        bail!(
            "{} not found: run `make test`, which installs the pinned moto into .venv",
            path.display()
        );
    }
    Ok(path)
}

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Result<Self> {
        let bin = moto_server_bin()?;
        let mut last = anyhow!("not started");
        // A port picked free can be taken before moto binds it: retry.
        for _ in 0..3 {
            let port = free_port()?;
            let mut command = Command::new(&bin);
            // With FR_IAM_RECORD_DIR (make test sets it), every request and
            // its answer is recorded, for the IAM evaluation of the
            // product's calls (tests/iam/).
            if let Some(dir) = std::env::var_os("FR_IAM_RECORD_DIR") {
                let python = bin.with_file_name("python");
                command = Command::new(python);
                command.arg(root().join("tests/iam/record_moto.py")).env(
                    "FR_IAM_RECORD",
                    PathBuf::from(dir).join(format!("moto-{}-{port}.jsonl", std::process::id())),
                );
            }
            let mut child = command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_ready(port, &mut child) {
                Ok(()) => return Ok(Self { child, endpoint }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        Err(last)
    }

    pub async fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("moto_server exited early: {status}");
        }
        // Listening, and by this child: tests run in parallel, and another
        // test's server may have been handed the same free port first.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            if listens_on(child.id(), port) {
                return Ok(());
            }
            if child.try_wait()?.is_some() {
                bail!("127.0.0.1:{port} is another process's; moto_server exited");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("moto_server did not listen on 127.0.0.1:{port} within 30 s")
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`
/// (from /proc: the socket's inode among the process's descriptors).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true; // no /proc: trust the connect
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
                .then(|| f.get(9).map(|i| format!("socket:[{i}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| inodes.iter().any(|i| t.to_string_lossy() == *i))
    })
}

/// The product's own SDK configuration (timeouts, retries), pointed at moto.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    first_responder::aws::sdk_config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "harness"))
        .load()
        .await
}

/// The SDK as another account in `region`: moto maps the credentials
/// `AssumeRole` returns to the role's account, so what is made with them is
/// that account's (and invisible to the default one).
pub async fn sdk_for_account(endpoint: &str, account: &str, region: &str) -> SdkConfig {
    let central = sdk_config(endpoint).await;
    let role = aws_config::sts::AssumeRoleProvider::builder(format!(
        "arn:aws:iam::{account}:role/harness"
    ))
    .session_name("harness")
    .configure(&central)
    .build()
    .await;
    let mut b = central.to_builder();
    b.set_region(Some(aws_config::Region::new(region.to_owned())));
    b.set_credentials_provider(Some(aws_sdk_ec2::config::SharedCredentialsProvider::new(
        role,
    )));
    b.build()
}

/// The environment a process (CLI, `cargo lambda watch`) needs to reach moto,
/// through the SDK's own `AWS_ENDPOINT_URL` support.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

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

async fn subscribe_queue(
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

/// The parameter the webhook reads its token from, in the tests.
pub const TOKEN_PARAMETER: &str = "/first-responder/webhook-token";

/// The parameter both functions read the approval links' key from, and the
/// key the tests put there (so a test can sign a link of its own, e.g. an
/// expired one).
pub const APPROVAL_KEY_PARAMETER: &str = "/first-responder/approval-key";
pub const APPROVAL_KEY: &str = "approval-test-key-0123456789abcdef0123456789";

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

/// moto, a seeded fleet, the webhook's token in an SSM SecureString, and both
/// functions under `cargo lambda watch`: the webhook's Lambda client pointed
/// at it, every other AWS call at moto.
pub struct Functions {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub fleet: Fleet,
    pub watch: Watch,
}

impl Functions {
    /// `extra`: more of the functions' environment (`ROUTES`, ...).
    pub async fn start(token: &str, extra: &[(&str, String)]) -> Result<Self> {
        let moto = Moto::start()?;
        let sdk = moto.sdk().await;
        let fleet = seed(&sdk, FleetSpec::default()).await?;
        // Read once at the functions' start, as in AWS.
        put_secret(&sdk, TOKEN_PARAMETER, token).await?;
        put_secret(&sdk, APPROVAL_KEY_PARAMETER, APPROVAL_KEY).await?;
        let port = free_port()?;
        let mut env = aws_env(&moto.endpoint);
        env.extend([
            (
                "AWS_ENDPOINT_URL_LAMBDA",
                format!("http://127.0.0.1:{port}"),
            ),
            ("NOTIFY_TOPIC_ARN", fleet.topic_arn.clone()),
            ("WEBHOOK_TOKEN_PARAMETER", TOKEN_PARAMETER.to_owned()),
            ("RESPONDER_FUNCTION", "responder".to_owned()),
            ("STATE_TABLE", fleet.state_table.clone()),
            ("DIAGNOSTICS_TIMEOUT_SECONDS", "20".to_owned()),
            // Approval links point back at the webhook as served here.
            ("APPROVAL_KEY_PARAMETER", APPROVAL_KEY_PARAMETER.to_owned()),
            (
                "APPROVAL_BASE_URL",
                format!("http://127.0.0.1:{port}/lambda-url/webhook/"),
            ),
        ]);
        env.extend(extra.iter().cloned());
        let watch = Watch::start(port, &env)?;
        Ok(Self {
            moto,
            sdk,
            fleet,
            watch,
        })
    }
}

/// `cargo lambda watch` serving every function of the workspace on a free
/// 127.0.0.1 port, with the given environment; stopped (whole process group)
/// on drop.
pub struct Watch {
    child: Child,
    pub port: u16,
    /// Where the functions' stdout and stderr go (logs, EMF metric lines).
    pub log: PathBuf,
}

impl Watch {
    pub fn start(port: u16, env: &[(&str, String)]) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let venv_bin = root().join(".venv/bin");
        if !venv_bin.join("cargo-lambda").exists() {
            bail!(
                "cargo-lambda not found in {}: run `make test`",
                venv_bin.display()
            );
        }
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log_path = std::env::temp_dir().join(format!("first-responder-watch-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new("cargo");
        cmd.args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .current_dir(root())
        .env("PATH", path)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting cargo lambda watch")?;
        // The first request may build a function; the port opens before that.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("cargo lambda watch exited: {status}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self {
                    child,
                    port,
                    log: log_path,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("cargo lambda watch did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn function_url(&self, function: &str) -> String {
        format!("/lambda-url/{function}/")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client for loopback tests: one request, `Connection: close`.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let status: u16 = head.split(' ').nth(1).context("no status")?.parse()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").context("bad chunk")?;
        let n = usize::from_str_radix(size.trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(tail.get(..n).context("short chunk")?);
        rest = tail.get(n + 2..).context("short chunk")?;
    }
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

/// A seeded emulator and the product's executor pointed at it: what most
/// integration tests start from.
pub struct World {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub fleet: Fleet,
    pub engine: first_responder::Engine,
    pub config: first_responder::Config,
    /// CloudWatch's CBOR to moto's JSON 1.0; `engine.aws.cloudwatch` goes through it.
    pub cloudwatch: cloudwatch::CloudWatchBridge,
}

impl World {
    /// Without a state table: every delivery is untracked.
    pub async fn start(spec: FleetSpec) -> Result<Self> {
        let moto = Moto::start()?;
        let sdk = moto.sdk().await;
        let fleet = seed(&sdk, spec).await?;
        let mut engine = fast_engine(&sdk);
        let cloudwatch = cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
        engine.aws.cloudwatch = cloudwatch.client(&sdk);
        let config = first_responder::Config {
            notify_topic_arn: Some(fleet.topic_arn.clone()),
            ..first_responder::Config::default()
        };
        Ok(Self {
            moto,
            sdk,
            fleet,
            engine,
            config,
            cloudwatch,
        })
    }

    /// With the state table: idempotency, cooldowns, flap guard, breaker.
    pub async fn start_with_state(spec: FleetSpec) -> Result<Self> {
        let mut w = Self::start(spec).await?;
        w.engine = w.engine.with_state(&w.sdk, &w.fleet.state_table);
        w.config.state_table = Some(w.fleet.state_table.clone());
        Ok(w)
    }

    /// Runs an event given as text, as the responder would.
    pub async fn handle_text(
        &self,
        text: &str,
        mode: first_responder::Mode,
    ) -> Result<first_responder::Report> {
        Ok(first_responder::handle(
            serde_json::from_str(text)?,
            &self.engine,
            &self.config,
            mode,
        )
        .await?)
    }

    /// Runs an event given as text, in `Mode::Run`.
    pub async fn handle(&self, text: &str) -> Result<first_responder::Report> {
        self.handle_text(text, first_responder::Mode::Run).await
    }

    /// Runs a sample from events/ about `instance`.
    pub async fn run(
        &self,
        name: &str,
        instance: &str,
        mode: first_responder::Mode,
    ) -> Result<first_responder::Report> {
        self.handle_text(&sample_event(name, instance)?, mode).await
    }

    /// Runs a sample from events/ about the fleet's first instance.
    pub async fn run_sample(&self, name: &str) -> Result<first_responder::Report> {
        self.run(name, self.fleet.instance(), first_responder::Mode::Run)
            .await
    }
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

/// The product's executor on `sdk`, polling SSM quickly (moto and the
/// stand-in answer at once): what the tests run with.
pub fn fast_aws(sdk: &SdkConfig) -> first_responder::Aws {
    let mut aws = first_responder::Aws::new(sdk);
    aws.poll = first_responder::aws::PollSchedule {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    aws
}

/// An untracked engine over [`fast_aws`]'s clients.
pub fn fast_engine(sdk: &SdkConfig) -> first_responder::Engine {
    first_responder::Engine::with_clients(fast_aws(sdk))
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
