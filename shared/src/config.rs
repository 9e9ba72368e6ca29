//! Configuration from the environment, validated once at start.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ConfigError;
use crate::incident::{IncidentKind, Routes};
use crate::playbook::Playbooks;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `NOTIFY_TOPIC_ARN`: where notifications go. Without it the notify
    /// action is skipped (and the functions refuse to start).
    pub notify_topic_arn: Option<String>,
    /// `PLAYBOOKS_FILE`: the playbooks (a complete copy of
    /// `infra/playbooks.toml`); without it, the embedded default.
    pub playbooks: Playbooks,
    /// `DIAGNOSTICS_TIMEOUT_SECONDS` (default 60): how long to wait for SSM output.
    pub diagnostics_timeout: Duration,
    /// `ACTIONS_DEADLINE_SECONDS` (default 4 × the diagnostics timeout + 60 s,
    /// 300 s): the notification waits this long
    /// for the other actions, then reports what has not finished.
    pub actions_deadline: Duration,
    /// `NOTIFY_RESERVE_SECONDS` (default 25): kept free before the Lambda
    /// invocation's own deadline for the notification and the state writes,
    /// so a first delivery always reports, however long its actions ran.
    pub notify_reserve: Duration,
    /// `FIRST_PAGE_BUDGET_SECONDS` (default 10; 0 turns it off): when the
    /// plan's actions typically take longer than this, a short first page
    /// goes out as soon as the plan is made; when they take longer than
    /// planned, it goes out once this long has passed since the alert
    /// arrived. The full report follows when the work ends. An incident
    /// handled within it gets one message.
    pub first_page_budget: Option<Duration>,
    /// `NOTIFY_ON_RESOLVE` (default true): send a short notice on ALARM → OK.
    pub notify_on_resolve: bool,
    /// `DRY_RUN` (default false): plan, read, diagnose and notify; change nothing.
    pub dry_run: bool,
    /// `ROUTES`: routing overrides, `NAME=KIND` separated by commas, where NAME
    /// is an alarm name, a CloudWatch metric name or a Prometheus alert name and
    /// KIND is high_cpu, disk_full, memory_pressure, service_down or none.
    pub routes: Routes,
    /// `OPT_IN_TAG` (default `first-responder=enabled`; `off` to disable):
    /// only volumes and groups carrying this tag are changed. Without it,
    /// diagnostics and the notification only.
    pub opt_in: Option<(String, String)>,
    /// `MAX_DESIRED_CAPACITY`: never scale a group above this, even below its MaxSize.
    pub max_desired_capacity: Option<i32>,
    /// `KILL_SWITCH_PARAMETER`: an SSM parameter; when it holds `on` (or
    /// true/1/yes/notify-only), every function only notifies.
    pub kill_switch_parameter: Option<String>,
    /// `VERIFY_QUEUE_URL`: the SQS queue of the delayed check after a fix
    /// (`verify`); unset, no check is scheduled and the report says so.
    pub verify_queue_url: Option<String>,
    /// `STATE_TABLE`: the DynamoDB table for idempotency, cooldowns, the flap
    /// guard and the circuit breaker. The functions refuse to start without it.
    pub state_table: Option<String>,
    /// `SCALE_OUT_COOLDOWN_SECONDS` (default 600): no second scale-out of a group within it.
    pub scale_out_cooldown: Duration,
    /// `MAX_MUTATIONS_PER_HOUR` (default 30): the circuit breaker, across all
    /// incidents; past it, notify only.
    pub max_mutations_per_hour: u32,
    /// `MAX_SNAPSHOTS_PER_INCIDENT` (default 20): evidence snapshots one
    /// incident may take (they are not changes, so the breaker ignores them).
    pub max_snapshots_per_incident: u32,
    /// `VPC_IDS` (comma-separated): the networks a Prometheus `instance`
    /// address is looked up in. Unset, the lookup is refused when the
    /// account has more than one VPC in the region, so an address cannot
    /// pick a host in another network.
    pub vpc_ids: Vec<String>,
    /// `FLAP_MAX_REMEDIATIONS` (default 3) per `FLAP_WINDOW_SECONDS` (default
    /// 3600): how often one alarm may trigger remediation.
    pub flap_max: u32,
    pub flap_window: Duration,
    /// Approval links: the key signs them (`APPROVAL_KEY` locally; the
    /// functions read `APPROVAL_KEY_PARAMETER`, an SSM SecureString, at
    /// start), `APPROVAL_BASE_URL` is the webhook's Function URL, and a link
    /// lives `APPROVAL_TTL_MINUTES` (default 60, at most 1440).
    pub approval_key: Option<crate::approval::Key>,
    pub approval_key_parameter: Option<String>,
    pub approval_base_url: Option<String>,
    pub approval_ttl: Duration,
    /// `APPROVAL_KEY_TTL_SECONDS` (default 300, 0 to 3600): how long a key
    /// read from `APPROVAL_KEY_PARAMETER` is used before it is read again.
    pub approval_key_ttl: Duration,
    /// Many accounts (`crate::target`): the role assumed in a member account
    /// (`MEMBER_ROLE_NAME`, default `first-responder-member`) with
    /// `MEMBER_EXTERNAL_ID`; the accounts acted in besides the deployment's
    /// own (`ALLOWED_ACCOUNTS`), or any of the organization's
    /// (`ALLOWED_ORG_ID`: IAM decides membership, and its refusal to assume
    /// the role refuses the incident, `aws::members`); names
    /// for notifications (`ACCOUNT_ALIASES`, `ID=name,…`); the deployment's
    /// own account (`HOME_ACCOUNT_ID`; else asked of STS once).
    pub member_role_name: String,
    pub member_external_id: Option<String>,
    pub allowed_accounts: Vec<crate::ids::AccountId>,
    pub allowed_org_id: Option<String>,
    /// `FORWARDING_TOPIC_ARNS` (comma-separated): SNS topics that carry
    /// Amazon Managed Prometheus alerts for other accounts, whose
    /// `account_id`/`region` labels are believed (within the allow-list).
    /// Any other topic's alerts act in the topic's own account and region.
    pub forwarding_topics: Vec<String>,
    /// `ALLOWED_REGIONS` (comma-separated codes; the template sets its
    /// `Regions`): the regions acted in besides the deployment's own. An
    /// alert from any other is refused before a client is made for it.
    pub allowed_regions: Vec<crate::ids::RegionName>,
    /// `ALARM_NAME_PREFIX` (the template's `AlarmNamePrefix`): only alerts
    /// whose alarm (or Prometheus alert) name starts with it are handled,
    /// whatever way they came; the others are rejected by name.
    pub alarm_name_prefix: Option<String>,
    pub account_aliases: BTreeMap<String, String>,
    pub home_account: Option<crate::ids::AccountId>,
    /// Budgets (unset: only the breaker, `MAX_MUTATIONS_PER_HOUR`, limits):
    /// changes an hour per account and per Auto Scaling group, and the share
    /// of a group's instances that may be replaced or rebooted within an
    /// hour (`MAX_GROUP_SHARE_PERCENT`, default 10, at least one instance).
    pub budget_per_account_per_hour: Option<u32>,
    pub budget_per_group_per_hour: Option<u32>,
    pub max_group_share_percent: u32,
    /// `HISTORY_TTL_DAYS` (default 400): how long the track record (runs,
    /// checks, decisions) is kept, so a trust report covers a quarter.
    pub history_ttl_days: u32,
    /// `CHANGE_CALENDARS` (comma-separated SSM Change Calendar names or
    /// ARNs): while one is CLOSED at the alert's time, changes are paused.
    pub change_calendars: Vec<String>,
    /// Where on-call reads (`config/oncall.rs`).
    pub oncall: OnCall,
    /// `AWS_REGION` (Lambda sets it): the console links of a home incident.
    pub region: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            notify_topic_arn: None,
            playbooks: Playbooks::default(),
            diagnostics_timeout: Duration::from_secs(60),
            actions_deadline: Duration::from_secs(300),
            notify_reserve: Duration::from_secs(25),
            first_page_budget: Some(Duration::from_secs(10)),
            notify_on_resolve: true,
            dry_run: false,
            routes: Routes::new(),
            opt_in: Some(("first-responder".into(), "enabled".into())),
            max_desired_capacity: None,
            kill_switch_parameter: None,
            verify_queue_url: None,
            state_table: None,
            scale_out_cooldown: Duration::from_secs(600),
            max_mutations_per_hour: 30,
            max_snapshots_per_incident: 20,
            vpc_ids: Vec::new(),
            flap_max: 3,
            flap_window: Duration::from_secs(3600),
            approval_key: None,
            approval_key_parameter: None,
            approval_base_url: None,
            approval_ttl: Duration::from_secs(crate::approval::DEFAULT_TTL_MINUTES * 60),
            approval_key_ttl: Duration::from_secs(300),
            member_role_name: "first-responder-member".into(),
            member_external_id: None,
            allowed_accounts: Vec::new(),
            allowed_org_id: None,
            forwarding_topics: Vec::new(),
            allowed_regions: Vec::new(),
            alarm_name_prefix: None,
            account_aliases: BTreeMap::new(),
            home_account: None,
            budget_per_account_per_hour: None,
            budget_per_group_per_hour: None,
            max_group_share_percent: 10,
            history_ttl_days: 400,
            change_calendars: Vec::new(),
            oncall: OnCall::default(),
            region: None,
        }
    }
}

impl Config {
    /// Approval links can be made: a playbook holds a change and a key is
    /// configured (read only when first needed, `engine::KeyCell`).
    pub fn approvals_configured(&self) -> bool {
        self.playbooks.holds_any()
            && (self.approval_key.is_some() || self.approval_key_parameter.is_some())
    }

    /// What the actions read of it (they see no more of the configuration).
    pub fn settings(&self) -> crate::actions::Settings {
        crate::actions::Settings {
            opt_in: self.opt_in.clone(),
            max_desired_capacity: self.max_desired_capacity,
            max_snapshots_per_incident: self.max_snapshots_per_incident,
            scale_out_cooldown: self.scale_out_cooldown,
            diagnostics_timeout: self.diagnostics_timeout,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the configuration from any key lookup (the environment, a map
    /// in tests), a concern at a time.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        c.read_pipeline(&get)?;
        c.read_limits(&get)?;
        c.read_approvals(&get)?;
        c.read_accounts(&get)?;
        c.read_sources(&get)?;
        Ok(c)
    }

    /// The pipeline: where notifications go, the playbooks, the deadlines, the
    /// state table and the queue of the check after the fix, the switches.
    fn read_pipeline(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("NOTIFY_TOPIC_ARN").filter(|v| !v.is_empty()) {
            c.notify_topic_arn = Some(topic_arn("NOTIFY_TOPIC_ARN", &v)?);
        }
        if let Some(v) = get("PLAYBOOKS_FILE").filter(|v| !v.is_empty()) {
            c.playbooks = Playbooks::load(Some(v.trim())).map_err(|e| ConfigError {
                var: "PLAYBOOKS_FILE".into(),
                value: v.clone(),
                problem: e.to_string(),
            })?;
        }
        if let Some(v) = get("DIAGNOSTICS_TIMEOUT_SECONDS") {
            c.diagnostics_timeout = seconds("DIAGNOSTICS_TIMEOUT_SECONDS", &v, 1, 600)?;
        }
        c.actions_deadline = match get("ACTIONS_DEADLINE_SECONDS") {
            Some(v) => seconds("ACTIONS_DEADLINE_SECONDS", &v, 1, 900)?,
            // A disk incident waits for SSM up to three times in a row
            // (cleanup, the volume, the filesystem); leave room for them.
            None => c.diagnostics_timeout * 4 + Duration::from_secs(60),
        };
        if c.actions_deadline <= c.diagnostics_timeout {
            return Err(ConfigError {
                var: "ACTIONS_DEADLINE_SECONDS".into(),
                value: c.actions_deadline.as_secs().to_string(),
                problem: format!(
                    "must be longer than DIAGNOSTICS_TIMEOUT_SECONDS ({})",
                    c.diagnostics_timeout.as_secs()
                ),
            });
        }
        if let Some(v) = get("NOTIFY_RESERVE_SECONDS") {
            c.notify_reserve = seconds("NOTIFY_RESERVE_SECONDS", &v, 1, 300)?;
        }
        if let Some(v) = get("FIRST_PAGE_BUDGET_SECONDS") {
            let budget = seconds("FIRST_PAGE_BUDGET_SECONDS", &v, 0, 900)?;
            c.first_page_budget = (!budget.is_zero()).then_some(budget);
        }
        if let Some(v) = get("NOTIFY_ON_RESOLVE") {
            c.notify_on_resolve = boolean("NOTIFY_ON_RESOLVE", &v)?;
        }
        if let Some(v) = get("DRY_RUN") {
            c.dry_run = boolean("DRY_RUN", &v)?;
        }
        if let Some(v) = get("ROUTES") {
            c.routes = routes("ROUTES", &v)?;
        }
        if let Some(v) = get("KILL_SWITCH_PARAMETER").filter(|v| !v.is_empty()) {
            c.kill_switch_parameter = Some(v.trim().to_owned());
        }
        if let Some(v) = get("VERIFY_QUEUE_URL").filter(|v| !v.is_empty()) {
            c.verify_queue_url = Some(v.trim().to_owned());
        }
        if let Some(v) = get("STATE_TABLE").filter(|v| !v.is_empty()) {
            c.state_table = Some(v.trim().to_owned());
        }
        Ok(())
    }

    /// The limits on changes: the opt-in tag, capacity, cooldowns, snapshots,
    /// the lookup's VPCs, the breaker, the flap guard and the budgets.
    fn read_limits(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("OPT_IN_TAG") {
            c.opt_in = match v.trim() {
                "off" | "none" => None,
                t => match t.split_once('=') {
                    Some((k, val)) if !k.trim().is_empty() && !k.trim().starts_with("aws:") => {
                        Some((k.trim().to_owned(), val.trim().to_owned()))
                    }
                    _ => return Err(err("OPT_IN_TAG", &v, "expected KEY=VALUE (or off)")),
                },
            };
        }
        if let Some(v) = get("MAX_DESIRED_CAPACITY").filter(|v| !v.is_empty()) {
            c.max_desired_capacity = match v.trim().parse::<i32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(err(
                        "MAX_DESIRED_CAPACITY",
                        &v,
                        "expected a whole number of at least 1",
                    ));
                }
            };
        }
        if let Some(v) = get("SCALE_OUT_COOLDOWN_SECONDS") {
            c.scale_out_cooldown = seconds("SCALE_OUT_COOLDOWN_SECONDS", &v, 0, 86_400)?;
        }
        if let Some(v) = get("MAX_SNAPSHOTS_PER_INCIDENT") {
            c.max_snapshots_per_incident = count("MAX_SNAPSHOTS_PER_INCIDENT", &v)?;
        }
        if let Some(v) = get("VPC_IDS") {
            c.vpc_ids = Vec::new();
            for id in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                let hex = id.strip_prefix("vpc-").unwrap_or_default();
                if !(8..=17).contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(
                        "VPC_IDS",
                        &v,
                        &format!("{id:?} is not a VPC id (vpc- and 8 to 17 hex digits)"),
                    ));
                }
                c.vpc_ids.push(id.to_ascii_lowercase());
            }
        }
        if let Some(v) = get("MAX_MUTATIONS_PER_HOUR") {
            c.max_mutations_per_hour = count("MAX_MUTATIONS_PER_HOUR", &v)?;
        }
        if let Some(v) = get("FLAP_MAX_REMEDIATIONS") {
            c.flap_max = count("FLAP_MAX_REMEDIATIONS", &v)?;
        }
        if let Some(v) = get("FLAP_WINDOW_SECONDS") {
            c.flap_window = seconds("FLAP_WINDOW_SECONDS", &v, 60, 7 * 86_400)?;
        }
        if let Some(v) = get("BUDGET_PER_ACCOUNT_PER_HOUR").filter(|v| !v.is_empty()) {
            c.budget_per_account_per_hour = Some(count("BUDGET_PER_ACCOUNT_PER_HOUR", &v)?);
        }
        if let Some(v) = get("BUDGET_PER_GROUP_PER_HOUR").filter(|v| !v.is_empty()) {
            c.budget_per_group_per_hour = Some(count("BUDGET_PER_GROUP_PER_HOUR", &v)?);
        }
        if let Some(v) = get("MAX_GROUP_SHARE_PERCENT").filter(|v| !v.is_empty()) {
            c.max_group_share_percent = match v.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => p,
                _ => return Err(err("MAX_GROUP_SHARE_PERCENT", &v, "expected 1 to 100")),
            };
        }
        c.read_autonomy(get)?;
        c.read_oncall(get)?;
        Ok(())
    }

    /// Approvals: the key that signs the links, how often it is re-read, where
    /// the links point and how long they live.
    fn read_approvals(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("APPROVAL_KEY").filter(|v| !v.is_empty()) {
            c.approval_key = Some(crate::approval::Key::new("APPROVAL_KEY", &v)?);
        }
        if let Some(v) = get("APPROVAL_KEY_TTL_SECONDS").filter(|v| !v.is_empty()) {
            c.approval_key_ttl = match v.trim().parse::<u64>() {
                Ok(s) if s <= 3600 => Duration::from_secs(s),
                _ => {
                    return Err(err(
                        "APPROVAL_KEY_TTL_SECONDS",
                        &v,
                        "expected 0 to 3600 seconds",
                    ));
                }
            };
        }
        if let Some(v) = get("APPROVAL_KEY_PARAMETER").filter(|v| !v.is_empty()) {
            c.approval_key_parameter = Some(v.trim().to_owned());
        }
        if let Some(v) = get("APPROVAL_BASE_URL").filter(|v| !v.is_empty()) {
            let t = v.trim();
            // A link is a capability: sent over plain HTTP it can be read
            // and replayed on the way. Plain HTTP only to this machine
            // (`cargo lambda watch`).
            let loopback = [
                "http://127.0.0.1:",
                "http://127.0.0.1/",
                "http://localhost:",
                "http://localhost/",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !(t.starts_with("https://") || loopback) || t.contains(['?', '#', ' ']) {
                return Err(err(
                    "APPROVAL_BASE_URL",
                    &v,
                    "expected the webhook's Function URL (https://…/; http:// only to 127.0.0.1 or localhost), without a query",
                ));
            }
            // The links are BASE + approve/deny.
            c.approval_base_url = Some(if t.ends_with('/') {
                t.to_owned()
            } else {
                format!("{t}/")
            });
        }
        if let Some(v) = get("APPROVAL_TTL_MINUTES") {
            let max = crate::approval::MAX_TTL_MINUTES;
            c.approval_ttl = match v.trim().parse::<u64>() {
                Ok(m) if (1..=max).contains(&m) => Duration::from_secs(m * 60),
                _ => {
                    return Err(err(
                        "APPROVAL_TTL_MINUTES",
                        &v,
                        &format!("expected 1 to {max} minutes"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Many accounts: the member role, its external id, the accounts allowed
    /// (by list or organization) and the deployment's own.
    fn read_accounts(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("MEMBER_ROLE_NAME").filter(|v| !v.is_empty()) {
            let t = v.trim();
            // IAM role names: 1 to 64 of letters, digits and +=,.@_-
            let ok = (1..=64).contains(&t.len())
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            if !ok {
                return Err(err(
                    "MEMBER_ROLE_NAME",
                    &v,
                    "not an IAM role name (1 to 64 of letters, digits and +=,.@_-)",
                ));
            }
            c.member_role_name = t.to_owned();
        }
        if let Some(v) = get("MEMBER_EXTERNAL_ID").filter(|v| !v.is_empty()) {
            let t = v.trim();
            let ok = (2..=1224).contains(&t.len())
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
            if !ok {
                return Err(ConfigError {
                    var: "MEMBER_EXTERNAL_ID".into(),
                    value: "<redacted>".into(),
                    problem: "not an external id (2 to 1224 of letters, digits and +=,.@:/_-)"
                        .into(),
                });
            }
            c.member_external_id = Some(t.to_owned());
        }
        if let Some(v) = get("ALLOWED_ACCOUNTS") {
            c.allowed_accounts = Vec::new();
            for a in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                let id = crate::ids::AccountId::parse("ALLOWED_ACCOUNTS", a)
                    .map_err(|e| err("ALLOWED_ACCOUNTS", &v, &e.to_string()))?;
                c.allowed_accounts.push(id);
            }
        }
        if let Some(v) = get("ALLOWED_ORG_ID").filter(|v| !v.is_empty()) {
            let t = v.trim();
            let id = t.strip_prefix("o-").unwrap_or_default();
            if !(10..=32).contains(&id.len())
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(err(
                    "ALLOWED_ORG_ID",
                    &v,
                    "not an organization id (o- and 10 to 32 lower-case letters or digits)",
                ));
            }
            c.allowed_org_id = Some(t.to_owned());
        }
        if let Some(v) = get("HOME_ACCOUNT_ID").filter(|v| !v.is_empty()) {
            c.home_account = Some(
                crate::ids::AccountId::parse("HOME_ACCOUNT_ID", v.trim())
                    .map_err(|e| err("HOME_ACCOUNT_ID", &v, &e.to_string()))?,
            );
        }
        Ok(())
    }

    /// Which alerts and from where: the alarm-name prefix, the regions, the
    /// topics that forward for others, the accounts' names.
    fn read_sources(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("ALARM_NAME_PREFIX").filter(|v| !v.is_empty()) {
            c.alarm_name_prefix = Some(v);
        }
        if let Some(v) = get("ALLOWED_REGIONS") {
            for r in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                c.allowed_regions.push(
                    crate::ids::RegionName::parse("ALLOWED_REGIONS", r)
                        .map_err(|e| err("ALLOWED_REGIONS", &v, &e.to_string()))?,
                );
            }
        }
        if let Some(v) = get("FORWARDING_TOPIC_ARNS") {
            for t in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                c.forwarding_topics
                    .push(topic_arn("FORWARDING_TOPIC_ARNS", t)?);
            }
        }
        if let Some(v) = get("ACCOUNT_ALIASES") {
            for pair in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                let (id, name) = pair
                    .split_once('=')
                    .ok_or_else(|| err("ACCOUNT_ALIASES", &v, "expected ID=name,..."))?;
                let id = crate::ids::AccountId::parse("ACCOUNT_ALIASES", id.trim())
                    .map_err(|e| err("ACCOUNT_ALIASES", &v, &e.to_string()))?;
                let name = name.trim();
                if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                    return Err(err(
                        "ACCOUNT_ALIASES",
                        &v,
                        "an alias is 1 to 64 printable characters",
                    ));
                }
                c.account_aliases
                    .insert(id.as_str().to_owned(), name.to_owned());
            }
        }
        Ok(())
    }
}

fn err(var: &str, value: &str, problem: &str) -> ConfigError {
    ConfigError {
        var: var.into(),
        value: crate::ids::shown(value),
        problem: problem.into(),
    }
}

fn topic_arn(var: &str, v: &str) -> Result<String, ConfigError> {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(v.to_owned())
    } else {
        Err(err(
            var,
            v,
            "not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)",
        ))
    }
}

fn routes(var: &str, v: &str) -> Result<Routes, ConfigError> {
    let mut out = Routes::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, kind)) = entry.split_once('=') else {
            return Err(err(var, entry, "expected NAME=KIND"));
        };
        let Some(kind) = IncidentKind::parse(kind.trim()) else {
            return Err(err(
                var,
                entry,
                "KIND must be high_cpu, disk_full, memory_pressure, service_down or none",
            ));
        };
        out.insert(name.trim().to_owned(), kind);
    }
    Ok(out)
}

fn count(var: &str, v: &str) -> Result<u32, ConfigError> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(err(var, v, "expected a whole number of at least 1")),
    }
}

fn seconds(var: &str, v: &str, min: u64, max: u64) -> Result<Duration, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(s) if (min..=max).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(err(
            var,
            v,
            &format!("expected whole seconds from {min} to {max}"),
        )),
    }
}

fn boolean(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(err(var, v, "expected true or false")),
    }
}

mod autonomy;
mod oncall;
pub use oncall::{DEFAULT_PAGERDUTY_EVENTS_URL, OnCall};

#[cfg(test)]
mod tests;
