use super::*;
use crate::series::Limit;
use crate::series::evaluation::{BandSide, TreatMissing};
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

#[test]
fn query_ids_follow_cloudwatchs_rule() {
    assert!(valid_id("m0"));
    assert!(valid_id("e1_total"));
    assert!(!valid_id("M0"));
    assert!(!valid_id("0m"));
    assert!(!valid_id(""));
    assert!(!valid_id("m0; drop"));
}

#[test]
fn a_single_metric_alarm_asks_for_its_own_metric_stat_and_period() {
    let a = MetricAlarm::builder()
        .alarm_name("cpu")
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(Dimension::builder().name("InstanceId").value("i-1").build())
        .period(60)
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .threshold(90.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .build();
    let q = from_alarm(&a).unwrap();
    assert_eq!(q.label, "AWS/EC2/CPUUtilization");
    assert_eq!(q.period, 60);
    assert_eq!(q.threshold, Some(90.0));
    assert_eq!(q.comparison, Some(Comparison::GreaterThan));
    let stat = q.queries[0].metric_stat().unwrap();
    assert_eq!(stat.stat(), Some("Maximum"));
    assert_eq!(stat.metric().unwrap().dimensions()[0].value(), Some("i-1"));
}

#[test]
fn a_metric_math_alarm_keeps_its_queries_and_refuses_a_bad_id() {
    let input = |id: &str| {
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("CWAgent")
                            .metric_name("x")
                            .build(),
                    )
                    .period(120)
                    .stat("Sum")
                    .build(),
            )
            .return_data(false)
            .build()
    };
    let expr = MetricDataQuery::builder()
        .id("e1")
        .expression("m1 / m2 * 100")
        .return_data(true)
        .build();
    let a = MetricAlarm::builder()
        .metrics(input("m1"))
        .metrics(input("m2"))
        .metrics(expr.clone())
        .build();
    let q = from_alarm(&a).unwrap();
    assert_eq!(
        (q.returned.as_str(), q.label.as_str(), q.period),
        ("e1", "m1 / m2 * 100", 120)
    );
    let bad = MetricAlarm::builder()
        .metrics(input("Bad-Id"))
        .metrics(expr)
        .build();
    assert!(from_alarm(&bad).unwrap_err().contains("\"Bad-Id\""));
}

#[test]
fn an_anomaly_alarm_watches_its_metric_not_its_band() {
    let m1 = MetricDataQuery::builder()
        .id("m1")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/EC2")
                        .metric_name("CPUUtilization")
                        .build(),
                )
                .period(300)
                .stat("Average")
                .build(),
        )
        .return_data(true)
        .build();
    // The band is listed last, as in the shipped sample.
    let band = MetricDataQuery::builder()
        .id("ad1")
        .expression("ANOMALY_DETECTION_BAND(m1, 2)")
        .return_data(true)
        .build();
    let a = MetricAlarm::builder()
        .metrics(m1)
        .metrics(band)
        .threshold_metric_id("ad1")
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .treat_missing_data("breaching")
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold,
        )
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason_data(
            r#"{"startDate":"2026-11-25T01:49:00.000+0000","recentDatapoints":[50.0,80.0,96.4],"recentLowerThresholds":[1.0,2.0,12.0],"recentUpperThresholds":[70.0,70.5,71.2]}"#,
        )
        .build();
    let q = from_alarm(&a).unwrap();
    assert_eq!(
        (q.returned.as_str(), q.label.as_str()),
        ("m1", "AWS/EC2/CPUUtilization")
    );
    let returns: Vec<_> = q
        .queries
        .iter()
        .map(|x| (x.id().unwrap_or_default(), x.return_data()))
        .collect();
    assert_eq!(returns, [("m1", Some(true)), ("ad1", Some(false))]);
    let j = q.judge.as_ref().unwrap();
    assert_eq!(
        (j.periods, j.to_alarm, j.missing),
        (3, 2, TreatMissing::Breaching)
    );
    let end = j.end(300, Utc::now());
    assert_eq!(crate::series::rfc3339(end), "2026-11-25T02:04:00Z");
    match j.limit(&q) {
        Some(Limit::Band(b, BandSide::Outside)) => assert_eq!((b.lower, b.upper), (12.0, 71.2)),
        other => panic!("{other:?}"),
    }
}
