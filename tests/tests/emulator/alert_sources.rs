//! Every shape in which an alert reaches the functions, end to end against moto.

use anyhow::Result;
use first_responder::{Mode, Report};
use harness::{
    Delivered, FleetSpec, World, desired_capacity, drain, sample_event, snapshots, ssm_commands,
};

async fn world() -> Result<World> {
    World::start(FleetSpec::default()).await
}

/// The full high_cpu response happened once, on the seeded instance.
async fn assert_full_response(w: &World, report: &Report) -> Result<()> {
    assert_eq!(report.incidents.len(), 1, "{report:#?}");
    let inc = &report.incidents[0];
    assert_eq!(inc.kind.as_str(), "high_cpu");
    assert_eq!(inc.instance.as_deref(), Some(w.fleet.instance()));
    let got: Vec<String> = inc
        .actions
        .iter()
        .map(|a| format!("{}:{}", a.action.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            "snapshot:done",
            "collect_diagnostics:done",
            "scale_out:done",
            "notify:done"
        ],
        "{report:#?}"
    );
    let snaps = snapshots(&w.sdk).await?;
    assert_eq!(snaps.len(), 2);
    assert!(
        snaps
            .iter()
            .all(|s| s.tags["first-responder:incident-id"] == inc.id
                && s.tags["first-responder:instance-id"] == w.fleet.instance())
    );
    assert_eq!(ssm_commands(&w.sdk).await?.len(), 1);
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].document()?["incident_id"], inc.id.as_str());
    Ok(())
}

/// An SNS message's body is believed once its alarm has been read: here,
/// in this account, in ALARM (it changed after the sample's time, which the
/// report says).
#[tokio::test]
async fn sns_wrapped_alarm() -> Result<()> {
    let w = world().await?;
    harness::put_alarm(
        &w.cloudwatch.client(&w.sdk),
        "web-high-cpu",
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", w.fleet.instance())],
        300,
        80.0,
        "ALARM",
    )
    .await?;
    let r = w.run_sample("sns-high-cpu-alarm.json").await?;
    assert_full_response(&w, &r).await?;
    assert!(
        r.incidents[0]
            .notes
            .iter()
            .any(|n| n.contains("was updated after the message")),
        "{r:#?}"
    );
    Ok(())
}

/// Without its alarm in the account, the same message changes nothing and
/// pages nobody.
#[tokio::test]
async fn sns_wrapped_alarm_that_is_not_there_is_refused() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("sns-high-cpu-alarm.json").await?;
    let i = &r.incidents[0];
    assert_eq!(
        i.refused.as_deref(),
        Some(
            "the message says this account, the alarm \"web-high-cpu\" is not there: refused, nothing changed"
        ),
        "{i:#?}"
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert!(ssm_commands(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn alarm_invoking_the_function_directly() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("direct-high-cpu-alarm.json").await?;
    assert_full_response(&w, &r).await
}

#[tokio::test]
async fn metric_math_alarm() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("high-cpu-metric-math.json").await?;
    assert_full_response(&w, &r).await
}

#[tokio::test]
async fn anomaly_detection_alarm() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("high-cpu-anomaly.json").await?;
    assert_full_response(&w, &r).await
}

#[tokio::test]
async fn same_occurrence_through_two_paths_is_one_incident_id() -> Result<()> {
    let w = world().await?;
    let a = w.run_sample("high-cpu-alarm.json").await?;
    let b = first_responder::respond::incidents(
        serde_json::from_str(&sample_event(
            "sns-high-cpu-alarm.json",
            w.fleet.instance(),
        )?)?,
        &Default::default(),
    )?;
    assert_eq!(a.incidents[0].id, b.0[0].id);
    Ok(())
}

#[tokio::test]
async fn composite_alarm_notifies_with_its_rule_and_remediates_nothing() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("composite-alarm.json").await?;
    let inc = &r.incidents[0];
    assert_eq!(inc.kind.as_str(), "unrouted");
    assert_eq!(
        inc.actions
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["notify"]
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert!(ssm_commands(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    let text = inbox[0].text()?;
    assert!(
        text.contains("composite alarm rule: \"ALARM(web-high-cpu) AND ALARM(web-5xx-rate)\""),
        "{text}"
    );
    assert!(text.contains("nothing was done"), "{text}");
    // The alarm's `severity` tag decides who is paged.
    assert_eq!(inbox[0].attribute("severity"), Some("critical"));
    Ok(())
}

#[tokio::test]
async fn group_level_alarm_scales_the_group_without_instance_evidence() -> Result<()> {
    let w = world().await?;
    let r = w.run_sample("group-high-cpu-alarm.json").await?;
    let got: Vec<String> = r.incidents[0]
        .actions
        .iter()
        .map(|a| format!("{}:{}:{}", a.action.as_str(), a.target, a.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            "scale_out:web-asg:done".to_owned(),
            format!("notify:{}:done", w.fleet.topic_arn)
        ]
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    assert!(snapshots(&w.sdk).await?.is_empty());
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(
        inbox[0].subject.as_deref(),
        Some("[ALARM] High CPU 95.3% on group web-asg")
    );
    Ok(())
}

fn alertmanager(w: &World, name: &str, address: &str) -> Result<String> {
    Ok(sample_event(name, w.fleet.instance())?.replace("10.0.1.5", address))
}

#[tokio::test]
async fn node_exporter_alert_with_only_a_private_ip_and_a_duplicate() -> Result<()> {
    let w = world().await?;
    let r = w
        .handle(&alertmanager(
            &w,
            "alertmanager-high-cpu.json",
            &w.fleet.private_ip,
        )?)
        .await?;
    assert_eq!(
        r.duplicates, 1,
        "the same fingerprint twice is one incident"
    );
    assert_full_response(&w, &r).await?;
    // The runbook's rule labels HighCPUUsage `warning`: the pager is not called.
    assert_eq!(r.incidents[0].severity.as_str(), "warning");
    assert!(drain(&w.sdk, &w.fleet.pager_queue_url).await?.is_empty());

    // Resolved: a short notice, nothing else.
    let r = w
        .handle(&alertmanager(
            &w,
            "alertmanager-high-cpu-resolved.json",
            &w.fleet.private_ip,
        )?)
        .await?;
    assert_eq!(r.incidents[0].transition, "resolved");
    assert_eq!(
        r.incidents[0]
            .actions
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["notify"]
    );
    assert_eq!(snapshots(&w.sdk).await?.len(), 2);
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert!(
        inbox[0]
            .subject
            .as_deref()
            .unwrap_or_default()
            .starts_with("[OK] Resolved: HighCPUUsage")
    );
    Ok(())
}

#[tokio::test]
async fn node_exporter_alert_by_private_dns_name() -> Result<()> {
    let w = world().await?;
    let r = w
        .handle(&alertmanager(
            &w,
            "alertmanager-high-cpu.json",
            &w.fleet.private_dns,
        )?)
        .await?;
    assert_full_response(&w, &r).await
}

#[tokio::test]
async fn unknown_address_is_said_plainly_and_nothing_is_done() -> Result<()> {
    let w = world().await?;
    let r = w
        .handle(&alertmanager(
            &w,
            "alertmanager-high-cpu.json",
            "10.99.99.99",
        )?)
        .await?;
    let inc = &r.incidents[0];
    assert!(inc.notes.iter().any(|n| n.contains("could not tell which instance 10.99.99.99 is: no instance in this account's only VPC has private IP 10.99.99.99")), "{:?}", inc.notes);
    assert_eq!(
        inc.actions
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["notify"]
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);
    Ok(())
}

#[tokio::test]
async fn other_kinds_are_routed_to_their_playbooks() -> Result<()> {
    let w = world().await?;
    let src = sample_event("alertmanager-high-cpu.json", w.fleet.instance())?
        .replace("10.0.1.5", &w.fleet.private_ip)
        .replace("HighCPUUsage", "DiskSpaceLow");
    let r = w.handle_text(&src, Mode::Run).await?;
    let inc = &r.incidents[0];
    assert_eq!(inc.kind.as_str(), "disk_full");
    // The value of a Prometheus disk alert is the free percentage: 95.3% free
    // is 4.7% used, so the playbook cleans up and does not expand.
    let status = |name: &str| {
        inc.actions
            .iter()
            .find(|a| a.action.as_str() == name)
            .map(|a| (a.status.as_str().to_owned(), a.reason.clone()))
            .unwrap_or_default()
    };
    assert_eq!(status("cleanup_temp").0, "done");
    assert_eq!(status("archive_logs").0, "done");
    let (st, why) = status("expand_volume");
    assert_eq!(st, "skipped");
    assert!(why.contains("usage 4.7% is below 95%"), "{why}");
    assert!(snapshots(&w.sdk).await?.is_empty());
    // The cleanup and the archive typically take 20 s: a short first page
    // went out before them, then the report.
    let inbox = drain(&w.sdk, &w.fleet.inbox_queue_url).await?;
    assert_eq!(inbox.len(), 2);
    assert!(inbox.iter().any(Delivered::is_first_page));
    let text = harness::the_report(&inbox)?.text()?;
    assert!(
        text.contains("NEXT STEPS (disk_full playbook)") && text.contains("du -sh"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn function_url_requests_as_the_webhook_receives_them() -> Result<()> {
    // The CLI and the responder accept the webhook's own input shape too.
    for name in [
        "function-url-alertmanager.json",
        "function-url-alertmanager-base64.json",
    ] {
        let w = world().await?;
        let mut v: serde_json::Value =
            serde_json::from_str(&sample_event(name, w.fleet.instance())?)?;
        let body = v["body"].as_str().unwrap_or_default().to_owned();
        let plain = if v["isBase64Encoded"] == true {
            use base64::Engine;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body)?)?
        } else {
            body
        };
        let swapped = plain.replace("10.0.1.5", &w.fleet.private_ip);
        v["body"] = if v["isBase64Encoded"] == true {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(swapped)
                .into()
        } else {
            swapped.into()
        };
        let r = w.handle_text(&v.to_string(), Mode::Run).await?;
        assert_eq!(r.duplicates, 1, "{name}");
        assert_full_response(&w, &r).await?;
    }
    Ok(())
}

#[tokio::test]
async fn alert_storm_becomes_one_incident_per_occurrence() -> Result<()> {
    use first_responder::webhook::{Request, Token, accept};
    let w = world().await?;
    let mut v: serde_json::Value = serde_json::from_str(&alertmanager(
        &w,
        "alertmanager-high-cpu.json",
        &w.fleet.private_ip,
    )?)?;
    let cpu = v["alerts"][0].clone();
    let mut down = cpu.clone();
    down["labels"]["alertname"] = "ServiceDown".into();
    down["labels"]["severity"] = "critical".into();
    down["fingerprint"] = "00000000000000aa".into();
    // 1,000 alerts, two occurrences: Alertmanager re-sending a group many times over.
    v["alerts"] = (0..1000)
        .map(|i| {
            if i % 5 == 0 {
                down.clone()
            } else {
                cpu.clone()
            }
        })
        .collect();
    let body = v.to_string();

    let token = Token::new("t", "storm-test-token-0000000")?;
    let accepted = accept(
        &Request {
            method: "POST",
            authorization: Some("Bearer storm-test-token-0000000"),
            body: Some(&body),
            base64: false,
            path: "/",
            ..Default::default()
        },
        &token,
        &Default::default(),
        None,
    )
    .map_err(|r| anyhow::anyhow!("refused: {r:?}"))?;
    assert_eq!(
        (
            accepted.alerts,
            accepted.duplicates,
            accepted.handoffs.len()
        ),
        (1000, 998, 2)
    );

    let r = w.handle_text(&body, Mode::Run).await?;
    assert_eq!((r.incidents.len(), r.duplicates), (2, 998));
    let mut kinds: Vec<&str> = r.incidents.iter().map(|i| i.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["high_cpu", "service_down"]);
    // Each incident once. High CPU: two snapshots, one scale-out, one command.
    // Service down: two snapshots of its own, evidence through EC2 (no SSM);
    // EC2's status checks pass, so the scrape failure replaces nothing.
    assert_eq!(snapshots(&w.sdk).await?.len(), 4);
    assert_eq!(ssm_commands(&w.sdk).await?.len(), 1);
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);
    assert_eq!(
        harness::instance_health(&w.sdk, w.fleet.instance()).await?,
        "HEALTHY"
    );
    assert_eq!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.len(), 2);
    Ok(())
}

/// Private addresses repeat across VPCs. A node-exporter `instance` label
/// is looked up only in the configured VPCs (`VPC_IDS`); without it, an
/// account with more than one VPC is refused rather than matched anywhere.
#[tokio::test]
async fn a_private_address_is_resolved_only_in_the_configured_vpcs() -> Result<()> {
    let mut w = World::start(FleetSpec::default()).await?;
    let ec2 = aws_sdk_ec2::Client::new(&w.sdk);
    let default_vpc = ec2
        .describe_vpcs()
        .send()
        .await?
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    // Another network with the same address space, and a host there at the
    // fleet instance's private IP.
    let other = ec2
        .create_vpc()
        .cidr_block("172.31.0.0/16")
        .send()
        .await?
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&other)
        .cidr_block("172.31.0.0/20")
        .send()
        .await?
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap_or_default()
        .to_owned();
    let image = harness::moto_image(&ec2).await?;
    let twin = ec2
        .run_instances()
        .image_id(&image)
        .subnet_id(&subnet)
        .private_ip_address(&w.fleet.private_ip)
        .min_count(1)
        .max_count(1)
        .send()
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .unwrap_or_default()
        .to_owned();
    assert!(twin.starts_with("i-"));
    let event = harness::sample_event("alertmanager-high-cpu.json", w.fleet.instance())?
        .replace("10.0.1.5", &w.fleet.private_ip);

    // VPC_IDS unset, two VPCs: refused, naming the setting; nothing done.
    let r = w.handle(&event).await?;
    let notes = r.incidents[0].notes.join("\n");
    assert!(
        notes.contains("VPC_IDS is not set and this account has 2 VPCs"),
        "{notes}"
    );
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 1);

    // The fleet's VPC: its instance, and the report says which VPC matched.
    w.config.vpc_ids = vec![default_vpc.clone()];
    let later = event.replace("2026-11-25T02:04:00", "2026-11-25T03:04:00");
    let r = w.handle(&later).await?;
    assert_eq!(r.incidents[0].instance.as_deref(), Some(w.fleet.instance()));
    let notes = r.incidents[0].notes.join("\n");
    assert!(
        notes.contains(&format!(
            "in {default_vpc}, looked up in VPC_IDS {default_vpc}"
        )),
        "{notes}"
    );
    assert_eq!(desired_capacity(&w.sdk, &w.fleet.group).await?, 2);

    // Both: the address names two hosts, and nothing is guessed.
    w.config.vpc_ids = vec![default_vpc, other.clone()];
    let third = event.replace("2026-11-25T02:04:00", "2026-11-25T04:04:00");
    let r = w.handle(&third).await?;
    let notes = r.incidents[0].notes.join("\n");
    assert!(
        notes.contains("refusing to guess") && notes.contains(&other),
        "{notes}"
    );
    Ok(())
}

/// Amazon Managed Service for Prometheus's delivery: an SNS event whose
/// message is the Alertmanager body the shipped template renders.
#[tokio::test]
async fn amp_alert_through_sns() -> Result<()> {
    let w = world().await?;
    let r = w
        .handle(&alertmanager(
            &w,
            "sns-amp-high-cpu.json",
            &w.fleet.private_ip,
        )?)
        .await?;
    assert_full_response(&w, &r).await?;
    assert_eq!(r.incidents[0].source, "alertmanager");
    Ok(())
}

/// Grafana Alerting's webhook payload, its rule title routed by `ROUTES`.
#[tokio::test]
async fn grafana_alert_routed_by_its_title() -> Result<()> {
    let mut w = world().await?;
    w.config.routes.insert(
        "High CPU usage".into(),
        first_responder::incident::IncidentKind::HighCpu,
    );
    let r = w
        .handle(&alertmanager(
            &w,
            "grafana-high-cpu.json",
            &w.fleet.private_ip,
        )?)
        .await?;
    assert_full_response(&w, &r).await?;
    assert_eq!(r.incidents[0].value, Some(95.3));
    Ok(())
}

/// An alert that names only an address is looked up once, for the fleet's
/// reads and the metric's alike: one DescribeVpcs (the lookup counts the
/// account's VPCs beside it), not one for each.
#[tokio::test]
async fn an_address_is_looked_up_once() -> Result<()> {
    use harness::proxy::{Fault, FaultProxy, Faults, Rule};
    let w = world().await?;
    let proxy = FaultProxy::start(
        &w.moto.endpoint,
        Faults {
            rules: &[Rule {
                action: "DescribeVpcs",
                fault: Fault::Count,
                times: u64::MAX,
            }],
            ..Faults::default()
        },
    )
    .await?;
    let engine = harness::fast_engine(&harness::sdk_config(&proxy.endpoint).await);
    let event = alertmanager(&w, "alertmanager-high-cpu.json", &w.fleet.private_ip)?;
    let r = first_responder::handle(serde_json::from_str(&event)?, &engine, &w.config, Mode::Run)
        .await?;
    assert_eq!(
        r.incidents[0].instance.as_deref(),
        Some(w.fleet.instance()),
        "{r:#?}"
    );
    let hits = proxy
        .stats
        .rule_hits
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone();
    assert_eq!(hits, vec![1], "DescribeVpcs calls");
    Ok(())
}

/// The template's AlarmNamePrefix (ALARM_NAME_PREFIX) holds for every
/// source, not only EventBridge's rules: an SNS message, an alarm action
/// and an Alertmanager alert outside it are rejected by name, and nothing
/// is read or changed for them.
#[tokio::test]
async fn the_alarm_name_prefix_holds_for_every_source() -> Result<()> {
    let mut w = world().await?;
    w.config.alarm_name_prefix = Some("prod-".into());
    for sample in [
        "sns-high-cpu-alarm.json",
        "direct-high-cpu-alarm.json",
        "alertmanager-high-cpu.json",
    ] {
        let r = w.run_sample(sample).await?;
        assert!(r.incidents.is_empty(), "{sample}: {r:#?}");
        assert_eq!(r.rejected.len(), 1, "{sample}: {r:#?}");
        assert!(
            r.rejected[0]
                .problem
                .contains("does not start with ALARM_NAME_PREFIX \"prod-\": not handled"),
            "{sample}: {:?}",
            r.rejected[0]
        );
    }
    assert!(snapshots(&w.sdk).await?.is_empty());
    assert!(ssm_commands(&w.sdk).await?.is_empty());
    assert!(drain(&w.sdk, &w.fleet.inbox_queue_url).await?.is_empty());
    Ok(())
}
