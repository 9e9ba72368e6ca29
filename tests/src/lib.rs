//! Test harness: a real moto server on a free loopback port, a seeded fleet,
//! and helpers that read the results back from the emulated account.
//!
//! The AWS SDK talks HTTP to moto exactly as it would to AWS; nothing is mocked.

use std::time::Duration;

use anyhow::Result;
use aws_config::SdkConfig;

mod emulator;
mod functions;
mod read;
mod seed;

pub use emulator::*;
pub use functions::*;
pub use read::*;
pub use seed::*;

pub mod alertmanager;
pub mod cloudwatch;
pub mod pagerduty;
pub mod prometheus;
pub mod proxy;
pub mod sandbox;
pub mod schema;
pub mod ssm;

pub const REGION: &str = "us-east-1";

/// The instance id used in `events/`; tests and the demo put a seeded one in its place.
pub const SAMPLE_INSTANCE_ID: &str = "i-0123456789abcdef0";

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
    /// SSM in front of moto: the fleet's first instance answers the disk
    /// preflight as a Xen instance does ([`XEN_LAYOUT`]); `engine.aws.ssm`
    /// goes through it.
    pub ssm: ssm::SsmStandIn,
}

/// The disk preflight's answer of the fleet's first instance, as a Xen
/// instance prints it (moto's SSM prints nothing): / on partition 1 of
/// xvda, ext4 on the whole of xvdf (`/dev/sdf`, the data volume) at /data,
/// every tool present (no `missing=` line).
pub const XEN_LAYOUT: &str = r#"{"blockdevices": [{"name": "xvda", "type": "disk", "serial": null, "mountpoint": null, "fstype": null, "pttype": "gpt", "children": [{"name": "xvda1", "type": "part", "serial": null, "mountpoint": "/", "fstype": "xfs", "pttype": "gpt"}]}, {"name": "xvdf", "type": "disk", "serial": null, "mountpoint": "/data", "fstype": "ext4", "pttype": null}]}"#;

impl World {
    /// Without a state table: every delivery is untracked.
    pub async fn start(spec: FleetSpec) -> Result<Self> {
        let moto = Moto::start()?;
        let sdk = moto.sdk().await;
        let fleet = seed(&sdk, spec).await?;
        let mut engine = fast_engine(&sdk);
        let cloudwatch = cloudwatch::CloudWatchBridge::start(&moto.endpoint).await?;
        engine.aws.cloudwatch = cloudwatch.client(&sdk).into();
        let ssm = ssm::SsmStandIn::start(&moto.endpoint).await?;
        ssm.answer(fleet.instance(), "block devices", XEN_LAYOUT);
        engine.aws.ssm = ssm.client(&sdk).into();
        let config = first_responder::Config {
            notify_topic_arn: Some(fleet.topic_arn.clone()),
            // As Lambda's AWS_REGION sets it: a home incident's console links.
            region: sdk.region().map(|r| r.as_ref().to_owned()),
            ..first_responder::Config::default()
        };
        Ok(Self {
            moto,
            sdk,
            fleet,
            engine,
            config,
            cloudwatch,
            ssm,
        })
    }

    /// An untracked engine whose EC2 and other calls go to `endpoint` (a
    /// fault proxy), with this world's CloudWatch and SSM stand-ins.
    pub async fn engine_via(&self, endpoint: &str) -> first_responder::Engine {
        let via = sdk_config(endpoint).await;
        let mut engine = fast_engine(&via);
        engine.aws.cloudwatch = self.cloudwatch.client(&self.sdk).into();
        engine.aws.ssm = self.ssm.client(&self.sdk).into();
        engine
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
    /// The sample CPU alarm (`web-high-cpu`: AWS/EC2 CPUUtilization of the
    /// fleet's first instance, 300 s, threshold 80) in CloudWatch, in `state`.
    pub async fn cpu_alarm(&self, state: &str) -> Result<()> {
        put_alarm(
            &self.engine.aws.cloudwatch,
            "web-high-cpu",
            "AWS/EC2",
            "CPUUtilization",
            &[("InstanceId", self.fleet.instance())],
            300,
            80.0,
            state,
        )
        .await
    }

    /// The check after the fix of `incident`, as its delayed message runs it.
    pub async fn check(
        &self,
        incident: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<first_responder::verify::Verification> {
        first_responder::verify::run::verify(&self.engine, incident, &self.config, now)
            .await
            .map_err(anyhow::Error::msg)
    }

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

/// A chronic-problem rule no test reaches: for tests that repeat one fix on
/// one instance to exercise something else (the limits, faults).
pub fn never_chronic() -> first_responder::autonomy::Rate {
    first_responder::autonomy::Rate {
        count: 10_000,
        window_seconds: 3_600,
    }
}
