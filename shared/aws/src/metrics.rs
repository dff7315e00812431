//! What the handlers count (`leadflow_app::metrics`), published as CloudWatch metrics through
//! the Embedded Metric Format: one JSON line on stdout per invocation, which CloudWatch Logs
//! turns into metric data points in the namespace the template gives ([`NAMESPACE_VAR`]). No
//! `PutMetricData` call, so no extra latency, permission or failure mode in the invocation.
//!
//! The line is written bare, not through `tracing`: its JSON formatter would nest the members,
//! and EMF wants them at the top level. Lambda keeps a line that is JSON as it is.
//!
//! No dimensions (`"Dimensions": [[]]`): a metric's total over every function is what the alarms
//! and the dashboard read, and each dimension value would be a metric of its own to pay for. The
//! template's alarms therefore name no dimensions either (shared/aws/tests/metrics_template.rs).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use lambda_runtime::tower::Service;
use leadflow_app::metrics::{Counts, Metric, counted};
use serde_json::{Map, Value, json};
use tracing::warn;

pub use crate::env::METRICS_NAMESPACE as NAMESPACE_VAR;

/// Every metric is a count of things done.
pub const UNIT: &str = "Count";

/// The dimension sets every line declares: one set, empty.
pub const DIMENSIONS: [&[&str]; 1] = [&[]];

/// Where an invocation's counts go: the namespace, or nowhere when the function was given none.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: Option<Arc<str>>,
}

impl Emf {
    pub fn new(namespace: &str) -> Self {
        let namespace = namespace.trim();
        Self { namespace: (!namespace.is_empty()).then(|| Arc::from(namespace)) }
    }

    /// Writes nothing: the local stack and tests.
    pub fn off() -> Self {
        Self { namespace: None }
    }

    /// The namespace from [`NAMESPACE_VAR`]. Without it the function runs but publishes no
    /// metrics (said once, at start): a lead must not wait for a dashboard.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Emf::from_env`] reading through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        match lookup(NAMESPACE_VAR).filter(|n| !n.trim().is_empty()) {
            Some(namespace) => Self::new(&namespace),
            None => {
                warn!(var = NAMESPACE_VAR, "no metrics namespace: this function publishes no metrics");
                Self::off()
            }
        }
    }

    /// Runs `work` counting what it does, then writes the counts' line to stdout (none when
    /// nothing was counted or there is no namespace).
    pub async fn metered<F: Future>(&self, work: F) -> F::Output {
        let (output, counts) = counted(work).await;
        if let Some(line) = self.line(&counts, Utc::now()) {
            let mut out = std::io::stdout().lock();
            // One write of the whole line, so no other log line lands inside it. A failing
            // stdout fails the logs too; there is nowhere to say so.
            let _ = out.write_all(format!("{line}\n").as_bytes()).and_then(|()| out.flush());
        }
        output
    }

    /// The EMF line of `counts` at `at`, or none when nothing was counted.
    pub fn line(&self, counts: &Counts, at: DateTime<Utc>) -> Option<String> {
        let namespace = self.namespace.as_deref()?;
        let counted = counts.nonzero();
        (!counted.is_empty()).then(|| document(namespace, &counted, at).to_string())
    }
}

/// The EMF document for `counted` (no more than 100 metrics, which [`Metric::ALL`] is far from).
pub fn document(namespace: &str, counted: &[(Metric, u64)], at: DateTime<Utc>) -> Value {
    let definitions: Vec<Value> = counted.iter().map(|(m, _)| json!({ "Name": m.name(), "Unit": UNIT })).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": DIMENSIONS,
                "Metrics": definitions,
            }],
        }),
    );
    for (metric, n) in counted {
        root.insert(metric.name().into(), json!(n));
    }
    Value::Object(root)
}

/// A service (an HTTP function's router) whose every call is [`Emf::metered`].
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    emf: Emf,
}

impl<S> Metered<S> {
    pub fn new(inner: S, emf: Emf) -> Self {
        Self { inner, emf }
    }
}

impl<S, R> Service<R> for Metered<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let emf = self.emf.clone();
        let call = self.inner.call(request);
        Box::pin(async move { emf.metered(call).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_app::metrics::count;

    async fn counts_of(work: impl Future<Output = ()>) -> Arc<Counts> {
        counted(work).await.1
    }

    /// The line checked against the EMF specification's document structure.
    fn assert_valid_emf(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line");
        let doc: Value = serde_json::from_str(line).expect("a JSON object with nothing around it");
        let root = doc.as_object().expect("the root is an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        let at = aws["Timestamp"].as_i64().expect("Timestamp: an integer");
        assert!(at > 1_500_000_000_000, "Timestamp in milliseconds since the epoch: {at}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics: an array");
        assert!(!directives.is_empty());
        for d in directives {
            let namespace = d["Namespace"].as_str().expect("Namespace: a string");
            assert!((1..=255).contains(&namespace.len()), "{namespace}");
            let sets = d["Dimensions"].as_array().expect("Dimensions: an array of sets");
            assert!(!sets.is_empty(), "at least one dimension set");
            for set in sets {
                let keys = set.as_array().expect("a dimension set is an array");
                assert!(keys.len() <= 9);
                for k in keys {
                    let k = k.as_str().expect("dimension keys are strings");
                    assert!(root.get(k).is_some_and(Value::is_string), "dimension {k}: a top-level string");
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics: an array");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("Name: a string");
                assert!(root.get(name).is_some_and(Value::is_number), "{name}: a numeric top-level member");
                assert_eq!(m["Unit"], UNIT, "{name}: a CloudWatch unit");
            }
        }
        doc
    }

    #[tokio::test]
    async fn a_line_is_an_emf_document_with_each_count_at_the_top_level_in_the_given_namespace() {
        let counts = counts_of(async {
            count(Metric::LeadsCaptured, 2);
            count(Metric::EmailsRejected, 1);
            count(Metric::LeadsCaptured, 1);
        })
        .await;
        let emf = Emf::from_lookup(|name| (name == NAMESPACE_VAR).then(|| "Leadflow/prod".to_string()));
        let at = Utc::now();
        let line = emf.line(&counts, at).expect("a line");
        let doc = assert_valid_emf(&line);
        assert_eq!(doc["_aws"]["Timestamp"], at.timestamp_millis());
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Leadflow/prod");
        assert_eq!(d["Dimensions"], json!([[]]));
        let names: Vec<&str> =
            d["Metrics"].as_array().into_iter().flatten().filter_map(|m| m["Name"].as_str()).collect();
        assert_eq!(names, ["LeadsCaptured", "EmailsRejected"], "only what was counted");
        assert_eq!((doc["LeadsCaptured"].as_u64(), doc["EmailsRejected"].as_u64()), (Some(3), Some(1)));
        assert_eq!(doc.as_object().map(|o| o.len()), Some(3), "_aws and the two counts, nothing else");

        // Every metric at once stays one valid document.
        let all = counts_of(async {
            for m in Metric::ALL {
                count(m, 1);
            }
        })
        .await;
        let doc = assert_valid_emf(&emf.line(&all, at).expect("a line"));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().map(Vec::len), Some(Metric::ALL.len()));
    }

    #[tokio::test]
    async fn metered_work_gives_its_output_back() {
        let emf = Emf::off();
        assert_eq!(
            emf.metered(async {
                count(Metric::OptOuts, 1);
                7
            })
            .await,
            7
        );
    }

    #[tokio::test]
    async fn nothing_counted_or_no_namespace_writes_no_line() {
        let some = counts_of(async { count(Metric::OptOuts, 1) }).await;
        assert!(Emf::from_lookup(|_| None).line(&some, Utc::now()).is_none());
        let none = counts_of(async {}).await;
        assert_eq!(Emf::new("Leadflow/prod").line(&none, Utc::now()), None);
        let some = counts_of(async { count(Metric::LeadsCaptured, 1) }).await;
        assert_eq!(Emf::off().line(&some, Utc::now()), None);
        assert_eq!(Emf::new("  ").line(&some, Utc::now()), None);
        assert!(Emf::new("Leadflow/prod").line(&some, Utc::now()).is_some());
    }
}
