//! Requests sent, counted by service and operation at every client's interceptor, and the
//! table they are printed as.

use std::collections::BTreeMap;

use crate::common::{Recorder, target_operation};

/// Requests sent, by `"<service> <operation>"`, every attempt counted. One `RequestCounts` is
/// shared by the interceptors of several clients.
#[derive(Debug, Clone)]
pub(crate) struct RequestCounts(Recorder<String>);

impl Default for RequestCounts {
    fn default() -> Self {
        Self(Recorder::new(|_| None))
    }
}

impl RequestCounts {
    /// The interceptor for `service`'s client. The JSON protocols (DynamoDB, SQS, EventBridge)
    /// name the operation in X-Amz-Target; SES v2 is a REST API, named by method and path.
    pub(crate) fn interceptor(&self, service: &'static str) -> Recorder<String> {
        self.0.reading(move |request| {
            let operation =
                target_operation(request).unwrap_or_else(|| rest_operation(request.method(), request.uri()));
            // The Query of the documents applied through the admin API refreshes the
            // configuration once per cache period (30 s), not per lead: apart, so that a count
            // does not depend on how long a run took.
            let body = request.body().bytes().unwrap_or_default();
            let refresh = operation == "Query" && String::from_utf8_lossy(body).contains(r#"{"S":"DOCS"}"#);
            Some(if refresh {
                format!("{service} {operation} (configuration)")
            } else {
                format!("{service} {operation}")
            })
        })
    }

    pub(crate) fn take(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for request in self.0.take() {
            *counts.entry(request).or_insert(0) += 1;
        }
        counts
    }
}

fn rest_operation(method: &str, uri: &str) -> String {
    let path = uri.split('?').next().unwrap_or(uri);
    let path = path.find("/v2/").map_or(path, |i| &path[i..]);
    match (method, path) {
        ("POST", "/v2/email/outbound-emails") => "SendEmail".to_string(),
        _ => format!("{method} {path}"),
    }
}

pub(crate) fn total(counts: &BTreeMap<String, u32>) -> u32 {
    counts.values().sum()
}

/// Operations down, `columns` across (each a step's counts), with a total column and row.
pub(crate) fn table_of(title: &str, columns: &[(&str, BTreeMap<String, u32>)]) -> String {
    let operations: std::collections::BTreeSet<&String> = columns.iter().flat_map(|(_, c)| c.keys()).collect();
    let mut out = format!("{title}\n  {:<30}", "operation");
    for (name, _) in columns {
        out.push_str(&format!(" {name:>9}"));
    }
    out.push_str(&format!(" {:>9}\n", "total"));
    let mut row = |label: &str, n: &dyn Fn(&BTreeMap<String, u32>) -> u32| {
        out.push_str(&format!("  {label:<30}"));
        for (_, counts) in columns {
            out.push_str(&format!(" {:>9}", n(counts)));
        }
        out.push_str(&format!(" {:>9}\n", columns.iter().map(|(_, c)| n(c)).sum::<u32>()));
    };
    for operation in operations {
        row(operation, &|c| c.get(operation).copied().unwrap_or(0));
    }
    row("total", &|c| total(c));
    out
}
