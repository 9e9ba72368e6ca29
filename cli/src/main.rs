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

mod autonomy;
use autonomy::{PauseOn, pause, pauses, resume, trust};
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
        #[arg(required_unless_present = "recorded")]
        files: Vec<PathBuf>,
        /// Replay the transitions the responder recorded in the state table
        /// (STATE_TABLE; kept HISTORY_TTL_DAYS, beyond CloudWatch's 14 days).
        #[arg(long)]
        recorded: bool,
        /// With --recorded, how far back: days or hours (90d).
        #[arg(long, default_value = "90d", requires = "recorded")]
        since: String,
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
            recorded,
            since,
        } => {
            let recorded = recorded.then_some(since.as_str());
            return backtest(&files, alarms.as_deref(), json, recorded).await;
        }
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
async fn backtest(
    files: &[PathBuf],
    alarms: Option<&std::path::Path>,
    json: bool,
    recorded: Option<&str>,
) -> ExitCode {
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
    if let Some(since) = recorded {
        match autonomy::recorded_history(&sdk, &config, since).await {
            Ok((history, payloads)) => {
                inputs.push((
                    "the recorded history".into(),
                    backtest::Input::History(history),
                ));
                inputs.push((
                    "the recorded Alertmanager payloads".into(),
                    backtest::Input::Alertmanager(payloads),
                ));
            }
            Err(code) => return code,
        }
    }
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
