//! Many accounts and regions against moto: fleets seeded in the default
//! account (A, us-east-1) and in account B in us-west-2 and us-east-1 (moto
//! maps `AssumeRole`'s credentials to the role's account). Every call of the
//! responder goes through a counting proxy, so the test sees which roles it
//! assumed and how often.

use anyhow::Result;
use first_responder::ids::AccountId;
use harness::proxy::{Fault, FaultProxy, Faults, Rule};
use harness::{
    Fleet, FleetSpec, Moto, desired_capacity, sample_event, sdk_for_account, seed, snapshots,
};

const B: &str = "222222222222";

/// Handles an event given as text, as the responder does.
async fn run_event(
    engine: &first_responder::Engine,
    config: &first_responder::Config,
    text: String,
) -> Result<first_responder::Report> {
    Ok(first_responder::handle(
        serde_json::from_str(&text)?,
        engine,
        config,
        first_responder::Mode::Run,
    )
    .await?)
}

/// The central account's SDK, every call through a proxy applying `rules`
/// (a `Fault::Count` rule only counts).
async fn through_proxy(
    moto: &Moto,
    rules: &'static [Rule],
) -> Result<(FaultProxy, aws_config::SdkConfig)> {
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Faults {
            rules,
            ..Default::default()
        },
    )
    .await?;
    let central = harness::sdk_config(&proxy.endpoint).await;
    Ok((proxy, central))
}

/// The central engine over `central`: the home fleet's state table, and
/// member clients made from the central configuration.
fn central_engine(central: &aws_config::SdkConfig, home: &Fleet) -> first_responder::Engine {
    harness::fast_engine(central)
        .with_state(central, &home.state_table)
        .with_members(central)
}

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
    let (proxy, central) = through_proxy(&moto, &RULES).await?;
    let engine = central_engine(&central, &home);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_accounts: vec![AccountId::parse("t", B)?],
        allowed_regions: vec![first_responder::ids::RegionName::parse("t", "us-west-2")?],
        member_external_id: Some("fr-external-id".into()),
        account_aliases: [(B.to_owned(), "prod".to_owned())].into(),
        ..first_responder::Config::default()
    };
    let run = |text: String| run_event(&engine, &config, text);

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
    let text = inbox[0].text()?;
    assert!(
        text.contains("Where: us-west-2, account 222222222222 (prod)"),
        "{text}"
    );

    let first_id = r.incidents[0].id.clone();
    // A second incident in B has a session of its own, named after it, so
    // CloudTrail in B tells the two apart.
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
    assert_eq!(hits.first().copied(), Some(2), "AssumeRole calls: {hits:?}");
    assert_eq!(
        hits.get(1).copied(),
        Some(1),
        "GetCallerIdentity once: {hits:?}"
    );
    let sessions = member_sessions(&moto.endpoint)?;
    for id in [&first_id, &r.incidents[0].id] {
        assert!(
            sessions.contains(&format!("first-responder-{id}")),
            "{id}: {sessions:?}"
        );
    }

    // The check after the fix reads where the incident acted; once the
    // account is no longer allowed, it says so instead of failing (which
    // SQS would retry into the dead-letter queue).
    let first = r.incidents[0].id.clone();
    // The incident's own session is reused by its check: no third AssumeRole.
    let v = first_responder::verify::run::verify(&engine, &first, &config, chrono::Utc::now())
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(
        v.note
            .as_deref()
            .is_none_or(|n| !n.starts_with("not checked")),
        "{v:?}"
    );
    let removed = first_responder::Config {
        allowed_accounts: Vec::new(),
        ..config.clone()
    };
    let v = first_responder::verify::run::verify(&engine, &first, &removed, chrono::Utc::now())
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
        i.refused.as_deref().is_some_and(|n| n.contains(
            "account 333333333333 is not this deployment's (123456789012) nor in ALLOWED_ACCOUNTS"
        )),
        "{i:#?}"
    );
    // Nobody is paged with an alert from where the responder may not act.
    for a in &i.actions {
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
        Some(2),
        "no role assumed in 333333333333, none again for the check: {hits:?}"
    );
    Ok(())
}

/// With `ALLOWED_ORG_ID` alone the code cannot list the organization: IAM
/// refuses to assume a role outside it (the central role's
/// `aws:ResourceOrgID`, proven by the evaluator). Here the proxy answers
/// AssumeRole as IAM would for account C outside the organization: the
/// incident is refused before anything is asked of C, nobody is paged, and
/// it is counted. A throttled AssumeRole (account D) is not a refusal: left
/// for the retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_outside_the_organization_is_refused_by_iam_and_by_the_code() -> Result<()> {
    const C: &str = "333333333333";
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let home = seed(&sdk, FleetSpec::default()).await?;
    let c_sdk = sdk_for_account(&moto.endpoint, C, "us-east-1").await;
    let c = seed(&c_sdk, FleetSpec::default()).await?;
    static RULES: [Rule; 3] = [
        Rule {
            action: "AssumeRole 333333333333",
            fault: Fault::QueryError("AccessDenied"),
            times: u64::MAX,
        },
        // More than the SDK's own retries.
        Rule {
            action: "AssumeRole 444444444444",
            fault: Fault::QueryError("Throttling"),
            times: u64::MAX,
        },
        Rule {
            action: "AssumeRole",
            fault: Fault::Count,
            times: u64::MAX,
        },
    ];
    let (proxy, central) = through_proxy(&moto, &RULES).await?;
    let engine = central_engine(&central, &home);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_org_id: Some("o-abcdefghij".into()),
        member_external_id: Some("fr-external-id".into()),
        ..first_responder::Config::default()
    };
    let run = |text: String| run_event(&engine, &config, text);

    let r = run(event_in(
        c.instance(),
        C,
        "us-east-1",
        "2026-11-25T02:04:12.152+0000",
    )?)
    .await?;
    let i = &r.incidents[0];
    let why = i.refused.clone().unwrap_or_default();
    assert!(
        why.contains(&format!(
            "IAM refused to assume arn:aws:iam::{C}:role/first-responder-member"
        )) && why.contains("ALLOWED_ORG_ID o-abcdefghij")
            && why.contains("AccessDenied"),
        "{i:#?}"
    );
    assert_eq!(i.delivery, "refused");
    assert!(
        i.actions.iter().all(|a| a.status.as_str() == "failed"),
        "{i:#?}"
    );
    assert_eq!(hits(&proxy), [1, 0, 0], "one AssumeRole, not retried");
    assert_eq!(desired_capacity(&c_sdk, &c.group).await?, 1);
    assert!(snapshots(&c_sdk).await?.is_empty());
    assert!(
        harness::drain(&sdk, &home.inbox_queue_url)
            .await?
            .is_empty(),
        "nobody paged"
    );
    let emf = first_responder::metrics::emf_lines(i, 0);
    assert!(emf[0].contains("\"RefusedEvents\":1"), "{}", emf[0]);
    // A second incident in C asks again (no refusal is cached as a session).
    run(event_in(
        c.instance(),
        C,
        "us-east-1",
        "2026-11-25T03:04:12.152+0000",
    )?)
    .await?;
    assert_eq!(hits(&proxy)[0], 2);

    // Throttled past the SDK's retries: not refused, left for the retry.
    let r = run(event_in(
        c.instance(),
        "444444444444",
        "us-east-1",
        "2026-11-25T02:04:12.152+0000",
    )?)
    .await?;
    let i = &r.incidents[0];
    assert_eq!(i.refused, None, "{i:#?}");
    assert!(
        i.transient_error
            .as_deref()
            .is_some_and(|e| e.contains("could not be reached") && e.contains("Throttling")),
        "{i:#?}"
    );
    assert!(hits(&proxy)[1] > 1, "the SDK retried: {:?}", hits(&proxy));
    assert!(r.transient_error().is_some());
    assert!(
        harness::drain(&sdk, &home.inbox_queue_url)
            .await?
            .is_empty(),
        "nobody paged"
    );
    Ok(())
}

/// The session names of the roles moto has seen assumed (its own record of
/// STS, `/moto-api/data.json`), by the product and not by the harness.
fn member_sessions(endpoint: &str) -> Result<Vec<String>> {
    let port: u16 = endpoint.rsplit(':').next().unwrap_or_default().parse()?;
    let (status, body) = harness::http_request(port, "GET", "/moto-api/data.json", &[], b"")?;
    anyhow::ensure!(status == 200, "moto-api: {status}");
    let data: serde_json::Value = serde_json::from_str(&body)?;
    Ok(data["sts"]["AssumedRole"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["session_name"].as_str())
        .filter(|s| *s != "harness")
        .map(str::to_owned)
        .collect())
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
    let engine = central_engine(&central, &home);
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
    let r = first_responder::respond::respond(
        &incidents,
        0,
        &engine,
        &config,
        first_responder::Mode::Run,
    )
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
    w.config.playbooks.service_down.all_auto();
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

/// The repository's own SNS sample, as if published for account `account`
/// in `region` about `instance`, at `at` (CloudWatch's time format).
fn sns_event(instance: &str, account: &str, region: &str, at: &str) -> Result<String> {
    Ok(sample_event("sns-high-cpu-alarm.json", instance)?
        .replace(
            "\\\"AWSAccountId\\\": \\\"123456789012\\\"",
            &format!("\\\"AWSAccountId\\\": \\\"{account}\\\""),
        )
        .replace(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:",
            &format!("arn:aws:cloudwatch:{region}:{account}:alarm:"),
        )
        .replace("2026-11-25T02:04:12.152+0000", at))
}

/// When CloudWatch says the alarm last changed, as its SNS message writes it.
async fn alarm_changed_at(cw: &aws_sdk_cloudwatch::Client, alarm: &str) -> Result<String> {
    let out = cw.describe_alarms().alarm_names(alarm).send().await?;
    let t = out
        .metric_alarms()
        .first()
        .and_then(|a| a.state_updated_timestamp())
        .ok_or_else(|| anyhow::anyhow!("no alarm {alarm}"))?;
    let t = chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .ok_or_else(|| anyhow::anyhow!("time out of range"))?;
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
}

/// The count of each rule's action seen by the proxy, in rule order.
fn hits(proxy: &FaultProxy) -> Vec<u64> {
    proxy
        .stats
        .rule_hits
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default()
}

/// An SNS message names where to act in its body, which anyone who may
/// publish to the topic writes. Naming an allowed member account where no
/// such alarm exists: one role assumed for one DescribeAlarms, and nothing
/// else asked of that account, nothing changed, nobody paged; the refusal
/// names both sides. Once the alarm is there in ALARM, the same message acts.
#[tokio::test(flavor = "multi_thread")]
async fn an_sns_message_acts_only_where_its_alarm_really_is() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let home = seed(&sdk, FleetSpec::default()).await?;
    let b_sdk = sdk_for_account(&moto.endpoint, B, "us-east-1").await;
    let b = seed(&b_sdk, FleetSpec::default()).await?;
    let bridge = harness::cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
    static RULES: [Rule; 6] = [
        Rule {
            action: "AssumeRole",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "DescribeAlarms",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "DescribeInstances",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "SendCommand",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "DescribeAutoScalingInstances",
            fault: Fault::Count,
            times: u64::MAX,
        },
        Rule {
            action: "Publish",
            fault: Fault::Count,
            times: u64::MAX,
        },
    ];
    let proxy = FaultProxy::start_routed(
        &moto.endpoint,
        Some(&bridge.endpoint),
        Faults {
            rules: &RULES,
            ..Default::default()
        },
    )
    .await?;
    let central = harness::sdk_config(&proxy.endpoint).await;
    let engine = central_engine(&central, &home);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_accounts: vec![AccountId::parse("t", B)?],
        allowed_regions: vec![first_responder::ids::RegionName::parse("t", "us-west-2")?],
        home_account: Some(AccountId::parse("t", "123456789012")?),
        ..first_responder::Config::default()
    };
    let run = |text: String| run_event(&engine, &config, text);

    // No such alarm in B: refused after the one read, naming both sides.
    let r = run(sns_event(
        b.instance(),
        B,
        "us-east-1",
        "2026-11-25T02:04:12.152+0000",
    )?)
    .await?;
    let i = &r.incidents[0];
    assert_eq!(
        i.refused.as_deref(),
        Some(
            "the message says account 222222222222 in us-east-1, the alarm \"web-high-cpu\" is not there: refused, nothing changed"
        ),
        "{i:#?}"
    );
    assert_eq!(i.delivery, "refused");
    assert!(
        i.actions.iter().all(|a| a.status.as_str() == "failed"),
        "{i:#?}"
    );
    assert_eq!(
        hits(&proxy),
        [1, 1, 0, 0, 0, 0],
        "one role, one read, nothing else"
    );
    assert_eq!(desired_capacity(&b_sdk, &b.group).await?, 1);
    assert!(snapshots(&b_sdk).await?.is_empty());
    assert!(
        harness::drain(&sdk, &home.inbox_queue_url)
            .await?
            .is_empty(),
        "nobody paged"
    );
    let emf = first_responder::metrics::emf_lines(i, 0);
    assert!(emf[0].contains("\"RefusedEvents\":1"), "{}", emf[0]);

    // The ARN and AWSAccountId of one message disagree: refused unread.
    let forged = sns_event(b.instance(), B, "us-east-1", "2026-11-25T03:04:12.152+0000")?.replacen(
        &format!("\\\"AWSAccountId\\\": \\\"{B}\\\""),
        "\\\"AWSAccountId\\\": \\\"123456789012\\\"",
        1,
    );
    let r = run(forged).await?;
    assert!(
        r.incidents[0].notes.iter().any(|n| n
            .contains("the message says account 123456789012, its AlarmArn account 222222222222")),
        "{:#?}",
        r.incidents[0]
    );
    assert_eq!(hits(&proxy)[..2], [1, 1], "nothing read for it");

    // The alarm is in B, in ALARM, watching B's instance: the message acts.
    let cw_b = bridge.client(&b_sdk);
    harness::put_alarm(
        &cw_b,
        "web-high-cpu",
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", b.instance())],
        300,
        80.0,
        "ALARM",
    )
    .await?;
    let at = alarm_changed_at(&cw_b, "web-high-cpu").await?;
    let r = run(sns_event(b.instance(), B, "us-east-1", &at)?).await?;
    let i = &r.incidents[0];
    assert_eq!(i.refused, None, "{i:#?}");
    assert!(!r.any_failed(), "{i:#?}");
    assert_eq!(
        desired_capacity(&b_sdk, &b.group).await?,
        2,
        "B's group scaled"
    );
    assert_eq!(
        desired_capacity(&sdk, &home.group).await?,
        1,
        "home untouched"
    );
    assert_eq!(snapshots(&b_sdk).await?.len(), 2);
    // One DescribeAlarms for the claim and the metric together.
    assert_eq!(hits(&proxy)[1], 2, "{:?}", hits(&proxy));

    // A message naming the alarm's real name but another instance of B's:
    // CloudWatch's alarm watches B's instance, so the claim does not hold.
    let other = "i-0fedcba9876543210";
    let r = run(sns_event(other, B, "us-east-1", &at)?).await?;
    let why = r.incidents[0].refused.clone().unwrap_or_default();
    assert!(
        why.contains(&format!(
            "watches \"AWS/EC2/CPUUtilization InstanceId={other}\""
        )),
        "{why}"
    );
    Ok(())
}

/// Two accounts, and two regions of one, each with a group named
/// `web-asg`: scaling one holds none of the others (cooldowns are keyed by
/// account and region, not by the group's name alone).
#[tokio::test(flavor = "multi_thread")]
async fn groups_of_one_name_in_other_accounts_and_regions_are_other_groups() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk().await;
    let home = seed(&sdk, FleetSpec::default()).await?;
    let b_east_sdk = sdk_for_account(&moto.endpoint, B, "us-east-1").await;
    let b_west_sdk = sdk_for_account(&moto.endpoint, B, "us-west-2").await;
    let b_east = seed(&b_east_sdk, FleetSpec::default()).await?;
    let b_west = seed(&b_west_sdk, FleetSpec::default()).await?;
    assert!(home.group == b_east.group && b_east.group == b_west.group);
    let engine = harness::fast_engine(&sdk)
        .with_state(&sdk, &home.state_table)
        .with_members(&sdk);
    let config = first_responder::Config {
        notify_topic_arn: Some(home.topic_arn.clone()),
        state_table: Some(home.state_table.clone()),
        allowed_accounts: vec![AccountId::parse("t", B)?],
        allowed_regions: vec![first_responder::ids::RegionName::parse("t", "us-west-2")?],
        ..first_responder::Config::default()
    };
    let run = |text: String| run_event(&engine, &config, text);
    let scaled = |r: &first_responder::Report| harness::status_of(r, "scale_out");
    let r = run(event_in(
        home.instance(),
        "123456789012",
        "us-east-1",
        "2026-11-25T02:04:12.152+0000",
    )?)
    .await?;
    assert_eq!(scaled(&r).0, "done", "{r:#?}");
    let r = run(event_in(
        b_east.instance(),
        B,
        "us-east-1",
        "2026-11-25T02:05:12.152+0000",
    )?)
    .await?;
    assert_eq!(scaled(&r).0, "done", "B's web-asg is not home's: {r:#?}");
    let r = run(event_in(
        b_west.instance(),
        B,
        "us-west-2",
        "2026-11-25T02:06:12.152+0000",
    )?)
    .await?;
    assert_eq!(
        scaled(&r).0,
        "done",
        "us-west-2's web-asg is not us-east-1's: {r:#?}"
    );
    for (s, g) in [
        (&sdk, &home.group),
        (&b_east_sdk, &b_east.group),
        (&b_west_sdk, &b_west.group),
    ] {
        assert_eq!(desired_capacity(s, g).await?, 2);
    }
    // Each holds its own: a second alarm in B's us-east-1 is held off there.
    let r = run(event_in(
        b_east.instance(),
        B,
        "us-east-1",
        "2026-11-25T02:07:12.152+0000",
    )?)
    .await?;
    let (status, why) = scaled(&r);
    assert_eq!(status, "skipped", "{r:#?}");
    assert!(
        why.starts_with("cooldown: scale_out of web-asg was done recently"),
        "{why}"
    );
    Ok(())
}
