//! Many accounts and regions against moto: fleets seeded in the default
//! account (A, us-east-1) and in account B in us-west-2 and us-east-1 (moto
//! maps `AssumeRole`'s credentials to the role's account). Every call of the
//! responder goes through a counting proxy, so the test sees which roles it
//! assumed and how often.

use anyhow::Result;
use first_responder::ids::AccountId;
use harness::proxy::{Fault, FaultProxy, Faults, Rule};
use harness::{FleetSpec, Moto, desired_capacity, sample_event, sdk_for_account, seed, snapshots};

const B: &str = "222222222222";

fn event_in(instance: &str, account: &str, region: &str, at: &str) -> Result<String> {
    Ok(sample_event("high-cpu-alarm.json", instance)?
        .replace(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:",
            &format!("arn:aws:cloudwatch:{region}:{account}:alarm:"),
        )
        .replace(
            "\"account\": \"123456789012\"",
            &format!("\"account\": \"{account}\""),
        )
        .replace(
            "\"region\": \"us-east-1\"",
            &format!("\"region\": \"{region}\""),
        )
        .replace("2026-11-25T02:04:12.152+0000", at))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_from_another_account_and_region_acts_only_there() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let home = seed(&sdk, FleetSpec::default()).await?;
    let b_west = sdk_for_account(&moto.endpoint, B, "us-west-2").await;
    let b_east = sdk_for_account(&moto.endpoint, B, "us-east-1").await;
    let west = seed(&b_west, FleetSpec::default()).await?;
    let east = seed(&b_east, FleetSpec::default()).await?;
    assert_ne!(west.instance(), home.instance());

    // The responder's every call through a proxy that counts role assumptions.
    static RULES: [Rule; 2] = [
        Rule {
            action: "AssumeRole",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "GetCallerIdentity",
            fault: Fault::Count,
            times: u64::MAX,
        },
    ];
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            rules: &RULES,
            ..Default::default()
        },
    )
    .await?;
    let central = harness::sdk_config(&proxy.endpoint).await;
    let aws = harness::fast_aws(&central)
        .with_state(&central, &home.state_table)
        .with_members(&central);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_accounts: vec![AccountId::parse("t", B)?],
        member_external_id: Some("fr-external-id".into()),
        account_aliases: [(B.to_owned(), "prod".to_owned())].into(),
        ..first_responder::Config::default()
    };
    let run = |text: String| {
        let (aws, config) = (&aws, &config);
        async move {
            first_responder::handle(
                serde_json::from_str(&text)?,
                aws,
                config,
                first_responder::Mode::Run,
            )
            .await
            .map_err(anyhow::Error::from)
        }
    };

    // B's alarm in us-west-2: B's group there scales, nothing else does.
    let r = run(event_in(
        west.instance(),
        B,
        "us-west-2",
        "2026-11-25T02:04:12.152+0000",
    )?)
    .await?;
    let i = &r.incidents[0];
    assert!(!r.any_failed(), "{i:#?}");
    assert_eq!(i.account.as_deref(), Some("222222222222 (prod)"));
    assert_eq!(i.region.as_deref(), Some("us-west-2"));
    assert_eq!(desired_capacity(&b_west, &west.group).await?, 2);
    assert_eq!(
        desired_capacity(&b_east, &east.group).await?,
        1,
        "B in us-east-1 untouched"
    );
    assert_eq!(desired_capacity(&sdk, &home.group).await?, 1, "A untouched");
    assert_eq!(snapshots(&b_west).await?.len(), 2, "B's evidence, in B");
    assert!(snapshots(&sdk).await?.is_empty() && snapshots(&b_east).await?.is_empty());
    // The notification went to the deployment's own topic and names where.
    let inbox = harness::drain(&sdk, &home.inbox_queue_url).await?;
    let text = inbox[0].document()?["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("Where: us-west-2, account 222222222222 (prod)"),
        "{text}"
    );

    // A second incident in B reuses the role's credentials: one AssumeRole.
    let r = run(event_in(
        west.instance(),
        B,
        "us-west-2",
        "2026-11-25T05:04:12.152+0000",
    )?)
    .await?;
    assert_eq!(r.incidents[0].actions[0].status.as_str(), "done", "{r:#?}");
    let hits = proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(hits.first().copied(), Some(1), "AssumeRole calls: {hits:?}");
    assert_eq!(
        hits.get(1).copied(),
        Some(1),
        "GetCallerIdentity once: {hits:?}"
    );

    // The check after the fix reads where the incident acted; once the
    // account is no longer allowed, it says so instead of failing (which
    // SQS would retry into the dead-letter queue).
    let first = r.incidents[0].id.clone();
    let removed = first_responder::Config {
        allowed_accounts: Vec::new(),
        ..config.clone()
    };
    let v = aws
        .verify(&first, &removed, chrono::Utc::now())
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(
        v.note
            .as_deref()
            .is_some_and(|n| n.starts_with("not checked: account 222222222222 is not")),
        "{v:?}"
    );

    // An account outside the allow-list: refused, and nothing asked of it.
    let r = run(event_in(
        west.instance(),
        "333333333333",
        "us-west-2",
        "2026-11-25T06:04:12.152+0000",
    )?)
    .await?;
    let i = &r.incidents[0];
    assert!(
        i.notes.iter().any(|n| n.contains(
            "account 333333333333 is not this deployment's (123456789012) nor in ALLOWED_ACCOUNTS"
        )),
        "{i:#?}"
    );
    for a in i.actions.iter().filter(|a| a.action.as_str() != "notify") {
        assert_eq!(a.status.as_str(), "failed", "{a:?}");
    }
    let hits = proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(
        hits.first().copied(),
        Some(1),
        "no role assumed in 333333333333: {hits:?}"
    );
    Ok(())
}

/// Empty groups (desired 0), opted in, in one account: `n` of them named
/// `{prefix}-{i}`. Scaling one out is one change.
async fn empty_groups(sdk: &aws_config::SdkConfig, prefix: &str, n: usize) -> Result<Vec<String>> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let image = harness::moto_image(&ec2).await?;
    ec2.create_launch_template()
        .launch_template_name(format!("{prefix}-lt"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(image)
                .build(),
        )
        .send()
        .await?;
    let subnet = ec2
        .describe_subnets()
        .send()
        .await?
        .subnets()
        .first()
        .and_then(|s| s.subnet_id())
        .unwrap_or_default()
        .to_owned();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name(format!("{prefix}-lt"))
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(2)
            .desired_capacity(0)
            .vpc_zone_identifier(&subnet)
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .key("first-responder")
                    .value("enabled")
                    .resource_id(&name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await?;
        names.push(name);
    }
    Ok(names)
}

fn group_event(account: &str, group: &str) -> Result<String> {
    let text = std::fs::read_to_string(harness::root().join("events/group-high-cpu-alarm.json"))?;
    Ok(text
        .replace("123456789012", account)
        .replace("web-asg-high-cpu", &format!("{group}-high-cpu"))
        .replace("\"web-asg\"", &format!("\"{group}\"")))
}

/// A storm of 50 incidents on 50 groups over 3 accounts, all at once, with
/// budgets of 5 changes an hour per account and 8 overall: exactly 8
/// changes, no account past 5, the other 42 refused by name. The state
/// table's counters take concurrent increments, atomic in DynamoDB but not
/// in moto: every call goes upstream one at a time.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_across_accounts_never_spends_past_the_budgets() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let home = seed(&sdk, FleetSpec::default()).await?;
    let accounts = ["123456789012", B, "333333333333"];
    let mut sdks = vec![sdk.clone()];
    for a in &accounts[1..] {
        sdks.push(sdk_for_account(&moto.endpoint, a, "us-east-1").await);
    }
    let mut events = Vec::new();
    let mut groups = Vec::new();
    for (k, (a, s)) in accounts.iter().zip(&sdks).enumerate() {
        let n = if k == 2 { 16 } else { 17 };
        for g in empty_groups(s, &format!("storm{k}"), n).await? {
            events.push(group_event(a, &g)?);
            groups.push((k, g));
        }
    }
    assert_eq!(events.len(), 50);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            one_at_a_time: true,
            ..Default::default()
        },
    )
    .await?;
    // 50 incidents' calls queue behind one another at the proxy: no attempt
    // may time out there (a retried conditional write would find its own).
    let central = harness::sdk_config(&proxy.endpoint)
        .await
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(120))
                .operation_timeout(std::time::Duration::from_secs(240))
                .build(),
        )
        .build();
    let aws = harness::fast_aws(&central)
        .with_state(&central, &home.state_table)
        .with_members(&central);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_accounts: vec![
            AccountId::parse("t", B)?,
            AccountId::parse("t", "333333333333")?,
        ],
        budget_per_account_per_hour: Some(5),
        max_mutations_per_hour: 8,
        ..first_responder::Config::default()
    };
    let mut incidents = Vec::new();
    for e in &events {
        let (mut i, _) =
            first_responder::respond::incidents(serde_json::from_str(e)?, &config.routes)?;
        incidents.append(&mut i);
    }
    let r =
        first_responder::respond::respond(&incidents, 0, &aws, &config, first_responder::Mode::Run)
            .await;
    let scale: Vec<&first_responder::report::ActionReport> = r
        .incidents
        .iter()
        .filter_map(|i| i.actions.iter().find(|a| a.action.as_str() == "scale_out"))
        .collect();
    assert_eq!(scale.len(), 50);
    let done = scale.iter().filter(|a| a.status.as_str() == "done").count();
    assert_eq!(done, 8, "{scale:#?}");
    for a in scale.iter().filter(|a| a.status.as_str() != "done") {
        assert_eq!(a.status.as_str(), "skipped", "{a:?}");
        assert!(
            (a.reason.contains("the budget of account")
                && a.reason.contains("BUDGET_PER_ACCOUNT_PER_HOUR"))
                || a.reason.starts_with("circuit breaker open: 8 changes"),
            "{}",
            a.reason
        );
        assert!(
            a.reason.contains("not before about") || a.reason.contains("until about"),
            "{}",
            a.reason
        );
    }
    // Read back from the emulated accounts: 8 groups scaled, none past 5 in one account.
    let mut per_account = [0; 3];
    for (k, g) in &groups {
        if desired_capacity(&sdks[*k], g).await? == 1 {
            per_account[*k] += 1;
        }
    }
    assert_eq!(per_account.iter().sum::<i32>(), 8, "{per_account:?}");
    assert!(per_account.iter().all(|n| *n <= 5), "{per_account:?}");
    Ok(())
}

/// Replacements stop at the share of the group that may be down at once:
/// 10% of 20 instances is 2.
#[tokio::test(flavor = "multi_thread")]
async fn replacements_stop_at_the_groups_share() -> Result<()> {
    let mut w = harness::World::start_with_state(FleetSpec {
        desired: 20,
        max: 20,
        ..FleetSpec::default()
    })
    .await?;
    // Acting alone and without a cooldown: only the share limits.
    w.config.playbooks.service_down.approval_required.clear();
    w.config
        .playbooks
        .service_down
        .params
        .replace_instance
        .cooldown_minutes = 0;
    let ec2 = aws_sdk_ec2::Client::new(&w.sdk);
    let asg = aws_sdk_autoscaling::Client::new(&w.sdk);
    let members: Vec<String> = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&w.fleet.group)
        .send()
        .await?
        .auto_scaling_groups()
        .first()
        .map(|g| {
            g.instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(members.len(), 20);
    // Opted in (seed tags the first ones only if at all).
    ec2.create_tags()
        .set_resources(Some(members.clone()))
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("first-responder")
                .value("enabled")
                .build(),
        )
        .send()
        .await?;
    let mut outcomes = Vec::new();
    for (k, i) in members.iter().take(5).enumerate() {
        let e = sample_event("service-down-alarm.json", i)?.replace(
            "web-status-check-failed",
            &format!("web-status-check-failed-{k}"),
        );
        let r = w.handle(&e).await?;
        let a = r.incidents[0]
            .actions
            .iter()
            .find(|a| a.action.as_str() == "replace_instance")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no replace_instance"))?;
        outcomes.push((a.status.as_str().to_owned(), a.detail.unwrap_or(a.reason)));
    }
    let done = outcomes.iter().filter(|(s, _)| s == "done").count();
    assert_eq!(done, 2, "{outcomes:#?}");
    for (s, why) in outcomes.iter().skip(2) {
        assert_eq!(s, "skipped");
        assert!(why.contains("the share of group web-asg that may be down at once (2 of 20 instances an hour, MAX_GROUP_SHARE_PERCENT=10)"), "{why}");
    }
    let unhealthy = {
        let mut n = 0;
        for i in members.iter().take(5) {
            if harness::instance_health(&w.sdk, i).await? == "UNHEALTHY" {
                n += 1;
            }
        }
        n
    };
    assert_eq!(unhealthy, 2);
    let _ = ec2;
    Ok(())
}
