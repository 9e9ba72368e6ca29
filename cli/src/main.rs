//! `first-responder plan|run EVENT_FILE`: the functions' code path from a terminal.
//! `first-responder check-playbooks [FILE]`: validates a playbooks file.
//!
//! Exit status: 0 handled, 1 an action failed (or AWS could not be reached),
//! 2 bad input or configuration (one line on stderr says what and where).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use first_responder::playbook::Playbooks;
use first_responder::{Aws, Config, Mode, alert, aws::sdk_config_loader, respond, telemetry};

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
    /// Validate a playbooks file (default: the embedded one) and print its stages.
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
        #[command(subcommand)]
        name: Option<ScriptName>,
    },
}

/// The scripts sent through SSM Run Command (AWS-RunShellScript), by name.
#[derive(Subcommand)]
enum ScriptName {
    /// disk_full: delete old, unused regular files under /tmp and /var/tmp.
    #[command(name = "cleanup_temp")]
    CleanupTemp {
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// disk_full: compress old rotated logs under /var/log (and ship them).
    #[command(name = "archive_logs")]
    ArchiveLogs {
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Ship the compressed logs to this S3 bucket.
        #[arg(long, requires_all = ["instance", "incident"])]
        bucket: Option<String>,
        /// The instance and incident the S3 key names (with --bucket).
        #[arg(long)]
        instance: Option<String>,
        #[arg(long)]
        incident: Option<String>,
    },
    /// disk_full: grow the partition and filesystem once EBS grew the volume.
    #[command(name = "grow_filesystem")]
    GrowFilesystem {
        #[arg(long)]
        volume_id: String,
        #[arg(long)]
        to_gib: i32,
        /// Block-device mapping letters (`f` of /dev/sdf), for Xen instances.
        #[arg(long)]
        xen_letters: Option<String>,
    },
    /// memory_pressure: restart a systemd service and report its state.
    #[command(name = "restart_service")]
    RestartService {
        #[arg(long)]
        service: String,
    },
    /// disk_full: the instance's block devices, as JSON.
    #[command(name = "lsblk")]
    Lsblk,
    /// Diagnostics for a kind (high_cpu or memory_pressure).
    #[command(name = "diagnostics")]
    Diagnostics {
        #[arg(long)]
        kind: String,
    },
    /// kill_process: stop process PID if its name is allowed (TERM, then KILL).
    #[command(name = "kill_process")]
    KillProcess {
        #[arg(long)]
        pid: u32,
        /// Process names (/proc/PID/comm), comma-separated.
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
        #[arg(long, default_value_t = 10)]
        grace_seconds: u32,
    },
}

const SCRIPT_NAMES: &[(&str, &str)] = &[
    ("cleanup_temp", "--days N"),
    (
        "archive_logs",
        "--days N [--bucket B --instance I --incident ID]",
    ),
    (
        "grow_filesystem",
        "--volume-id vol-... --to-gib N [--xen-letters f]",
    ),
    ("restart_service", "--service NAME"),
    ("lsblk", ""),
    ("diagnostics", "--kind high_cpu|memory_pressure"),
    (
        "kill_process",
        "--pid N --allow NAME[,NAME] [--grace-seconds N]",
    ),
];

/// The script for these typed parameters, validated as the responder
/// validates them.
fn script(name: ScriptName) -> Result<Vec<String>, String> {
    use first_responder::commands;
    use first_responder::ids::{InstanceId, ServiceName, VolumeId};
    let e = |e: first_responder::InputError| e.to_string();
    Ok(match name {
        ScriptName::CleanupTemp { days } => commands::cleanup_temp(days),
        ScriptName::ArchiveLogs {
            days,
            bucket,
            instance,
            incident,
        } => {
            let instance =
                InstanceId::parse("--instance", instance.as_deref().unwrap_or("i-00000000"))
                    .map_err(e)?;
            if let Some(b) = &bucket
                && !first_responder::playbook::is_bucket_name(b)
            {
                return Err(format!("--bucket {b:?} is not an S3 bucket name"));
            }
            commands::archive_logs(
                days,
                bucket.as_deref(),
                &instance,
                incident.as_deref().unwrap_or("inc-0000000000000000"),
            )
        }
        ScriptName::GrowFilesystem {
            volume_id,
            to_gib,
            xen_letters,
        } => {
            let v = VolumeId::parse("--volume-id", &volume_id).map_err(e)?;
            if let Some(l) = &xen_letters
                && !(1..=2).contains(&l.len())
            {
                return Err(format!("--xen-letters {l:?}: one or two lowercase letters"));
            }
            if xen_letters
                .as_deref()
                .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_lowercase()))
            {
                return Err("--xen-letters: lowercase letters only".into());
            }
            if !(1..=65536).contains(&to_gib) {
                return Err(format!("--to-gib {to_gib}: 1 to 65536"));
            }
            commands::grow_filesystem(&v, xen_letters.as_deref(), to_gib)
        }
        ScriptName::RestartService { service } => {
            commands::restart_service(&ServiceName::parse("--service", &service).map_err(e)?)
        }
        ScriptName::KillProcess {
            pid,
            allow,
            grace_seconds,
        } => {
            use first_responder::actions::kill_process::{ProcessName, script};
            let allow = allow
                .iter()
                .map(|n| ProcessName::parse("--allow", n))
                .collect::<Result<Vec<_>, _>>()?;
            if !(1..=120).contains(&grace_seconds) {
                return Err(format!("--grace-seconds {grace_seconds}: 1 to 120"));
            }
            script(pid, &allow, grace_seconds)
        }
        ScriptName::Lsblk => commands::LSBLK.iter().map(|c| (*c).to_owned()).collect(),
        ScriptName::Diagnostics { kind } => match kind.as_str() {
            "high_cpu" => commands::HIGH_CPU_DIAGNOSTICS,
            "memory_pressure" => commands::MEMORY_DIAGNOSTICS,
            other => {
                return Err(format!(
                    "--kind {other:?}: high_cpu or memory_pressure (the kinds that run diagnostics)"
                ));
            }
        }
        .iter()
        .map(|c| (*c).to_owned())
        .collect(),
    })
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr as JSON; the report owns stdout.
    telemetry::init(true, "warn");
    let (mode, args) = match cli.command {
        Command::Plan(a) => (Mode::Plan, a),
        Command::Run(a) => (Mode::Run, a),
        Command::Script { list, name } => {
            return match (list, name) {
                (true, _) => {
                    for (n, args) in SCRIPT_NAMES {
                        println!("{n} {args}");
                    }
                    ExitCode::SUCCESS
                }
                (false, Some(name)) => match script(name) {
                    Ok(lines) => {
                        // A closed pipe (`| head`) is not an error worth a panic.
                        use std::io::Write;
                        let _ = writeln!(std::io::stdout(), "{}", lines.join("\n"));
                        ExitCode::SUCCESS
                    }
                    Err(e) => bad_input(e),
                },
                (false, None) => bad_input("name a script, or --list them"),
            };
        }
        Command::CheckPlaybooks { file } => {
            let path = file.map(|f| f.display().to_string());
            return match Playbooks::load(path.as_deref()) {
                Ok(p) => {
                    for w in &p.warnings {
                        eprintln!("warning: {w}");
                    }
                    print!("{p}");
                    ExitCode::SUCCESS
                }
                Err(e) => bad_input(e),
            };
        }
    };
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
    let sdk = sdk_config_loader().load().await;
    let aws = match &config.state_table {
        Some(table) => Aws::new(&sdk).with_state(&sdk, table),
        None => Aws::new(&sdk),
    };
    let mut report =
        respond::respond(&batch.incidents, batch.duplicates, &aws, &config, mode).await;
    report.rejected = batch.rejected.iter().map(Into::into).collect();
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("first-responder: cannot print the report: {e}");
                return ExitCode::FAILURE;
            }
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
