//! The first page: what fired and what is under way, sent while the work
//! goes on (`engine::first_page`).

use super::*;

/// The first page: sent while the work goes on, when it takes longer than
/// `FIRST_PAGE_BUDGET_SECONDS` (see `engine::first_page`). It says what
/// fired, the metric when it is in, and what is under way, and that the
/// full report follows; its pager fields are the report's, so a paging
/// service opens the incident now and the report lands on the same one.
/// `typical`: how long the plan's work typically takes.
pub fn compose_first(plan: &Plan, typical: std::time::Duration) -> Notification {
    let full = subject(plan);
    let subject = sanitize_subject(&match full.strip_prefix("[ALARM] ") {
        Some(rest) => format!("[ON IT] {rest}"),
        None => format!("[ON IT] {full}"),
    });
    let mut t = heading(plan, &subject);
    let _ = writeln!(
        t,
        "first-responder is on it: the work below typically takes about {} s. The full \
         report (what was done, the diagnostics, the next steps) follows when it ends.",
        typical.as_secs().max(1)
    );
    let _ = writeln!(t);
    what_fired(&mut t, plan);
    let (under_way, then, held, observed) = steps_of(plan);
    for (head, lines) in [
        ("UNDER WAY", &under_way),
        ("THEN, DEPENDING ON WHAT THAT FINDS", &then),
        (
            "TO BE HELD FOR YOUR APPROVAL (links in the full report)",
            &held,
        ),
        ("OBSERVE MODE: NOT CHANGED", &observed),
    ] {
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "{head}");
        for (name, what) in lines {
            let _ = writeln!(t, "- {name}: {what}");
        }
    }
    let step = |(name, what): &(&str, String)| json!({"action": name, "step": what});
    let mut lines = card_head(plan);
    lines.push(format!(
        "first-responder is on it: about {} s of work; the full report follows.",
        typical.as_secs().max(1)
    ));
    for (head, steps) in [
        ("under way", &under_way),
        ("then", &then),
        ("to be held", &held),
        ("observe mode", &observed),
    ] {
        lines.extend(
            steps
                .iter()
                .map(|(name, what)| format!("{head}: {name}: {what}")),
        );
    }
    let card = card_for(plan, &[], lines);
    links_text(&mut t, &card.links);
    let document = document(
        plan,
        &subject,
        true,
        json!({
            "links": card.links,
            "typical_seconds": typical.as_secs(),
            "under_way": under_way.iter().map(step).collect::<Vec<_>>(),
            "then": then.iter().map(step).collect::<Vec<_>>(),
            "held": held.iter().map(step).collect::<Vec<_>>(),
            "context": plan.context,
            "text": t,
        }),
    );
    Notification::of_plan(plan, subject, t, document, card)
}

type Steps = Vec<(&'static str, String)>;

/// What runs now, then after it, what waits for a person, and what is
/// only observed: the planner's own words for each step.
fn steps_of(plan: &Plan) -> (Steps, Steps, Steps, Steps) {
    let mut under_way = Vec::new();
    let mut then = Vec::new();
    let mut held = Vec::new();
    let mut observed = Vec::new();
    let first_stage = plan
        .actions
        .iter()
        .filter(|a| {
            a.name != ActionName::Notify && matches!(a.decision, crate::plan::Decision::Do(_))
        })
        .map(|a| a.stage)
        .min();
    for a in plan.actions.iter().filter(|a| a.name != ActionName::Notify) {
        match &a.decision {
            crate::plan::Decision::Do(step) => {
                let line = (a.name.as_str(), escape(&step.describe()));
                if Some(a.stage) == first_stage {
                    under_way.push(line);
                } else {
                    then.push(line);
                }
            }
            crate::plan::Decision::Hold(step) => {
                held.push((a.name.as_str(), escape(&step.describe())))
            }
            crate::plan::Decision::Observe(_) => {
                observed.push((a.name.as_str(), escape(&a.reason)))
            }
            _ => {}
        }
    }
    (under_way, then, held, observed)
}
