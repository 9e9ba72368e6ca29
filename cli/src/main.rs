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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr as JSON; the report owns stdout.
    telemetry::init(true, "warn");
    let (mode, args) = match cli.command {
        Command::Plan(a) => (Mode::Plan, a),
        Command::Run(a) => (Mode::Run, a),
        Command::Script { list, name, args } => {
            use first_responder::actions::script;
            return match (list, name) {
                (true, _) => {
                    for s in script::all() {
                        println!("{} {}", s.name, s.usage);
                    }
                    ExitCode::SUCCESS
                }
                (false, Some(name)) => match script::build(&name, &args) {
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
