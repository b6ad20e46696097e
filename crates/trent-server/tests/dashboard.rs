//! The Grafana dashboard in deploy/grafana asks only for metrics the server exports.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use trent_audit::{LATENCY_BUCKETS, StatsSnapshot};
use trent_kms::inventory::Inventory;
use trent_server::{Metrics, Scrape};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/grafana/trent-dashboard.json"
);

/// Metric family name -> type, from the `# TYPE` lines of a render with every family present.
fn exported_families() -> BTreeMap<String, String> {
    let m = Metrics::new();
    m.observe_request("Encrypt", None, 200, Duration::from_millis(2));
    m.observe_key_use("arn:aws:kms:us-east-1:111122223333:key/k", "Encrypt");
    m.observe_throttled("CreateKey", "CreateKey");
    let scrape = Scrape {
        keys: Inventory {
            keys_by_state_and_spec: vec![(("Enabled".into(), "SYMMETRIC_DEFAULT".into()), 1)],
            imported_expiries: vec![(
                "arn:aws:kms:us-east-1:111122223333:key/k".into(),
                "ab".repeat(32),
                3600.0,
            )],
            ..Inventory::default()
        },
        audit: Some(StatsSnapshot {
            healthy: true,
            queue_depth: 0,
            records: 1,
            batches: 1,
            failed_batches: 0,
            latency_cumulative: vec![1; LATENCY_BUCKETS.len() + 1],
            latency_sum_seconds: 0.00005,
            socket: Some(trent_audit::SocketSnapshot {
                connected: true,
                sent: 1,
                dropped: 0,
            }),
            pruned: trent_audit::PrunedSnapshot {
                files: 1,
                bytes: 1,
                failures: 1,
            },
        }),
    };
    let text = m.render(&scrape);
    let families: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_string(), kind.to_string())
        })
        .collect();
    // Each family has samples in that render, so the dashboard would get data.
    for name in families.keys() {
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name.as_str())),
            "{name} has no samples"
        );
    }
    families
}

/// The metric names a PromQL expression uses: identifiers starting with `trent_`, outside
/// quoted strings.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                // Skip the string, escapes included.
                while let Some((_, d)) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let ident = &expr[i..end];
                if ident.starts_with("trent_") {
                    names.push(ident.to_string());
                }
            }
            // A number (1e3, 0.99) or a duration (5m): its letters are not an identifier.
            c if c.is_ascii_digit() => {
                while chars
                    .peek()
                    .is_some_and(|(_, d)| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    names
}

/// Whether `name` is an exported family, or a histogram's `_bucket`, `_sum` or `_count` series.
fn is_exported(families: &BTreeMap<String, String>, name: &str) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|family| families.get(family).is_some_and(|t| t == "histogram"))
        })
}

/// Every panel, rows' collapsed panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn load() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_name_scanner_finds_metrics_and_skips_strings_and_numbers() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(trent_x_bucket{job="trent_job",a!~'trent_y'}[5m]))) / trent_z"#
        ),
        ["trent_x_bucket", "trent_z"]
    );
    assert_eq!(metric_names("not_trent_a + 1e3"), Vec::<String>::new());
    let families = exported_families();
    assert!(is_exported(
        &families,
        "trent_request_duration_seconds_bucket"
    ));
    assert!(is_exported(&families, "trent_requests_total"));
    assert!(!is_exported(&families, "trent_requests_total_bucket"));
    assert!(!is_exported(&families, "trent_no_such_metric"));
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let dashboard = load();
    let families = exported_families();
    let mut used = BTreeMap::<String, Vec<String>>::new();
    let mut exprs = 0;
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?").to_string();
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?} has a target without expr"));
            exprs += 1;
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {title:?}: {expr} names no trent metric"
            );
            for name in names {
                used.entry(name).or_default().push(title.clone());
            }
        }
    }
    // Template variables query metrics too.
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &var["query"] {
            Value::String(q) => q.clone(),
            Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or("").into(),
            _ => String::new(),
        };
        for name in metric_names(&query) {
            used.entry(name)
                .or_default()
                .push(format!("variable {}", var["name"]));
        }
    }
    assert!(exprs >= 10, "only {exprs} queries");
    let missing: Vec<_> = used
        .iter()
        .filter(|(name, _)| !is_exported(&families, name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses metrics the server does not export: {missing:?}\nexported: {:?}",
        families.keys().collect::<Vec<_>>()
    );
    // And it plots every family there is.
    let plotted: Vec<&str> = families
        .iter()
        .filter(|(family, _)| {
            used.keys().any(|name| {
                name == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(family.as_str()))
            })
        })
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(
        plotted,
        families.keys().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn panels_use_the_prometheus_datasource_variable() {
    let dashboard = load();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "DS_PROMETHEUS"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let mut ids = Vec::new();
    for panel in panels(&dashboard) {
        ids.push(panel["id"].as_u64().unwrap());
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{panel}");
        for t in panel["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{t}");
        }
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids repeat");
}
