//! The links and the chat and pager card of an incident's notification,
//! from its plan and the outcomes (`crate::oncall` holds their shapes).

/// The card of an incident's page: `lines` as the page words them, the
/// held changes' links and every console link from the outcomes.
pub fn card_for(
    plan: &crate::plan::Plan,
    actions: &[crate::report::ActionReport],
    lines: Vec<String>,
) -> crate::oncall::Card {
    let i = &plan.incident;
    let a = &i.alert;
    let firing = i.transition == crate::incident::Transition::Firing;
    let held = actions
        .iter()
        .filter_map(|r| {
            r.approve_url.as_ref().map(|u| crate::oncall::Held {
                action: r.action.as_str().to_owned(),
                target: r.target.clone(),
                approve: u.clone(),
                deny: r.deny_url.clone(),
            })
        })
        .collect();
    let mut resources: Vec<String> = plan
        .instance
        .iter()
        .map(ToString::to_string)
        .chain(plan.group.iter().map(ToString::to_string))
        .collect();
    for r in actions {
        for id in std::iter::once(&r.target).chain(&r.ids) {
            if id.starts_with("vol-") && !resources.contains(id) {
                resources.push(id.clone());
            }
        }
    }
    let source = resources
        .first()
        .cloned()
        .unwrap_or_else(|| match &i.resource {
            crate::incident::Resource::None => a.alarm_name.clone(),
            r => r.describe(),
        });
    crate::oncall::Card {
        incident_id: i.id.clone(),
        kind: i.kind.as_str().to_owned(),
        lines,
        actions: actions
            .iter()
            .map(|a| crate::oncall::Done {
                status: a.status.as_str().to_owned(),
                action: a.action.as_str().to_owned(),
                target: a.target.clone(),
                what: a.detail.clone().unwrap_or_else(|| a.reason.clone()),
            })
            .collect(),
        held,
        next_steps: if firing {
            plan.next_steps().to_vec()
        } else {
            Vec::new()
        },
        account: plan.account.clone().or_else(|| a.account.clone()),
        account_id: plan.console.as_ref().and_then(|w| w.account.clone()),
        region: plan.console.as_ref().map(|w| w.region.to_string()),
        resources,
        links: plan.links(actions),
        pager: match i.transition {
            crate::incident::Transition::Firing => crate::oncall::PagerEvent::Trigger,
            crate::incident::Transition::Resolved => crate::oncall::PagerEvent::Resolve,
            crate::incident::Transition::Ignored(_) => crate::oncall::PagerEvent::None,
        },
        dedup_key: i.id.clone(),
        source,
        component: a.metric.as_ref().map(|m| m.name.clone()),
        group: plan.group.as_ref().map(ToString::to_string),
        timestamp: crate::metrics::parse_time_ms(&a.state_timestamp)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        pager_severity: None,
    }
}
