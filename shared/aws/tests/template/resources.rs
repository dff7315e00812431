//! `template.yaml` as the tests read it: its resources by type, and what a function is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::yaml::{binary_of, events, get_att, int, intrinsic, prop, seq, sqs_events};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) struct Template {
    pub(crate) doc: Value,
}

impl Template {
    pub(crate) fn load() -> Self {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Template { doc: serde_yaml_ng::from_str(&text).expect("template.yaml is YAML") }
    }

    pub(crate) fn resources(&self) -> &Mapping {
        self.doc.get("Resources").and_then(Value::as_mapping).expect("Resources")
    }

    pub(crate) fn resource(&self, id: &str) -> &Value {
        self.resources().get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    pub(crate) fn type_of(&self, id: &str) -> Option<&str> {
        self.resources().get(id)?.get("Type")?.as_str()
    }

    pub(crate) fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.resources()
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().expect("resource ids are strings").to_string(), r))
            .collect()
    }

    pub(crate) fn functions(&self) -> Vec<(String, &Value)> {
        self.of_type("AWS::Serverless::Function")
    }

    /// A function's setting, from the function or else from `Globals.Function`.
    pub(crate) fn function_setting<'a>(&'a self, function: &'a Value, key: &str) -> Option<&'a Value> {
        prop(function, key).or_else(|| self.doc.get("Globals")?.get("Function")?.get(key))
    }

    pub(crate) fn timeout(&self, function: &Value) -> u64 {
        // SAM's default when neither the function nor Globals says.
        self.function_setting(function, "Timeout").map(|t| int(t, "Timeout")).unwrap_or(3)
    }

    /// The function whose binary is `binary`.
    pub(crate) fn function(&self, binary: &str) -> (String, &Value) {
        self.functions()
            .into_iter()
            .find(|(_, f)| binary_of(f) == Some(binary))
            .unwrap_or_else(|| panic!("no function builds binary {binary}"))
    }

    /// A function's IAM statements: inline `Policies` statements, or those of its own `Role`.
    pub(crate) fn statements<'a>(&'a self, function: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if let Some(Value::Sequence(policies)) = prop(function, "Policies") {
            for p in policies {
                out.extend(seq(p.get("Statement")));
            }
        }
        if let Some((role, "Arn")) = prop(function, "Role").and_then(get_att)
            && let Some(Value::Sequence(policies)) = prop(self.resource(&role), "Policies")
        {
            for p in policies {
                out.extend(seq(p.get("PolicyDocument").and_then(|d| d.get("Statement"))));
            }
        }
        out
    }

    /// The resources on which a function is allowed `action`.
    pub(crate) fn allowed(&self, function: &Value, action: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for s in self.statements(function) {
            assert_eq!(s.get("Effect").and_then(Value::as_str), Some("Allow"), "only Allow statements are expected");
            let actions: Vec<&str> = seq(s.get("Action")).into_iter().filter_map(Value::as_str).collect();
            if actions.contains(&action) {
                out.extend(seq(s.get("Resource")).into_iter().cloned());
            }
        }
        out
    }

    /// The SQS queues consumed by functions: queue logical id → (function id, function).
    pub(crate) fn consumed_queues(&self) -> BTreeMap<String, (String, &Value)> {
        let mut out = BTreeMap::new();
        for (id, f) in self.functions() {
            for event in sqs_events(f) {
                let queue = prop(event, "Queue").and_then(get_att);
                let Some((queue, attr)) = queue else { panic!("{id}: an SQS event's Queue is not a !GetAtt") };
                assert_eq!(attr, "Arn", "{id}: an SQS event's Queue must be the queue's Arn");
                assert_eq!(self.type_of(&queue), Some("AWS::SQS::Queue"), "{id}: {queue} is not an SQS queue");
                assert!(out.insert(queue.clone(), (id.clone(), f)).is_none(), "{queue} has two consumers");
            }
        }
        out
    }

    /// Every dead-letter queue: redrive targets and the schedules' DLQs.
    pub(crate) fn dead_letter_queues(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, q) in self.of_type("AWS::SQS::Queue") {
            if let Some(target) = prop(q, "RedrivePolicy").and_then(|r| r.get("deadLetterTargetArn")) {
                out.insert(get_att(target).expect("deadLetterTargetArn is a !GetAtt").0);
            }
        }
        for (_, f) in self.functions() {
            for event in events(f, &["ScheduleV2", "Schedule", "EventBridgeRule"]) {
                if let Some(arn) = prop(event, "DeadLetterConfig").and_then(|d| d.get("Arn")) {
                    out.insert(get_att(arn).expect("an event source's DLQ Arn is a !GetAtt").0);
                }
            }
            let on_failure = prop(f, "EventInvokeConfig")
                .and_then(|c| c.get("DestinationConfig"))
                .and_then(|d| d.get("OnFailure"))
                .filter(|o| o.get("Type").and_then(Value::as_str) == Some("SQS"));
            if let Some(destination) = on_failure.and_then(|o| o.get("Destination")) {
                out.insert(get_att(destination).expect("an OnFailure destination is a !GetAtt").0);
            }
        }
        out
    }

    /// The HTTP API: the one `AWS::ApiGatewayV2::Api`.
    pub(crate) fn api(&self) -> (String, &Value) {
        let apis = self.of_type("AWS::ApiGatewayV2::Api");
        let [(id, api)] = apis.as_slice() else { panic!("one AWS::ApiGatewayV2::Api: {apis:?}") };
        (id.clone(), *api)
    }

    /// The function an integration invokes, by logical id.
    pub(crate) fn integrated_function(&self, integration: &str) -> String {
        let i = self.resource(integration);
        let uri = prop(i, "IntegrationUri").and_then(get_att);
        let Some((function, "Arn")) = uri else {
            panic!("{integration}: IntegrationUri is not a function's !GetAtt Arn")
        };
        assert_eq!(self.type_of(&function), Some("AWS::Serverless::Function"), "{integration} invokes {function}");
        function
    }

    /// Every HTTP route: (function binary, method, path, the route's AuthorizationType).
    pub(crate) fn routes(&self) -> Vec<(String, String, String, Option<String>)> {
        let mut out = Vec::new();
        for (id, r) in self.of_type("AWS::ApiGatewayV2::Route") {
            let key = prop(r, "RouteKey").and_then(Value::as_str).unwrap_or_else(|| panic!("{id}: RouteKey"));
            let (method, path) = key.split_once(' ').unwrap_or_else(|| panic!("{id}: RouteKey {key:?}"));
            let target = prop(r, "Target").and_then(intrinsic).and_then(|(_, v)| v.as_str().map(str::to_string));
            let integration = target
                .as_deref()
                .and_then(|t| t.strip_prefix("integrations/${"))
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{id}: Target is not !Sub \"integrations/${{Integration}}\""))
                .to_string();
            let function = self.integrated_function(&integration);
            let binary = binary_of(self.resource(&function)).unwrap_or_else(|| panic!("{function} has no binary"));
            let auth = prop(r, "AuthorizationType").and_then(Value::as_str).map(str::to_string);
            out.push((binary.to_string(), method.to_string(), path.to_string(), auth));
        }
        out.sort();
        out
    }
}

/// The one resource of a type, by logical id.
pub(crate) fn only<'a>(t: &'a Template, ty: &str) -> (String, &'a Value) {
    let mut found = t.of_type(ty);
    assert_eq!(found.len(), 1, "one {ty}: {:?}", found.iter().map(|(id, _)| id).collect::<Vec<_>>());
    found.remove(0)
}
