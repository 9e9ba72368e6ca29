//! Alertmanager webhooks, directly or in a Function URL request.

use super::*;

/// A Function URL request (payload format 2.0), as the `webhook` function
/// receives it: the body is an Alertmanager payload, possibly base64. The
/// bearer token is the webhook's business; the CLI, run by an operator, reads
/// the body only.
pub(crate) fn parse_function_url(value: Value) -> Result<Vec<Alert>, InputError> {
    parse_function_url_each(value)?.into_iter().collect()
}

pub(crate) fn parse_function_url_each(
    value: Value,
) -> Result<Vec<Result<Alert, InputError>>, InputError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        is_base64_encoded: bool,
    }
    let r: Request = deserialize(value, "")?;
    let body = r.body.unwrap_or_default();
    let bytes = if r.is_base64_encoded {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| InputError::field("body", format!("marked base64 but is not: {e}")))?
    } else {
        body.into_bytes()
    };
    let inner = decode(&bytes).map_err(|e| InputError::field("body", e.to_string()))?;
    let in_body = |e: InputError| match e {
        InputError::Field { field, problem } => InputError::field(format!("body.{field}"), problem),
        other => InputError::field("body", other.to_string()),
    };
    Ok(parse_alertmanager_each(inner)
        .map_err(in_body)?
        .into_iter()
        .map(|r| {
            r.map(|(mut a, _)| {
                // Labels are validated later (routing); their paths start at `body` too.
                if let Some(m) = &mut a.metric {
                    m.field = format!("body.{}", m.field);
                }
                a
            })
            .map_err(in_body)
        })
        .collect())
}

/// At most this many alerts in one webhook payload (a storm is ~1,000).
pub const MAX_ALERTS: usize = 10_000;

/// The envelope of an Alertmanager payload: the alerts stay raw so each
/// is validated on its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AmPayload {
    version: String,
    #[serde(default)]
    status: Option<String>,
    /// Alertmanager's own address, for a silence link (a bad one is left out).
    #[serde(default, rename = "externalURL")]
    external_url: Option<Value>,
    alerts: Vec<Value>,
}

/// One Alertmanager alert, exactly the fields the responder reads. The
/// webhook forwards this (re-serialized), never the request it came in.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The rule's page in Prometheus (kept only if `web_url` accepts it).
    #[serde(
        default,
        rename = "generatorURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
    /// The payload's `externalURL`, carried with each alert so the one
    /// forwarded keeps it (not a field of an Alertmanager alert).
    #[serde(
        default,
        rename = "externalURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_url: Option<String>,
}

/// Parses an Alertmanager webhook payload (version 4) and nothing else.
/// Strict: the first bad alert fails it.
pub fn parse_alertmanager(value: Value) -> Result<Vec<Alert>, InputError> {
    parse_alertmanager_each(value)?
        .into_iter()
        .map(|r| r.map(|(a, _)| a))
        .collect()
}

/// One alert of a batch: the alert and its validated fields, or why not.
pub type AlertResult = Result<(Alert, AmAlert), InputError>;

/// Whose webhook it is: Prometheus's Alertmanager (`"version": "4"`) or
/// Grafana Alerting's (`"version": "1"`: Alertmanager's fields and
/// Grafana's own, `orgId`, `title`, and per alert `values`, `valueString`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Alertmanager,
    Grafana,
}

impl Flavor {
    /// The payload's `version`, as the webhook hands it on.
    pub fn version(self) -> &'static str {
        match self {
            Self::Alertmanager => "4",
            Self::Grafana => "1",
        }
    }
}

/// Grafana's fields of one alert beside Alertmanager's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrafanaAlert {
    #[serde(flatten)]
    alert: AmAlert,
    #[serde(default)]
    values: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    value_string: Option<String>,
}

/// A Grafana alert's value when its rule has no `value` annotation: the one
/// entry of `values` that is not the alert condition's 0/1, else the first
/// such number in `valueString` (`[ var='B' labels={...} value=44.2 ], ...`),
/// else its first number.
pub fn grafana_value(
    values: Option<&BTreeMap<String, f64>>,
    value_string: Option<&str>,
) -> Option<f64> {
    let not_condition = |v: &f64| v.is_finite() && *v != 0.0 && *v != 1.0;
    if let Some(vs) = values {
        let mut candidates = vs.values().filter(|v| not_condition(v));
        if let (Some(v), None) = (candidates.next(), candidates.next()) {
            return Some(*v);
        }
    }
    let numbers: Vec<f64> = value_string?
        .split("value=")
        .skip(1)
        .filter_map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
                .unwrap_or(rest.len());
            rest[..end].parse::<f64>().ok().filter(|v| v.is_finite())
        })
        .collect();
    numbers
        .iter()
        .copied()
        .find(not_condition)
        .or_else(|| numbers.first().copied())
}

/// Parses an Alertmanager payload into one result per alert, each with the
/// validated alert as it may be forwarded. Err: the envelope is unusable.
pub fn parse_alertmanager_each(value: Value) -> Result<Vec<AlertResult>, InputError> {
    Ok(parse_webhook_each(value)?.1)
}

/// [`parse_alertmanager_each`], with whose webhook it was. A Grafana alert
/// is handed on as Alertmanager's fields with its value in the `value`
/// annotation.
pub fn parse_webhook_each(value: Value) -> Result<(Flavor, Vec<AlertResult>), InputError> {
    if !value.is_object() {
        return Err(InputError::Unsupported(format!(
            "expected a JSON object, got {}",
            json_kind(&value)
        )));
    }
    let p: AmPayload = deserialize(value, "")?;
    let external = p
        .external_url
        .as_ref()
        .and_then(Value::as_str)
        .and_then(crate::text::web_url);
    let flavor = match p.version.as_str() {
        "4" => Flavor::Alertmanager,
        "1" => Flavor::Grafana,
        _ => {
            return Err(InputError::field(
                "version",
                format!(
                    "{} is not a webhook payload version this accepts (\"4\": Alertmanager, \"1\": Grafana Alerting)",
                    shown(&p.version)
                ),
            ));
        }
    };
    if let Some(s) = &p.status
        && s != "firing"
        && s != "resolved"
    {
        return Err(InputError::field(
            "status",
            format!("{} is not firing or resolved", shown(s)),
        ));
    }
    if p.alerts.is_empty() {
        return Err(InputError::field("alerts", "no alerts"));
    }
    if p.alerts.len() > MAX_ALERTS {
        return Err(InputError::field(
            "alerts",
            format!(
                "{} alerts, more than the {MAX_ALERTS} accepted",
                p.alerts.len()
            ),
        ));
    }
    let alerts = p
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let at = format!("alerts[{i}]");
            let mut a = match flavor {
                Flavor::Alertmanager => deserialize::<AmAlert>(raw, &at)?,
                Flavor::Grafana => {
                    let g: GrafanaAlert = deserialize(raw, &at)?;
                    let mut a = g.alert;
                    if !a.annotations.contains_key("value")
                        && let Some(v) = grafana_value(g.values.as_ref(), g.value_string.as_deref())
                    {
                        a.annotations.insert("value".into(), v.to_string());
                    }
                    a
                }
            };
            a.generator_url = a.generator_url.as_deref().and_then(crate::text::web_url);
            a.external_url = a
                .external_url
                .as_deref()
                .and_then(crate::text::web_url)
                .or_else(|| external.clone());
            am_alert(i, a.clone(), flavor).map(|alert| (alert, a))
        })
        .collect();
    Ok((flavor, alerts))
}

/// An alert's name as its source spells one: a Prometheus alert name, or a
/// Grafana rule's title (any text, kept short and on one line).
fn check_name(name: &str, flavor: Flavor, field: &str) -> Result<(), InputError> {
    match flavor {
        Flavor::Alertmanager if !is_prometheus_name(name) => {
            return Err(InputError::field(
                field,
                format!(
                    "{} is not a Prometheus alert name ([A-Za-z_:][A-Za-z0-9_:]*)",
                    shown(name)
                ),
            ));
        }
        // A Grafana rule's title: any text, kept short and on one line.
        Flavor::Grafana if !is_grafana_title(name) => {
            return Err(InputError::field(
                field,
                format!(
                    "{} is not a Grafana rule title (1 to 190 characters, no control characters)",
                    shown(name)
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// An annotation that holds a number (`value`, `threshold`: the shipped
/// rules carry both, in the rule's terms); None when it is absent.
fn annotation_number(
    annotations: &BTreeMap<String, String>,
    key: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<f64>, InputError> {
    match annotations.get(key) {
        Some(v) => Ok(Some(
            v.trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    InputError::field(
                        at(&format!("annotations.{key}")),
                        format!("{} is not a number", shown(v)),
                    )
                })?,
        )),
        None => Ok(None),
    }
}

pub(crate) fn am_alert(i: usize, a: AmAlert, flavor: Flavor) -> Result<Alert, InputError> {
    let at = |f: &str| format!("alerts[{i}].{f}");
    let (state, previous_state) = match a.status.as_str() {
        "firing" => (AlarmState::Alarm, None),
        "resolved" => (AlarmState::Ok, Some(AlarmState::Alarm)),
        other => {
            return Err(InputError::field(
                at("status"),
                format!("{} is not firing or resolved", shown(other)),
            ));
        }
    };
    let name = a
        .labels
        .get("alertname")
        .ok_or_else(|| InputError::field(at("labels.alertname"), "missing"))?;
    check_name(name, flavor, &at("labels.alertname"))?;
    if chrono::DateTime::parse_from_rfc3339(&a.starts_at).is_err() {
        return Err(InputError::field(
            at("startsAt"),
            format!("{} is not an RFC 3339 time", shown(&a.starts_at)),
        ));
    }
    let fingerprint = match a.fingerprint {
        Some(f) if !f.is_empty() && f.len() <= 32 && f.bytes().all(|b| b.is_ascii_hexdigit()) => f,
        Some(f) => {
            return Err(InputError::field(
                at("fingerprint"),
                format!("{} is not a hex fingerprint", shown(&f)),
            ));
        }
        None => return Err(InputError::field(at("fingerprint"), "missing")),
    };
    // `value`: the number that fired the rule; `threshold`: the one it is
    // compared with (the shipped rules carry both), in the rule's terms.
    let number = |key: &str| annotation_number(&a.annotations, key, &at);
    let value = number("value")?;
    let threshold = number("threshold")?;
    let reason = a
        .annotations
        .get("description")
        .or_else(|| a.annotations.get("summary"))
        .cloned()
        .unwrap_or_default();
    Ok(Alert {
        source: AlertSource::Alertmanager,
        alarm_name: name.clone(),
        alarm_arn: None,
        state,
        previous_state,
        // A resolution keeps its alert's startsAt: the status makes it its own occurrence.
        occurrence: format!("{fingerprint}\n{}\n{}", a.starts_at, a.status),
        state_timestamp: a.starts_at,
        reason,
        description: a.annotations.get("summary").cloned(),
        metric: Some(MetricRef {
            namespace: match flavor {
                Flavor::Alertmanager => "prometheus",
                Flavor::Grafana => "grafana",
            }
            .into(),
            name: name.clone(),
            dimensions: a.labels.clone(),
            field: at("labels"),
        }),
        alarm_rule: None,
        value,
        threshold,
        // Where it lives, when the rule or the relabelling says so
        // (validated where it is used, `crate::target`).
        region: a.labels.get("region").cloned(),
        account: a.labels.get("account_id").cloned(),
        origin: Origin::Labels,
        tags: a.labels,
        generator_url: a.generator_url,
        external_url: a.external_url,
    })
}

pub(crate) fn is_grafana_title(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 190 && !s.chars().any(char::is_control)
}

pub(crate) fn is_prometheus_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && s.len() <= 200
}
