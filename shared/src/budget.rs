//! The budgets a change counts against (pure): the account's and the
//! group's changes an hour, the share of a group that may be down at once,
//! and the breaker, the global ceiling. The engine takes them in the state
//! table (`engine::limits`), the backtest in memory (`backtest::Limits`).

use crate::actions::Step;
use crate::config::Config;
use crate::plan::Plan;

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// Where an incident's changes count: its account, its group and the
/// group's size (for the share that may be taken down at once).
#[derive(Clone, Debug)]
pub struct Scope {
    /// The incident (it owns the cooldowns it takes) and its kind (whose
    /// playbook gives the cooldowns).
    pub incident: String,
    pub kind: crate::incident::IncidentKind,
    /// The account id, and as people know it (with its alias).
    account: String,
    account_named: String,
    /// `ACCOUNT/REGION` (or `home`): resources of one name in two accounts
    /// or regions are different resources to the cooldowns and budgets.
    pub place: String,
    group: Option<String>,
    group_size: Option<i32>,
}

impl Scope {
    /// A resource's key in the state table: where it is, then its name
    /// (`cooldown#scale_out#222222222222/us-west-2#web-asg`).
    pub fn key_of(&self, resource: &str) -> String {
        format!("{}#{resource}", self.place)
    }

    pub fn of(plan: &Plan) -> Self {
        let account = plan
            .target
            .as_ref()
            .map_or_else(|| "this account".to_owned(), |t| t.account.to_string());
        Self {
            incident: plan.incident.id.clone(),
            kind: plan.incident.kind,
            account_named: plan.account.clone().unwrap_or_else(|| account.clone()),
            account,
            place: crate::target::place_of(plan.target.as_ref()),
            group: plan.group.as_ref().map(ToString::to_string),
            group_size: plan.group_size,
        }
    }

    /// The budgets this step counts against besides the breaker, in order.
    pub fn budgets(&self, step: &Step, config: &Config) -> Vec<Budget> {
        let hour = 3600;
        let mut out = Vec::new();
        if let Some(max) = config.budget_per_account_per_hour {
            out.push(Budget {
                key: format!("budget#account#{}", self.account),
                max,
                window: hour,
                what: format!(
                    "the budget of account {} ({max} changes an hour, BUDGET_PER_ACCOUNT_PER_HOUR)",
                    self.account_named
                ),
            });
        }
        if let (Some(max), Some(g)) = (config.budget_per_group_per_hour, &self.group) {
            out.push(Budget {
                key: format!("budget#group#{}#{g}", self.place),
                max,
                window: hour,
                what: format!(
                    "the budget of group {g} ({max} changes an hour, BUDGET_PER_GROUP_PER_HOUR)"
                ),
            });
        }
        if let Some(max) = config
            .playbooks
            .get(self.kind)
            .and_then(|pb| pb.budgets.get(&step.name()))
            .copied()
        {
            let name = step.name().as_str();
            out.push(Budget {
                key: format!("budget#action#{}#{name}", self.account),
                max,
                window: hour,
                what: format!(
                    "the budget of {name} ({max} an hour, budget_per_hour in its playbook table)"
                ),
            });
        }
        if step.takes_instance_down()
            && let (Some(g), Some(n)) = (&self.group, self.group_size)
        {
            let pct = config.max_group_share_percent;
            let max = u32::try_from(i64::from(n) * i64::from(pct) / 100)
                .unwrap_or(0)
                .max(1);
            out.push(Budget {
                key: format!("share#group#{}#{g}", self.place),
                max,
                window: hour,
                what: format!(
                    "the share of group {g} that may be down at once ({max} of {n} instances an hour, MAX_GROUP_SHARE_PERCENT={pct})"
                ),
            });
        }
        out
    }
}

/// One counter with its ceiling, in the state table's sliding window.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// The state table's counter (its sliding window's buckets).
    pub key: String,
    pub max: u32,
    /// Seconds.
    pub window: i64,
    /// What it is, in words, for the refusal.
    pub what: String,
}

impl Budget {
    pub fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(self.window).unwrap_or(3600))
    }

    pub fn breaker(config: &Config) -> Self {
        Self {
            key: "breaker".into(),
            max: config.max_mutations_per_hour,
            window: 3600,
            what: String::new(),
        }
    }

    /// Which budget refused, and until about when (the window's bucket ends).
    pub fn refusal(&self, now: i64) -> String {
        let until = now - now.rem_euclid(self.window) + self.window;
        if self.key == "breaker" {
            return format!(
                "circuit breaker open: {} changes in the last hour across all incidents; notify only (until about {})",
                self.max,
                rfc3339(until)
            );
        }
        format!(
            "{} is spent: not done; not before about {}",
            self.what,
            rfc3339(until)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{ActionName, Decision};
    use crate::plan::tests::{ALARM, DOWN, config, fleet, incident};

    fn step(p: &Plan, name: ActionName) -> Step {
        match p
            .actions
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.decision)
        {
            Some(Decision::Do(s) | Decision::Hold(s)) => s.clone(),
            d => panic!("{name:?}: {d:?}"),
        }
    }

    #[test]
    fn a_change_counts_against_its_account_group_action_and_share_in_order() {
        let mut c = config();
        c.budget_per_account_per_hour = Some(5);
        c.budget_per_group_per_hour = Some(3);
        c.playbooks.high_cpu.budgets.insert(ActionName::ScaleOut, 2);
        let p = crate::plan::plan(&incident(ALARM), &fleet(1, 3), &c);
        let b = Scope::of(&p).budgets(&step(&p, ActionName::ScaleOut), &c);
        let keys: Vec<(&str, u32)> = b.iter().map(|b| (b.key.as_str(), b.max)).collect();
        assert_eq!(
            keys,
            [
                ("budget#account#this account", 5),
                ("budget#group#home#web-asg", 3),
                ("budget#action#this account#scale_out", 2),
            ]
        );
        assert!(
            b[2].refusal(7_200)
                .contains("not before about 1970-01-01T03:00:00Z"),
            "{}",
            b[2].refusal(7_200)
        );
        // A group of the same name in another account or region is another
        // group: its own budget and share; the account's budget is the account's.
        for (account, region) in [("222222222222", "us-east-1"), ("222222222222", "us-west-2")] {
            let mut q = p.clone();
            q.target = Some(crate::target::Target {
                account: crate::ids::AccountId::parse("a", account).unwrap(),
                region: crate::ids::RegionName::parse("r", region).unwrap(),
            });
            let b = Scope::of(&q).budgets(&step(&q, ActionName::ScaleOut), &c);
            assert_eq!(b[0].key, format!("budget#account#{account}"));
            assert_eq!(b[1].key, format!("budget#group#{account}/{region}#web-asg"));
            assert_eq!(
                Scope::of(&q).key_of("web-asg"),
                format!("{account}/{region}#web-asg")
            );
        }
        // No budget configured: only the breaker, which the engine adds.
        let p = crate::plan::plan(&incident(ALARM), &fleet(1, 3), &config());
        assert!(
            Scope::of(&p)
                .budgets(&step(&p, ActionName::ScaleOut), &config())
                .is_empty()
        );
        assert!(
            Budget::breaker(&config())
                .refusal(0)
                .starts_with("circuit breaker open: 30 changes")
        );
    }

    #[test]
    fn taking_an_instance_down_counts_against_the_groups_share() {
        let c = config();
        for (size, max) in [(20, 2), (5, 1), (1, 1), (35, 3)] {
            let p = crate::plan::plan(&incident(DOWN), &fleet(size, 40), &c);
            let b = Scope::of(&p).budgets(&step(&p, ActionName::ReplaceInstance), &c);
            assert_eq!(b.len(), 1, "{b:?}");
            assert_eq!(
                (b[0].key.as_str(), b[0].max),
                ("share#group#home#web-asg", max),
                "{size}"
            );
        }
    }
}
