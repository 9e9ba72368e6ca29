//! The links of an incident's notifications (`crate::oncall::links`):
//! into the console where it acts, and a Prometheus alert's own pages.

use super::Plan;

impl Plan {
    /// Every link of an incident's notification: the alarm (a CloudWatch
    /// alarm's), the instance, the group, the snapshots and volumes, each Run
    /// Command's output; a Prometheus alert's rule and silence form.
    pub fn links(&self, actions: &[crate::report::ActionReport]) -> Vec<crate::oncall::Link> {
        let plan = self;
        let a = &plan.incident.alert;
        let mut out = Vec::new();
        if let Some(w) = &plan.console {
            if a.source.is_cloudwatch() {
                out.push(w.alarm(&a.alarm_name));
            }
            if let Some(i) = &plan.instance {
                out.push(w.instance(i.as_str()));
            }
            if let Some(g) = &plan.group {
                out.push(w.group(g.as_str()));
            }
            for r in actions {
                for id in &r.ids {
                    if id.starts_with("snap-") {
                        out.push(w.snapshot(id));
                    } else if id.starts_with("vol-") {
                        out.push(w.volume(id));
                    } else if crate::oncall::links::is_command_id(id) && r.target.starts_with("i-")
                    {
                        out.push(w.command(id, &r.target));
                    }
                }
            }
        }
        if let Some(g) = &a.generator_url {
            out.push(crate::oncall::Link {
                text: format!("rule {} in Prometheus", a.alarm_name),
                href: g.clone(),
            });
        }
        if let Some(silence) = a
            .external_url
            .as_deref()
            .filter(|_| a.source == crate::alert::AlertSource::Alertmanager)
            .and_then(|e| crate::oncall::links::silence_form(e, &a.tags))
        {
            out.push(crate::oncall::Link {
                text: format!("silence {} for 1 h (Alertmanager)", a.alarm_name),
                href: silence,
            });
        }
        out.dedup();
        out
    }
}
