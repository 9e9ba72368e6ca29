use chrono::TimeZone;

use super::*;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn series(values: &[f64], every_minutes: i64) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            at: at(i as i64 * every_minutes),
            value: *v,
        })
        .collect()
}

#[test]
fn the_sparkline_spans_the_eight_blocks_from_min_to_max() {
    let s = sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 48);
    assert_eq!(s, "▁▂▃▄▅▆▇█");
    assert_eq!(sparkline(&[5.0, 5.0, 5.0], 48), "▁▁▁");
    assert_eq!(sparkline(&[], 48), "");
    // Wider than the page: buckets, each at its highest (the spike stays).
    let mut long = vec![1.0; 200];
    long[101] = 90.0;
    let s = sparkline(&long, 48);
    assert_eq!(s.chars().count(), 48);
    assert_eq!(s.chars().filter(|c| *c == '█').count(), 1, "{s}");
}

#[test]
fn the_breach_starts_at_the_first_point_of_the_last_run_over_the_threshold() {
    let pts = series(&[10.0, 95.0, 20.0, 30.0, 91.0, 97.0, 99.0], 5);
    let c = summarize(
        "AWS/EC2/CPUUtilization".into(),
        300,
        pts.clone(),
        Some(90.0),
        Some(Comparison::GreaterThan),
    )
    .unwrap();
    assert_eq!((c.min, c.max, c.latest), (10.0, 99.0, 99.0));
    assert_eq!(c.breach_started.as_deref(), Some("2026-11-25T00:20:00Z"));
    // Recovered at the end: no breach going on.
    let mut ok = pts;
    ok.push(Point {
        at: at(35),
        value: 50.0,
    });
    let c = summarize(
        "m".into(),
        300,
        ok,
        Some(90.0),
        Some(Comparison::GreaterThan),
    )
    .unwrap();
    assert_eq!(c.breach_started, None);
    assert_eq!(summarize("m".into(), 60, Vec::new(), None, None), None);
}

#[test]
fn points_arrive_in_any_order_and_serialize_as_time_and_value() {
    let mut pts = series(&[1.0, 2.0, 3.0], 1);
    pts.reverse();
    let c = summarize("m".into(), 60, pts, None, None).unwrap();
    assert_eq!(c.latest, 3.0);
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(
        j["datapoints"][0],
        serde_json::json!(["2026-11-25T00:00:00Z", 1.0])
    );
    assert_eq!(j["threshold"], serde_json::Value::Null);
}

#[test]
fn a_disk_rising_two_percent_an_hour_is_forecast_full_when_the_line_says() {
    // 50% at midnight, +2%/h, a datapoint a minute for 3 hours, with noise.
    let pts: Vec<Point> = (0..180)
        .map(|m| Point {
            at: at(m),
            value: 50.0 + 2.0 * m as f64 / 60.0 + if m % 2 == 0 { 0.3 } else { -0.3 },
        })
        .collect();
    let f = forecast(&pts).unwrap();
    assert!((f.percent_per_hour - 2.0).abs() < 0.05, "{f:?}");
    // 50 + 2h = 100 at 25 h after midnight.
    let truth = at(25 * 60);
    let got = f.full_at_time.unwrap();
    assert!((got - truth).num_minutes().abs() < 30, "{got} vs {truth}");
    assert!(
        f.describe(at(180)).contains("full in about 22 h"),
        "{}",
        f.describe(at(180))
    );
}

#[test]
fn a_flat_or_shrinking_disk_is_not_growing() {
    let flat: Vec<Point> = series(&[70.0, 70.1, 69.9, 70.0, 70.05], 15);
    let f = forecast(&flat).unwrap();
    assert_eq!(f.full_at, None);
    assert!(f.describe(at(60)).starts_with("not growing"));
    let down = series(&[80.0, 70.0, 60.0], 30);
    assert_eq!(forecast(&down).unwrap().full_at, None);
    // Too little to fit a line on.
    assert_eq!(forecast(&series(&[1.0, 2.0], 5)), None);
    assert_eq!(forecast(&series(&[1.0, 2.0, 3.0], 1)), None);
}

#[test]
fn a_disk_already_past_full_on_the_line_is_full_now() {
    let pts = series(&[98.0, 99.0, 99.5, 100.0], 10);
    let f = forecast(&pts).unwrap();
    assert_eq!(f.full_at_time, Some(at(30)));
}

#[test]
fn every_known_case_has_its_slope_range_and_steps() {
    for c in super::cases::cases(at(180)) {
        let f = forecast(&c.points).unwrap_or_else(|| panic!("{}: no forecast", c.name));
        assert!(
            (f.percent_per_hour - c.slope).abs() < 0.001,
            "{}: slope {} (expected {})",
            c.name,
            f.percent_per_hour,
            c.slope
        );
        assert!(
            (f.low_percent_per_hour - c.low).abs() < 0.001,
            "{}: low {} (expected {})",
            c.name,
            f.low_percent_per_hour,
            c.low
        );
        assert!(
            f.low_percent_per_hour <= f.percent_per_hour
                && f.percent_per_hour <= f.high_percent_per_hour
        );
        assert_eq!(
            f.steps_excluded.len(),
            c.steps,
            "{}: {:?}",
            c.name,
            f.steps_excluded
        );
        // A date only when the low end grows.
        assert_eq!(
            f.full_at.is_some(),
            c.low >= FLAT_PERCENT_PER_HOUR,
            "{}: {:?}",
            c.name,
            f.full_at
        );
    }
}

#[test]
fn a_step_is_left_out_of_the_rate_and_the_page_says_when() {
    // Flat at 60%, one jump to 96% at 01:30, then flat: not a rate of
    // 12 points an hour (what a least-squares line gives), but no growth.
    let pts: Vec<Point> = (0..36)
        .map(|i| Point {
            at: at(5 * i),
            value: if i < 18 { 60.0 } else { 96.0 },
        })
        .collect();
    let f = forecast(&pts).unwrap();
    assert_eq!(f.percent_per_hour, 0.0);
    assert_eq!(f.full_at, None);
    assert_eq!(f.steps_excluded, vec!["2026-11-25T01:30:00Z".to_owned()]);
    let said = f.describe(at(180));
    assert!(
        said.contains("one sudden rise left out of the rate (at 2026-11-25T01:30:00Z)"),
        "{said}"
    );
    // Growing after the step: the rate after it, projected from where the
    // disk is now (96%), not from the level before the jump.
    let growing: Vec<Point> = (0..36)
        .map(|i| Point {
            at: at(5 * i),
            value: if i < 18 { 60.0 } else { 90.0 } + (5 * i) as f64 / 60.0,
        })
        .collect();
    let f = forecast(&growing).unwrap();
    assert!((f.percent_per_hour - 1.0).abs() < 0.001, "{f:?}");
    // 90 + 175/60 = 92.9% at 02:55; 7.1 points more at 1 an hour: 10:00.
    let full = f.full_at_time.unwrap();
    assert!((full - at(600)).num_minutes().abs() <= 1, "{full}");
}

#[test]
fn a_noisy_series_forecasts_from_the_low_end_of_its_range() {
    let c = super::cases::cases(at(180))
        .into_iter()
        .find(|c| c.name == "noisy")
        .unwrap();
    let f = forecast(&c.points).unwrap();
    assert!(f.high_percent_per_hour > f.percent_per_hour);
    // The date from the low end is later than the slope's own would be.
    let said = f.describe(at(180));
    assert!(said.contains("at least 1.33"), "{said}");
    let clean = super::cases::cases(at(180))
        .into_iter()
        .find(|c| c.name == "steady")
        .unwrap();
    assert!(f.full_at_time.unwrap() > forecast(&clean.points).unwrap().full_at_time.unwrap());
    // Too noisy to forecast at all: the slope grows, its low end does not.
    let wild: Vec<Point> = (0..12)
        .map(|i| Point {
            at: at(15 * i),
            value: 60.0 + 0.5 * i as f64 + if i % 2 == 0 { 4.0 } else { -4.0 },
        })
        .collect();
    let f = forecast(&wild).unwrap();
    assert!(f.percent_per_hour >= FLAT_PERCENT_PER_HOUR, "{f:?}");
    assert_eq!(f.full_at, None, "{f:?}");
    assert!(
        f.describe(at(180)).starts_with("not growing steadily"),
        "{}",
        f.describe(at(180))
    );
}
