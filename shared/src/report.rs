//! What the tool prints and the function returns: per incident, every action
//! with its status. The same shape for `plan` (statuses `planned`) and `run`.

use serde::Serialize;

use crate::names::ActionName;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Planned,
    Done,
    Skipped,
    Failed,
    /// Planned and held until a person approves it (`approve_url`).
    AwaitingApproval,
    /// Planned and not carried out: observe mode (the reason says what it
    /// would have done).
    Observed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Observed => "observed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionReport {
    pub action: ActionName,
    pub target: String,
    pub status: Status,
    /// Why this action was chosen, or why it was skipped or failed.
    pub reason: String,
    /// What happened (ids, sizes, the SSM command id), when something did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Resources this action created (snapshot ids, SNS message id, command id).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Diagnostics output, as the instance printed it (SSM caps it at 24,000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// When it started (RFC 3339, UTC); with `duration_ms`, the timeline
    /// kept in the state table's incident record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A held action's links (`awaiting_approval`): each opens a page that
    /// states the change and asks for one press; signed, single-use, expiring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_url: Option<String>,
    /// A change's mode (`observe`, `approve`, `auto`) and the scope it ran
    /// in (`crate::autonomy`), and why when a demotion or a chronic problem
    /// held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ActionReport {
    pub fn new(
        action: ActionName,
        target: impl Into<String>,
        status: Status,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            action,
            target: target.into(),
            status,
            reason: reason.into(),
            detail: None,
            ids: Vec::new(),
            output: None,
            started_at: None,
            duration_ms: None,
            approve_url: None,
            deny_url: None,
            mode: None,
            scope: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncidentReport {
    pub id: String,
    pub kind: crate::incident::IncidentKind,
    pub alarm_name: String,
    /// What a pager de-duplicates and resolves by (`AlarmName` of the
    /// `https` notification): the alarm's name, or an Alertmanager alert's
    /// name and fingerprint.
    pub alarm_key: String,
    /// cloudwatch or alertmanager: how the verification checks it.
    pub source: &'static str,
    /// When the alarm changed state (as the event gave it).
    pub alarm_time: String,
    pub state: crate::alert::AlarmState,
    pub transition: &'static str,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub dry_run: bool,
    /// `first`, `resumed` (an earlier delivery stopped half-way), `duplicate`
    /// (completed earlier: nothing done), `busy` (another delivery holds it),
    /// or `untracked` (no state table: not de-duplicated).
    pub delivery: &'static str,
    /// A failure a retry can fix (the state table could not be reached):
    /// the function fails the invocation so that Lambda retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_error: Option<String>,
    /// Why nothing (or less) was done, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The alert's metric over the window before it fired (null when there
    /// is no metric, or it could not be read: a note says why).
    pub context: Option<crate::series::MetricContext>,
    /// For a disk: the fitted rate and when the line reaches 100%.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<crate::series::Forecast>,
    /// The account (with its alias) and region acted in, when the
    /// deployment acts in several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account's id alone (the check after the fix reads there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Why the event was not believed (an SNS message whose account,
    /// region or alarm did not hold where it said): nothing was changed or
    /// sent, and the `RefusedEvents` metric counts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Into the console (the alarm, instance, group, snapshots, command
    /// output) and a Prometheus alert's pages: every notification has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::oncall::links::Link>,
    pub actions: Vec<ActionReport>,
}

impl IncidentReport {
    pub fn any_failed(&self) -> bool {
        self.actions.iter().any(|a| a.status == Status::Failed)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub incidents: Vec<IncidentReport>,
    /// Alerts in the event that repeated an occurrence already in it.
    pub duplicates: usize,
    /// Alerts of a batch that could not be handled, each with the field and
    /// value at fault; the others were handled.
    pub rejected: Vec<Rejected>,
}

/// One alert refused: which field, and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub field: String,
    pub problem: String,
}

impl From<&crate::error::InputError> for Rejected {
    fn from(e: &crate::error::InputError) -> Self {
        use crate::error::InputError;
        match e {
            InputError::Field { field, problem } => Self {
                field: field.clone(),
                problem: problem.clone(),
            },
            other => Self {
                field: "(event)".into(),
                problem: other.to_string(),
            },
        }
    }
}

impl Report {
    pub fn any_failed(&self) -> bool {
        self.incidents
            .iter()
            .any(|i| i.any_failed() || i.transient_error.is_some())
    }

    /// The first failure a retry of the whole event can fix.
    pub fn transient_error(&self) -> Option<&str> {
        self.incidents
            .iter()
            .find_map(|i| i.transient_error.as_deref())
    }

    /// Plain text for a terminal.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for r in &self.rejected {
            let _ = writeln!(s, "rejected alert: field `{}`: {}", r.field, r.problem);
        }
        for i in &self.incidents {
            let _ = writeln!(
                s,
                "incident {} {} ({}, alarm {:?}, severity {}, delivery {}){}",
                i.id,
                i.kind,
                i.transition,
                i.alarm_name,
                i.severity.as_str(),
                i.delivery,
                if i.dry_run { " [dry run]" } else { "" }
            );
            if let Some(e) = &i.transient_error {
                let _ = writeln!(s, "  error (retry): {e}");
            }
            for n in &i.notes {
                let _ = writeln!(s, "  note: {n}");
            }
            for a in &i.actions {
                let _ = writeln!(
                    s,
                    "  {:<8} {:<19} {:<24} {}",
                    a.status.as_str(),
                    a.action.as_str(),
                    a.target,
                    a.detail.as_deref().unwrap_or(&a.reason)
                );
            }
        }
        s
    }
}
