//! `first-responder plan|run EVENT_FILE`: the functions' code path from a terminal.
//! `first-responder check-playbooks [FILE]`: validates a playbooks file.
//! `first-responder forecast [--json]`: the predictive check, now: the
//! opted-in filesystems projected to fill within the horizon (read only).
//! `first-responder verify INCIDENT_ID [--json]`: the check after the fix,
//! now (needs STATE_TABLE); it publishes as the delayed check would, once.
//!
//! Exit status: 0 handled, 1 an action failed (or AWS could not be reached),
//! 2 bad input or configuration (one line on stderr says what and where).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use first_responder::playbook::Playbooks;
use first_responder::{
    Aws, Config, Engine, Mode, alert, aws::sdk_config_loader, respond, telemetry,
};

#[derive(Parser)]
#[command(
    name = "first-responder",
    version,
    about = "Serverless incident response for AWS fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read AWS state and print the actions it would take; change nothing.
    Plan(Args),
    /// Carry out the actions and print the outcome.
    Run(Args),
    /// Run the predictive check now: print the opted-in filesystems whose
    /// usage is projected to reach 100% within `disk_filling.horizon_hours`,
    /// with when. Reads only: the scheduled check raises the incidents.
    Forecast {
        /// Print the check as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check now whether the alarm of an incident is still firing after the
    /// fix, and publish the escalation or the recovery notice (once).
    Verify {
        /// The incident's id (`inc-...`, from the report or the email).
        incident: String,
        /// Print the verification as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay an alarm history through the routing, the planner and the
    /// limits: what the playbooks would have done, held for approval, or
    /// been stopped from doing, per alarm and overall. Reads only.
    Backtest {
        /// `aws cloudwatch describe-alarm-history --history-item-type
        /// StateUpdate --output json`, and/or Alertmanager webhook payloads
        /// one per line; any number of files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The alarms' definitions (`aws cloudwatch describe-alarms --output
        /// json`) instead of DescribeAlarms.
        #[arg(long)]
        alarms: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The track record per scope and action: runs, the checks' verdicts,
    /// approvals, and what the record recommends (needs STATE_TABLE).
    /// `--restore ACTION --scope S` gives a demoted action its mode back.
    Trust {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// How far back: days or hours (30d, 90d, 12h).
        #[arg(long, default_value = "30d")]
        since: String,
        /// Restore this demoted action (with --scope), recorded with who ran it.
        #[arg(long, requires = "scope")]
        restore: Option<String>,
        /// The scope to restore it in (`default` for incidents no scope matches).
        #[arg(long, requires = "restore")]
        scope: Option<String>,
    },
    /// Pause every change (not the evidence) for an account, a group, an
    /// instance or everything, for a while (needs STATE_TABLE).
    Pause {
        #[command(flatten)]
        on: PauseOn,
        /// How long: hours or days (2h, 1d).
        #[arg(long = "for")]
        duration: String,
        /// Why, shown in every page while it holds.
        #[arg(long)]
        reason: String,
    },
    /// The pauses in force (and those ended in the last day).
    Pauses {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a pause now.
    Resume {
        /// The pause's id (`p-…`, from `pause` or `pauses`).
        id: String,
    },
    /// Validate a playbooks file (default: the embedded one) and print its
    /// stages and the mode of every change in every scope.
    CheckPlaybooks {
        /// A complete playbooks file, as PLAYBOOKS_FILE would name it.
        file: Option<PathBuf>,
    },
    /// Print exactly the script the responder would send through SSM for
    /// these parameters (what runs as root on your machines), or --list them.
    Script {
        /// Name the scripts there are.
        #[arg(long)]
        list: bool,
        /// The script (see --list).
        name: Option<String>,
        /// Its parameters, `--key value` (see --list).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PauseOn {
    /// An account id or ACCOUNT_ALIASES name.
    #[arg(long)]
    account: Option<String>,
    /// An Auto Scaling group's name.
    #[arg(long)]
    group: Option<String>,
    /// An instance id.
    #[arg(long)]
    instance: Option<String>,
    /// Every incident.
    #[arg(long)]
    all: bool,
}

#[derive(clap::Args)]
struct Args {
    /// An event as a function receives it (see events/).
    event_file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("first-responder: {msg}");
    ExitCode::from(2)
}

/// `script NAME ARGS` (or `--list`): an action's script, as it is sent.
fn script(list: bool, name: Option<&str>, args: &[String]) -> ExitCode {
    use first_responder::actions::script;
    match (list, name) {
        (true, _) => {
            for s in script::all() {
                println!("{} {}", s.name, s.usage);
            }
            ExitCode::SUCCESS
        }
        (false, Some(name)) => match script::build(name, args) {
            Ok(lines) => {
                // A closed pipe (`| head`) is not an error worth a panic.
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "{}", lines.join("\n"));
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(e),
        },
        (false, None) => bad_input("name a script, or --list them"),
    }
}

/// `check-playbooks [FILE]`: the playbooks as read, with their warnings.
fn check_playbooks(file: Option<std::path::PathBuf>) -> ExitCode {
    let path = file.map(|f| f.display().to_string());
    match Playbooks::load(path.as_deref()) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("warning: {w}");
            }
            print!("{p}");
            print!("{}", p.modes_text());
            ExitCode::SUCCESS
        }
        Err(e) => bad_input(e),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr as JSON; the report owns stdout.
    telemetry::init(true, "warn");
    let (mode, args) = match cli.command {
        Command::Plan(a) => (Mode::Plan, a),
        Command::Run(a) => (Mode::Run, a),
        Command::Script { list, name, args } => return script(list, name.as_deref(), &args),
        Command::Verify { incident, json } => return verify(&incident, json).await,
        Command::Forecast { json } => return forecast(json).await,
        Command::Backtest {
            files,
            alarms,
            json,
        } => return backtest(&files, alarms.as_deref(), json).await,
        Command::CheckPlaybooks { file } => return check_playbooks(file),
        Command::Pause {
            on,
            duration,
            reason,
        } => return pause(on, &duration, &reason).await,
        Command::Pauses { json } => return pauses(json).await,
        Command::Resume { id } => return resume(&id).await,
        Command::Trust {
            json,
            since,
            restore,
            scope,
        } => return trust(json, &since, restore.zip(scope)).await,
    };
    respond_file(mode, &args).await
}

/// `plan` and `run`: an event file through the whole line, the report on
/// stdout; exit 2 when nothing in it was usable, 1 when an action failed.
async fn respond_file(mode: Mode, args: &Args) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let file = args.event_file.display().to_string();
    let bytes = match std::fs::read(&args.event_file) {
        Ok(b) => b,
        Err(e) => return bad_input(format!("{file}: cannot read: {e}")),
    };
    // All of the input is checked before any AWS configuration is loaded.
    // One bad alert of a batch does not drop the good ones: exit 2 only when
    // nothing was usable; the rejected ones are reported beside the rest.
    let parsed =
        alert::decode(&bytes).and_then(|event| respond::incidents_each(event, &config.routes));
    let batch = match parsed {
        Ok(p) => p,
        Err(e) => return bad_input(format!("{file}: {e}")),
    };
    for e in &batch.rejected {
        eprintln!("first-responder: {file}: rejected one alert: {e}");
    }
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::CLI_APP_NAME,
    );
    let engine = match &config.state_table {
        Some(table) => Engine::new(&sdk).with_state(&sdk, table),
        None => Engine::new(&sdk),
    }
    .with_members(&sdk);
    // A held action's links plan again from the event (the key is read
    // when a change is first held).
    let text = (mode == Mode::Run && config.approvals_configured())
        .then(|| std::sync::Arc::<str>::from(String::from_utf8_lossy(&bytes).into_owned()));
    let mut report = respond::respond_event(
        &batch.incidents,
        batch.duplicates,
        &engine,
        &config,
        mode,
        None,
        text,
    )
    .await;
    report.rejected = batch.rejected.iter().map(Into::into).collect();
    if args.json {
        if let Err(code) = print_json(&report, "the report") {
            return code;
        }
    } else {
        print!("{}", report.to_text());
    }
    if report.any_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `trust [--json] [--since 30d]`, or `trust --restore ACTION --scope S`.
async fn trust(json: bool, since: &str, restore: Option<(String, String)>) -> ExitCode {
    use first_responder::autonomy;
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let Some(table) = config.state_table.clone() else {
        return bad_input("trust needs STATE_TABLE: the track record is read from it");
    };
    let since = match autonomy::trust::parse_since(since) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::CLI_APP_NAME,
    );
    let engine = Engine::new(&sdk).with_state(&sdk, &table);
    let Some(st) = engine.state.as_ref() else {
        return bad_input("trust needs STATE_TABLE");
    };
    let now = chrono::Utc::now().timestamp();
    if let Some((action, scope)) = restore {
        let Some(a) = first_responder::actions::ActionName::ALL
            .iter()
            .find(|a| a.as_str() == action && a.is_fix())
        else {
            return bad_input(format!(
                "--restore {action:?}: not an action that changes anything"
            ));
        };
        let by = match autonomy::run::caller(&sdk).await {
            Ok(by) => by,
            Err(e) => return failed(e),
        };
        return match st.restore(&scope, *a, &by, now).await {
            Ok(()) => {
                println!(
                    "restored {action} in scope {scope} (by {by}): earlier still-firing checks no longer count"
                );
                ExitCode::SUCCESS
            }
            Err(e) => failed(e),
        };
    }
    match autonomy::run::trust(st, &config, since, now).await {
        Ok(r) if json => match print_json(&r, "the trust report") {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Ok(r) => {
            println!("track record from {} to {}", r.since, r.until);
            for (scope, s) in &r.scopes {
                for (a, t) in &s.actions {
                    println!(
                        "{scope:<12} {:<16} {:<8} runs {:>3}  recovered {:>3}  still firing {:>3}  unknown {:>3}  unchanged {:>3}  escalations {:>3}  approved {:>3}  denied {:>3}  -> {} ({})",
                        a.as_str(),
                        t.mode.map_or("-", |m| m.as_str()),
                        t.runs,
                        t.recovered,
                        t.still_firing,
                        t.unknown,
                        t.recovered_unchanged,
                        t.escalations,
                        t.approved,
                        t.denied,
                        t.recommendation,
                        t.rule
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// The state table from the environment, for the commands that keep
/// their records there.
async fn state_engine(what: &str) -> Result<(Engine, first_responder::aws::Sdk), ExitCode> {
    let config = Config::from_env().map_err(bad_input)?;
    let Some(table) = config.state_table.clone() else {
        return Err(bad_input(format!("{what} needs STATE_TABLE")));
    };
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::CLI_APP_NAME,
    );
    Ok((Engine::new(&sdk).with_state(&sdk, &table), sdk))
}

async fn pause(on: PauseOn, duration: &str, reason: &str) -> ExitCode {
    use first_responder::observed::Pause;
    let seconds = match first_responder::autonomy::trust::parse_since(duration) {
        Ok(s) => s,
        Err(e) => return bad_input(e.replace("--since", "--for")),
    };
    let (on, value) = match on {
        PauseOn {
            account: Some(a), ..
        } => ("account", a),
        PauseOn { group: Some(g), .. } => ("group", g),
        PauseOn {
            instance: Some(i), ..
        } => ("instance", i),
        _ => ("all", String::new()),
    };
    if reason.trim().is_empty() {
        return bad_input("--reason: say why, for the people paged meanwhile");
    }
    let (engine, sdk) = match state_engine("pause").await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let Some(st) = engine.state.as_ref() else {
        return bad_input("pause needs STATE_TABLE");
    };
    let by = match first_responder::autonomy::run::caller(&sdk).await {
        Ok(by) => by,
        Err(e) => return failed(e),
    };
    let now = chrono::Utc::now();
    let p = Pause {
        id: format!(
            "p-{:08x}",
            now.timestamp_subsec_nanos() ^ (now.timestamp() as u32)
        ),
        on: on.to_owned(),
        value,
        until: now.timestamp() + seconds,
        reason: reason.to_owned(),
        by,
        set_at: now.timestamp(),
    };
    match st.set_pause(&p).await {
        Ok(()) => {
            let until = chrono::DateTime::from_timestamp(p.until, 0).unwrap_or(now);
            println!(
                "{} paused changes on {on} {} until {} ({})",
                p.id,
                p.value,
                until.to_rfc3339(),
                p.reason
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

async fn pauses(json: bool) -> ExitCode {
    let (engine, _) = match state_engine("pauses").await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let Some(st) = engine.state.as_ref() else {
        return bad_input("pauses needs STATE_TABLE");
    };
    let now = chrono::Utc::now().timestamp();
    let mut list = match st.history(None).await {
        Ok(h) => h.pauses,
        Err(e) => return failed(e),
    };
    list.retain(|p| p.until > now - 86_400);
    list.sort_by_key(|p| p.until);
    if json {
        let shown: Vec<serde_json::Value> = list
            .iter()
            .map(|p| serde_json::json!({"pause": p, "in_force": p.until > now}))
            .collect();
        return match print_json(&shown, "the pauses") {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        };
    }
    for p in &list {
        let until = chrono::DateTime::from_timestamp(p.until, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let state = if p.until > now { "in force" } else { "ended" };
        println!(
            "{} {} {} until {until} ({state}) by {}: {}",
            p.id, p.on, p.value, p.by, p.reason
        );
    }
    ExitCode::SUCCESS
}

async fn resume(id: &str) -> ExitCode {
    let (engine, _) = match state_engine("resume").await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let Some(st) = engine.state.as_ref() else {
        return bad_input("resume needs STATE_TABLE");
    };
    match st.remove_pause(id).await {
        Ok(true) => {
            println!("{id} ended: changes resume");
            ExitCode::SUCCESS
        }
        Ok(false) => bad_input(format!("no pause {id:?}")),
        Err(e) => failed(e),
    }
}

fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("first-responder: {e}");
    ExitCode::from(1)
}

async fn verify(incident: &str, json: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let Some(table) = config.state_table.clone() else {
        return bad_input("verify needs STATE_TABLE: the incident's record is read from it");
    };
    let hex = incident.strip_prefix("inc-").unwrap_or_default();
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad_input(format!(
            "INCIDENT_ID {incident:?} is not an incident id (inc- and 16 hex digits)"
        ));
    }
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::CLI_APP_NAME,
    );
    let engine = Engine::new(&sdk).with_state(&sdk, &table);
    match first_responder::verify::run::verify(&engine, incident, &config, chrono::Utc::now()).await
    {
        Ok(v) => {
            if json {
                if let Err(code) = print_json(&v, "the verification") {
                    return code;
                }
            } else {
                println!(
                    "incident {} {} (checked {}{}){}",
                    v.incident,
                    v.verdict.as_str(),
                    v.checked,
                    if v.published { ", published" } else { "" },
                    v.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("first-responder: verify {incident}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads every input before AWS is asked anything; bad input exits 2.
async fn backtest(files: &[PathBuf], alarms: Option<&std::path::Path>, json: bool) -> ExitCode {
    use first_responder::backtest;
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let mut inputs = Vec::new();
    for f in files {
        let origin = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return bad_input(format!("{origin}: cannot read: {e}")),
        };
        match backtest::read_input(&origin, &text) {
            Ok(i) => inputs.push((origin, i)),
            Err(e) => return bad_input(e),
        }
    }
    let given = match alarms {
        Some(p) => {
            let origin = p.display().to_string();
            let read = std::fs::read_to_string(p)
                .map_err(|e| format!("{origin}: cannot read: {e}"))
                .and_then(|t| {
                    serde_json::from_str(&t).map_err(|e| format!("{origin}: not JSON: {e}"))
                })
                .and_then(|v| backtest::definitions(&origin, &v).map_err(|e| e.to_string()));
            match read {
                Ok(d) => Some(d),
                Err(e) => return bad_input(e),
            }
        }
        None => None,
    };
    // Its own name in the user agent: its calls are proven against its own
    // read-only policy (tests/iam).
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::BACKTEST_APP_NAME,
    );
    let aws = Aws::new(&sdk);
    let defs = match given {
        Some(d) => d,
        None => {
            let names = backtest::alarm_names(&inputs);
            match first_responder::backtest::run::alarm_definitions(&aws, &names).await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("first-responder: {e} (or pass --alarms FILE)");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let replayed = match backtest::transitions(&inputs, &defs, &config.routes) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let summary = first_responder::backtest::run::backtest(&aws, &replayed, &config).await;
    if json {
        if let Err(code) = print_json(&summary, "the backtest") {
            return code;
        }
    } else {
        print!("{}", summary.to_text());
    }
    ExitCode::SUCCESS
}

async fn forecast(json: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let sdk = first_responder::aws::ours(
        &sdk_config_loader().load().await,
        first_responder::aws::CLI_APP_NAME,
    );
    let engine = Engine::new(&sdk);
    match first_responder::forecast::run::forecast_check(&engine, &config, chrono::Utc::now()).await
    {
        Ok(check) => {
            if json {
                if let Err(code) = print_json(&check, "the check") {
                    return code;
                }
            } else {
                println!(
                    "{} filesystem(s) read; {} at risk within {} h",
                    check.filesystems,
                    check.at_risk.len(),
                    check.horizon_hours
                );
                for r in &check.at_risk {
                    println!(
                        "{} {} {:.1}% +{:.2}/h full at {}",
                        r.instance,
                        first_responder::text::escape(&r.path),
                        r.latest,
                        r.forecast.percent_per_hour,
                        r.forecast.full_at.as_deref().unwrap_or("-")
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("first-responder: forecast: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pretty JSON on stdout; when it cannot be printed, says so and fails.
fn print_json<T: serde::Serialize>(value: &T, what: &str) -> Result<(), ExitCode> {
    match serde_json::to_string_pretty(value) {
        Ok(s) => {
            println!("{s}");
            Ok(())
        }
        Err(e) => {
            eprintln!("first-responder: cannot print {what}: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}
