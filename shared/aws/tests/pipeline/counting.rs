//! Requests sent, counted by service and operation at every client's interceptor, and the
//! table they are printed as.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Requests sent, by `"<service> <operation>"`, every attempt counted. One `RequestCounts` is
/// shared by the interceptors of several clients.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestCounts(Arc<Mutex<BTreeMap<String, u32>>>);

impl RequestCounts {
    pub(crate) fn interceptor(&self, service: &'static str) -> CountRequests {
        CountRequests { service, counts: self.clone() }
    }

    pub(crate) fn take(&self) -> BTreeMap<String, u32> {
        self.0.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CountRequests {
    service: &'static str,
    counts: RequestCounts,
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // The JSON protocols (DynamoDB, SQS, EventBridge) name the operation in X-Amz-Target;
        // SES v2 is a REST API, named by method and path.
        let operation = match request.headers().get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => rest_operation(request.method(), request.uri()),
        };
        if let Ok(mut counts) = self.counts.0.lock() {
            *counts.entry(format!("{} {operation}", self.service)).or_insert(0) += 1;
        }
        Ok(())
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
