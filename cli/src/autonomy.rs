//! `first-responder trust`, `pause`, `pauses` and `resume`: the track
//! record and the maintenance pauses kept in the state table.

use std::process::ExitCode;

use first_responder::aws::sdk_config_loader;
use first_responder::{Config, Engine};

use crate::{bad_input, print_json};

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct PauseOn {
    /// An account id or ACCOUNT_ALIASES name.
    #[arg(long)]
    pub account: Option<String>,
    /// An Auto Scaling group's name.
    #[arg(long)]
    pub group: Option<String>,
    /// An instance id.
    #[arg(long)]
    pub instance: Option<String>,
    /// Every incident.
    #[arg(long)]
    pub all: bool,
}

/// `trust [--json] [--since 30d]`, or `trust --restore ACTION --scope S`.
pub async fn trust(json: bool, since: &str, restore: Option<(String, String)>) -> ExitCode {
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

pub async fn pause(on: PauseOn, duration: &str, reason: &str) -> ExitCode {
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

pub async fn pauses(json: bool) -> ExitCode {
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

pub async fn resume(id: &str) -> ExitCode {
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

pub fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("first-responder: {e}");
    ExitCode::from(1)
}

/// `backtest --recorded --since 90d`: the transitions the responder kept.
pub async fn recorded_history(
    sdk: &first_responder::aws::Sdk,
    config: &Config,
    since: &str,
) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), ExitCode> {
    let seconds = first_responder::autonomy::trust::parse_since(since).map_err(bad_input)?;
    let Some(table) = &config.state_table else {
        return Err(bad_input(
            "backtest --recorded needs STATE_TABLE: the recorded history is read from it",
        ));
    };
    let engine = Engine::new(sdk).with_state(sdk, table);
    let Some(st) = engine.state.as_ref() else {
        return Err(bad_input("backtest --recorded needs STATE_TABLE"));
    };
    let now = chrono::Utc::now().timestamp();
    st.recorded_history(now - seconds).await.map_err(failed)
}
