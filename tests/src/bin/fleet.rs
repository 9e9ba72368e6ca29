//! `fleet seed ENDPOINT` seeds the emulator and prints the fleet as JSON;
//! `fleet show ENDPOINT FLEET_JSON` prints what first-responder did there.
//! `fleet proxy UPSTREAM LATENCY_MS` runs a latency-adding proxy.
//! `fleet ssm-standin ENDPOINT FLEET_JSON` answers SSM for the fleet's first
//! instance from an instance stand-in (commands really run, in a private
//! mount namespace with an xfs data volume at /var; needs root), printing
//! its URL, or `unavailable: WHY` on a machine where it cannot run.
//! `fleet cloudwatch ENDPOINT FLEET_JSON DISK_PATH DISK_FSTYPE` serves
//! CloudWatch (the SDK's CBOR to moto's JSON 1.0, see `harness::cloudwatch`),
//! seeds the 3 hours before the sample alarms (CPU breaching at the end; the
//! data disk rising 2 points an hour) and the alarms themselves, and prints
//! its URL.
//! `fleet sqs-event ENDPOINT QUEUE_URL SECONDS` prints the queue's messages
//! as the SQS event Lambda would deliver (the delayed check after a fix).
//! `fleet oncall ENDPOINT EVENTS_FILE` makes a chat channel (a topic and a
//! queue subscribed to it) and the PagerDuty routing key in SSM, serves the
//! PagerDuty stand-in (`harness::pagerduty`), prints one JSON line of the
//! settings, and keeps the events it received in EVENTS_FILE;
//! `fleet oncall-show ENDPOINT CHAT_QUEUE_URL EVENTS_FILE` prints them.
//! Used by `make demo` and `make bench`.

use anyhow::{Context, Result, bail};
use harness::{
    Fleet, FleetSpec, desired_capacity, drain, sdk_config, seed, snapshots, ssm_commands,
    volume_modifications, volume_size,
};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["seed", endpoint] => {
            let fleet = seed(&sdk_config(endpoint).await, FleetSpec::default()).await?;
            println!("{}", serde_json::to_string(&fleet)?);
        }
        ["show", endpoint, fleet_file] => {
            let fleet: Fleet = serde_json::from_str(&std::fs::read_to_string(fleet_file)?)
                .with_context(|| format!("reading {fleet_file}"))?;
            show(endpoint, &fleet).await?;
        }
        ["wait", endpoint, fleet_file, count, seconds] => {
            // Until the inbox holds `count` notifications (the responder's
            // last step), so the asynchronous work is finished.
            let fleet: Fleet = serde_json::from_str(&std::fs::read_to_string(fleet_file)?)?;
            let sqs = aws_sdk_sqs::Client::new(&sdk_config(endpoint).await);
            let want: usize = count.parse()?;
            let deadline =
                std::time::Instant::now() + std::time::Duration::from_secs(seconds.parse()?);
            loop {
                let attrs = sqs
                    .get_queue_attributes()
                    .queue_url(&fleet.inbox_queue_url)
                    .attribute_names(
                        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                    )
                    .send()
                    .await?;
                let n: usize = attrs
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if n >= want {
                    println!("{n} notifications delivered");
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!("only {n} of {want} notifications after {seconds} s");
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
        ["health", endpoint, instance] => {
            // The instance's health as its Auto Scaling group sees it.
            let sdk = sdk_config(endpoint).await;
            println!(
                "{instance}: {}",
                harness::instance_health(&sdk, instance).await?
            );
        }
        ["sqs-event", endpoint, queue_url, seconds] => {
            // The queue's messages as Lambda's SQS event source hands them
            // to the function (received and deleted), once there are any.
            let sdk = sdk_config(endpoint).await;
            let deadline =
                std::time::Instant::now() + std::time::Duration::from_secs(seconds.parse()?);
            loop {
                if let Some(ev) = harness::take_sqs_event(&sdk, queue_url).await? {
                    println!("{ev}");
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!("no message in {queue_url} after {seconds} s");
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
        ["oncall", endpoint, events_file] => oncall(endpoint, events_file).await?,
        ["oncall-show", endpoint, queue_url, events_file] => {
            oncall_show(endpoint, queue_url, events_file).await?
        }
        ["cloudwatch", endpoint, fleet_file, disk_path, disk_fstype] => {
            let fleet: Fleet = serde_json::from_str(&std::fs::read_to_string(fleet_file)?)?;
            let sdk = sdk_config(endpoint).await;
            let bridge = harness::cloudwatch::CloudWatchBridge::start(endpoint).await?;
            let cw = bridge.client(&sdk);
            seed_metrics(&cw, fleet.instance(), disk_path, disk_fstype).await?;
            println!("{}", bridge.endpoint);
            // Serves until the demo stops this process group.
            std::future::pending::<()>().await;
        }
        ["ssm-standin", endpoint, fleet_file] => {
            use harness::ssm::{DataVolume, DiskLayout, Instance, SsmStandIn};
            let fleet: Fleet = serde_json::from_str(&std::fs::read_to_string(fleet_file)?)?;
            // The data volume is /var (so /var/tmp and /var/log are on it,
            // as on many hosts): old and young temp files, rotated logs, and
            // the volume 97% full; cleaned, then grown, on one filesystem.
            let seed = "head -c 2000000 /dev/urandom > /var/tmp/core.dump.old; head -c 1000 /dev/urandom > /var/tmp/session.lock; \
                        seq 1 200000 > /var/log/messages.1; seq 1 1000 > /var/log/messages; \
                        touch -d '40 days ago' /var/tmp/core.dump.old /var/log/messages.1; \
                        fallocate -l 19400M /var/dataset.bin";
            let volume = DataVolume {
                volume_id: fleet.data_volume.clone(),
                size_gib: 20,
                mount: "/var",
                fstype: "xfs",
                xen_name: "xvdf",
                layout: DiskLayout::Whole,
            };
            let sandbox = if is_root() {
                Instance::start_with(seed, Some(volume))
            } else {
                Err(anyhow::anyhow!(
                    "not root: no mount namespaces or loop devices"
                ))
            };
            let sandbox = match sandbox {
                Ok(s) => s,
                Err(e) => {
                    // moto's SSM prints nothing: the instance answers the
                    // disk preflight as a Xen instance prints it, as the
                    // suites' instances do, and nothing else.
                    println!("unavailable: {e}");
                    let standin = SsmStandIn::start(endpoint).await?;
                    standin.answer(fleet.instance(), "block devices", harness::XEN_LAYOUT);
                    println!("{}", standin.endpoint);
                    std::future::pending::<()>().await;
                    return Ok(());
                }
            };
            let standin = SsmStandIn::start(endpoint).await?;
            let sandbox = standin.add(fleet.instance(), sandbox);
            println!("{}", standin.endpoint);
            // What to detach and remove if this process is killed.
            println!("holder {}", sandbox.holder_pid());
            if let Some((device, file)) = sandbox.loop_device() {
                println!("loop {device} {}", file.display());
            }
            // Serves until the demo stops this process group.
            std::future::pending::<()>().await;
        }
        ["proxy", upstream, latency_ms, ref delays @ ..] => {
            // For `make bench`: a latency-adding proxy on 127.0.0.1; prints its
            // endpoint, then keeps the number of requests it forwarded in
            // /tmp/first-responder-proxy-<pid>.count, the times (unix ms) SNS
            // Publish calls were answered in …-<pid>.publish and the requests
            // by service and operation in …-<pid>.operations.json, until it is
            // stopped. Each WORD=SECONDS keeps SSM commands whose comment is
            // `first-responder WORD for …` InProgress for that long; each
            // WORD@FILE makes them print FILE's text.
            let mut ssm = Vec::new();
            let mut outputs = Vec::new();
            for d in delays.iter() {
                // WORD@FILE: what the instance prints for WORD's command.
                if let Some((word, file)) = d.split_once('@') {
                    let text =
                        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
                    outputs.push((
                        &*Box::leak(word.to_owned().into_boxed_str()),
                        &*Box::leak(text.into_boxed_str()),
                    ));
                    continue;
                }
                let (word, secs) = d
                    .split_once('=')
                    .with_context(|| format!("expected WORD=SECONDS, got {d}"))?;
                let secs: f64 = secs.parse().with_context(|| format!("seconds in {d}"))?;
                let word: &'static str = Box::leak(word.to_owned().into_boxed_str());
                ssm.push((word, std::time::Duration::from_secs_f64(secs)));
            }
            let faults = harness::proxy::Faults {
                latency: std::time::Duration::from_millis(latency_ms.parse()?),
                ssm_delays: Box::leak(ssm.into_boxed_slice()),
                ssm_outputs: Box::leak(outputs.into_boxed_slice()),
                ..Default::default()
            };
            let proxy = harness::proxy::FaultProxy::start(upstream, faults).await?;
            println!("{}", proxy.endpoint);
            let pid = std::process::id();
            let count = format!("/tmp/first-responder-proxy-{pid}.count");
            let publishes = format!("/tmp/first-responder-proxy-{pid}.publish");
            let operations = format!("/tmp/first-responder-proxy-{pid}.operations.json");
            loop {
                let n = proxy
                    .stats
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed);
                std::fs::write(&count, n.to_string())?;
                let times: Vec<String> = proxy
                    .stats
                    .publishes
                    .lock()
                    .map(|p| {
                        p.iter()
                            .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_millis().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                std::fs::write(&publishes, times.join("\n"))?;
                let ops = proxy
                    .stats
                    .by_operation
                    .lock()
                    .map(|o| o.clone())
                    .unwrap_or_default();
                std::fs::write(&operations, serde_json::to_string(&ops)?)?;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        _ => bail!(
            "usage: fleet seed ENDPOINT | fleet show ENDPOINT FLEET_JSON | fleet health ENDPOINT INSTANCE | fleet wait ENDPOINT FLEET_JSON NOTIFICATIONS SECONDS | fleet proxy UPSTREAM LATENCY_MS [WORD=SECONDS | WORD@FILE ...]"
        ),
    }
    Ok(())
}

async fn show(endpoint: &str, fleet: &Fleet) -> Result<()> {
    let sdk = sdk_config(endpoint).await;
    println!("== EBS snapshots (evidence) ==");
    for s in snapshots(&sdk).await? {
        println!("{} of {}  \"{}\"", s.id, s.volume, s.description);
        for (k, v) in &s.tags {
            println!("    tag {k} = {v}");
        }
    }
    println!("\n== SSM commands sent ==");
    for c in ssm_commands(&sdk).await? {
        println!("{} ({})", c.document, c.comment);
        // moto records every instance of the account on a command sent
        // without Targets; the request itself named one instance.
        println!(
            "    instances as moto records them: {}",
            c.instances.join(", ")
        );
        for line in &c.commands {
            println!("    $ {line}");
        }
    }
    println!("\n== Auto Scaling group ==");
    println!(
        "{}: desired capacity {}",
        fleet.group,
        desired_capacity(&sdk, &fleet.group).await?
    );
    println!("\n== EBS data volume ==");
    let mods = volume_modifications(&sdk, &fleet.data_volume).await?;
    println!(
        "{}: {} GiB, {} modification(s){}",
        fleet.data_volume,
        volume_size(&sdk, &fleet.data_volume).await?,
        mods.len(),
        mods.iter()
            .map(|(to, _)| format!(" -> {to} GiB"))
            .collect::<String>()
    );
    let pager = drain(&sdk, &fleet.pager_queue_url).await?;
    for (i, m) in drain(&sdk, &fleet.inbox_queue_url)
        .await?
        .iter()
        .enumerate()
    {
        println!("\n== Notification {} (SNS -> SQS subscriber) ==", i + 1);
        println!("Subject: {}", m.subject.as_deref().unwrap_or(""));
        println!(
            "severity attribute: {}",
            m.attribute("severity").unwrap_or("?")
        );
        let doc = m.document()?;
        println!("{}", doc["text"].as_str().unwrap_or(""));
    }
    println!(
        "== Pager subscription (critical pages and every OK) received {} message(s) ==",
        pager.len()
    );
    for m in &pager {
        println!("    {}", m.subject.as_deref().unwrap_or(""));
    }
    Ok(())
}

/// Whether this process runs as root (mount namespaces, loop devices).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The samples' alarms (they change state at 2026-11-25T02:04:12) and the
/// 3 hours of datapoints before them.
async fn seed_metrics(
    cw: &aws_sdk_cloudwatch::Client,
    instance: &str,
    disk_path: &str,
    disk_fstype: &str,
) -> Result<()> {
    use chrono::TimeZone;
    let end = chrono::Utc
        .with_ymd_and_hms(2026, 11, 25, 2, 0, 0)
        .single()
        .context("time")?;
    let cpu_dims = [("InstanceId", instance)];
    let mut cpu: Vec<f64> = (0..31).map(|i| 22.0 + f64::from(i % 7) * 3.5).collect();
    cpu.extend([84.0, 91.5, 95.3]);
    harness::put_series(cw, "AWS/EC2", "CPUUtilization", &cpu_dims, end, 300, &cpu).await?;
    // And around now (the demo's fix happens by the wall clock, whenever
    // the functions finish building): still high, from 10 minutes before to
    // 30 after, so the check after the fix shows it.
    let ahead =
        chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() / 300 * 300 + 1800, 0)
            .context("now")?;
    let mut since = vec![93.4];
    since.extend([91.0; 8]);
    harness::put_series(
        cw,
        "AWS/EC2",
        "CPUUtilization",
        &cpu_dims,
        ahead,
        300,
        &since,
    )
    .await?;
    harness::put_alarm(
        cw,
        "web-high-cpu",
        "AWS/EC2",
        "CPUUtilization",
        &cpu_dims,
        300,
        80.0,
        "ALARM",
    )
    .await?;
    let disk_dims = [
        ("InstanceId", instance),
        ("path", disk_path),
        ("device", "xvdf"),
        ("fstype", disk_fstype),
    ];
    let disk: Vec<f64> = (0..34)
        .map(|i| 97.2 - 2.0 * f64::from(33 - i) / 12.0)
        .collect();
    harness::put_series(
        cw,
        "CWAgent",
        "disk_used_percent",
        &disk_dims,
        end,
        300,
        &disk,
    )
    .await?;
    harness::put_alarm(
        cw,
        "web-data-disk-full",
        "CWAgent",
        "disk_used_percent",
        &disk_dims,
        300,
        90.0,
        "ALARM",
    )
    .await?;
    Ok(())
}

/// The demo's chat channel and PagerDuty: see the module's comment.
async fn oncall(endpoint: &str, events_file: &str) -> Result<()> {
    let sdk = sdk_config(endpoint).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("first-responder-chat")
        .send()
        .await?
        .topic_arn()
        .context("no topic arn")?
        .to_owned();
    let queue = harness::subscribe_queue(&sns, &sqs, &topic, "chat-channel", None).await?;
    let parameter = "/first-responder/pagerduty-routing-key";
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(parameter)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value("D3m0R0ut1ngKey0123456789abcdef01")
        .overwrite(true)
        .send()
        .await?;
    let pd = harness::pagerduty::PagerDutyStandIn::start().await?;
    println!(
        "{}",
        serde_json::json!({
            "chat_topic_arn": topic,
            "chat_queue_url": queue,
            "events_url": pd.url,
            "routing_key_parameter": parameter,
        })
    );
    // Serves until the demo stops this process group, keeping what came.
    loop {
        let got: Vec<serde_json::Value> = pd
            .received()
            .iter()
            .map(
                |r| serde_json::json!({"event": r.event, "invalid": r.invalid, "status": r.status}),
            )
            .collect();
        let tmp = format!("{events_file}.tmp");
        std::fs::write(&tmp, serde_json::to_string(&got)?)?;
        std::fs::rename(&tmp, events_file)?;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What the chat channel and PagerDuty got: each chat message as Amazon Q
/// Developer would show it (title, thread, the start of the description),
/// each PagerDuty event (action, key, severity, summary, the answer).
async fn oncall_show(endpoint: &str, queue_url: &str, events_file: &str) -> Result<()> {
    let sdk = sdk_config(endpoint).await;
    let chat = drain(&sdk, queue_url).await?;
    // Each message checked against the schema written from AWS's page.
    let schema = harness::schema::Validator::start(harness::schema::CHAT).await?;
    println!(
        "== Chat channel (Amazon Q Developer custom notifications): {} message(s)",
        chat.len()
    );
    for m in &chat {
        let v: serde_json::Value = serde_json::from_str(&m.message)?;
        let valid = match schema.check(&v).await? {
            Ok(()) => "valid".to_owned(),
            Err(e) => format!("INVALID: {e}"),
        };
        println!(
            "  thread {}  {}  ({valid})",
            v["metadata"]["threadId"].as_str().unwrap_or("?"),
            v["content"]["title"].as_str().unwrap_or("")
        );
        for line in v["content"]["description"]
            .as_str()
            .unwrap_or("")
            .lines()
            .take(4)
        {
            let line: String = line.chars().take(150).collect();
            println!("      {line}");
        }
    }
    if let Some(first) = chat.first() {
        println!("  the first message in full:");
        let v: serde_json::Value = serde_json::from_str(&first.message)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    let events: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(events_file).unwrap_or_else(|_| "[]".into()),
    )?;
    println!(
        "== PagerDuty Events API v2 (the stand-in): {} event(s)",
        events.len()
    );
    for e in &events {
        let ev = &e["event"];
        println!(
            "  POST /v2/enqueue {:<8} dedup_key {}  {:<8} {}  -> HTTP {}{}",
            ev["event_action"].as_str().unwrap_or("?"),
            ev["dedup_key"].as_str().unwrap_or("?"),
            ev["payload"]["severity"].as_str().unwrap_or(""),
            ev["payload"]["summary"].as_str().unwrap_or(""),
            e["status"],
            e["invalid"]
                .as_str()
                .map(|w| format!(" INVALID: {w}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
