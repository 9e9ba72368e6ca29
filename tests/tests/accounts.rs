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
