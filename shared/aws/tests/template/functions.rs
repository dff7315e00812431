//! The functions: built from the workspace's binaries, given the environment `env.rs` defines,
//! allowed exactly what their work needs, logging with a retention.

use std::collections::BTreeSet;

use serde_yaml_ng::{Mapping, Value};

use crate::resources::{Template, repo_root};
use crate::yaml::{binary_of, get_att, intrinsic, prop, ref_of, seq};

/// The variable names `shared/aws/src/env.rs` defines: the functions read nothing else.
fn env_contract() -> BTreeSet<String> {
    let path = repo_root().join("shared/aws/src/env.rs");
    let text = std::fs::read_to_string(&path).expect("env.rs");
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": &str ="))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(names.contains("LEADFLOW_TABLE"), "env.rs parsed to {names:?}");
    names
}

/// `[[bin]]` names of the AWS package, where every Lambda entry point is.
fn function_binaries() -> BTreeSet<String> {
    let manifest = repo_root().join("shared/aws/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("shared/aws/Cargo.toml");
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut bins = BTreeSet::new();
    if let Some(toml::Value::Array(list)) = doc.get("bin") {
        bins.extend(list.iter().filter_map(|b| b.get("name")?.as_str().map(str::to_string)));
    }
    bins
}

#[test]
fn functions_are_workspace_binaries_built_by_cargo_lambda() {
    let t = Template::load();
    let bins = function_binaries();
    assert!(!bins.is_empty(), "no [[bin]] in shared/aws/Cargo.toml");
    let mut built = Vec::new();
    for (id, f) in t.functions() {
        let metadata = f.get("Metadata").unwrap_or_else(|| panic!("{id} has no Metadata"));
        assert_eq!(metadata.get("BuildMethod").and_then(Value::as_str), Some("rust-cargolambda"), "{id}");
        let binary = binary_of(f).unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"));
        assert!(bins.contains(binary), "{id} builds {binary}, which is not a [[bin]] of shared/aws: {bins:?}");
        // cargo-lambda builds from the workspace root, where Cargo.lock and the profile are.
        assert_eq!(prop(f, "CodeUri").and_then(Value::as_str), Some("."), "{id}: CodeUri");
        let setting = |key| t.function_setting(f, key).and_then(Value::as_str).map(str::to_string);
        assert_eq!(setting("Runtime").as_deref(), Some("provided.al2023"), "{id}");
        assert_eq!(setting("Handler").as_deref(), Some("bootstrap"), "{id}");
        let arch: Vec<&str> =
            seq(t.function_setting(f, "Architectures")).into_iter().filter_map(Value::as_str).collect();
        assert_eq!(arch, ["arm64"], "{id}: cargo lambda build --arm64");
        built.push(binary.to_string());
    }
    built.sort();
    assert_eq!(built, ["admin", "capture", "nurture", "route", "score", "ses-events", "unsubscribe", "validate"]);
}

#[test]
fn environment_is_the_contract_in_env_rs_and_matches_each_functions_permissions() {
    let t = Template::load();
    let contract = env_contract();
    let table = {
        let tables = t.of_type("AWS::DynamoDB::Table");
        assert_eq!(tables.len(), 1, "one table");
        tables[0].0.clone()
    };
    let consumed = t.consumed_queues();
    let stage_queue = |stage: &str| {
        consumed
            .iter()
            .find(|(_, (_, f))| binary_of(f) == Some(stage))
            .map(|(q, _)| q.clone())
            .unwrap_or_else(|| panic!("no queue consumed by {stage}"))
    };
    let arn_of = |v: &Value| get_att(v).filter(|(_, a)| *a == "Arn").map(|(r, _)| r);

    for (id, f) in t.functions() {
        let vars: Mapping = t
            .function_setting(f, "Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let names: BTreeSet<&str> = vars.keys().filter_map(Value::as_str).collect();
        for name in &names {
            assert!(contract.contains(*name), "{id} sets {name}, which shared/aws/src/env.rs does not define");
        }

        let dynamodb = t.allowed(f, "dynamodb:GetItem");
        if dynamodb.iter().any(|r| arn_of(r).as_deref() == Some(table.as_str())) {
            assert_eq!(vars.get("LEADFLOW_TABLE").and_then(ref_of), Some(table.as_str()), "{id}: LEADFLOW_TABLE");
        }
        if names.contains("LEADFLOW_TABLE") {
            assert!(!dynamodb.is_empty(), "{id} is given the table but may not read it");
        }

        // A queue URL variable is the queue its stage's function consumes, and the function may
        // send to it and to no other queue.
        let sends: BTreeSet<String> = t.allowed(f, "sqs:SendMessage").iter().filter_map(arn_of).collect();
        let mut url_vars = BTreeSet::new();
        for stage in ["validate", "score", "route"] {
            let var = format!("LEADFLOW_{}_QUEUE_URL", stage.to_uppercase());
            if let Some(value) = vars.get(var.as_str()) {
                let queue = stage_queue(stage);
                assert_eq!(get_att(value), Some((queue.clone(), "QueueUrl")), "{id}: {var}");
                url_vars.insert(queue);
            }
            // A DLQ's URL (admin: dead letters) is that stage queue's DLQ; its redrive, an SQS
            // move task, sends each message back to the stage queue.
            let dlq_var = format!("LEADFLOW_{}_DLQ_URL", stage.to_uppercase());
            if let Some(value) = vars.get(dlq_var.as_str()) {
                let queue = stage_queue(stage);
                assert_eq!(get_att(value), Some((queue.replace("Queue", "DLQ"), "QueueUrl")), "{id}: {dlq_var}");
                url_vars.insert(queue);
            }
        }
        assert_eq!(sends, url_vars, "{id}: sqs:SendMessage exactly on the queues whose URLs it is given");

        let mails = !t.allowed(f, "ses:SendEmail").is_empty();
        for var in ["LEADFLOW_SES_CONFIGURATION_SET", "LEADFLOW_SENDER"] {
            assert_eq!(names.contains(var), mails, "{id}: {var} goes with ses:SendEmail");
        }
        let publishes = !t.allowed(f, "events:PutEvents").is_empty();
        assert_eq!(
            names.contains("LEADFLOW_EVENT_BUS"),
            publishes,
            "{id}: LEADFLOW_EVENT_BUS goes with events:PutEvents"
        );

        // The signing keys go to the functions that sign or verify unsubscribe links, the
        // assignment email's one-click actions or console sessions, and only there: the name of
        // the secret in the environment, the keys themselves read with its one permission.
        let signs = matches!(binary_of(f), Some("route" | "nurture" | "unsubscribe" | "admin"));
        assert!(!names.contains("LEADFLOW_UNSUBSCRIBE_SECRET"), "{id}: no secret in the environment");
        assert_eq!(names.contains("LEADFLOW_SIGNING_KEYS_SECRET"), signs, "{id}: LEADFLOW_SIGNING_KEYS_SECRET");
        let reads = t.allowed(f, "secretsmanager:GetSecretValue");
        if let Some(secret) = vars.get("LEADFLOW_SIGNING_KEYS_SECRET") {
            assert_eq!(ref_of(secret), Some("SigningKeys"), "{id}: the secret is the stack's own");
            let refs: Vec<Option<&str>> = reads.iter().map(ref_of).collect();
            assert_eq!(refs, [Some("SigningKeys")], "{id}: reads only that secret");
        } else {
            assert!(reads.is_empty(), "{id}: reads no secret: {reads:?}");
        }
    }
}

#[test]
fn the_functions_send_to_the_queues_their_work_needs() {
    let t = Template::load();
    let sends = |binary: &str| -> BTreeSet<String> {
        let (_, f) = t.function(binary);
        t.allowed(f, "sqs:SendMessage").iter().filter_map(|r| get_att(r).map(|(q, _)| q)).collect()
    };
    let queues = |ids: &[&str]| ids.iter().map(|q| q.to_string()).collect::<BTreeSet<_>>();
    // Nurture re-routes leads whose SLA expired; nothing it does changes a score.
    assert_eq!(sends("nurture"), queues(&["RouteQueue"]));
    // Opens and clicks are behaviour: ses-events has the lead rescored.
    assert_eq!(sends("ses-events"), queues(&["ScoreQueue"]));
    // A confirmed subscription (double opt-in) is rescored, which enrolls the lead.
    assert_eq!(sends("unsubscribe"), queues(&["ScoreQueue"]));
    // Lead search and export page through the table; no other function scans it.
    for (id, f) in t.functions() {
        let scans = !t.allowed(f, "dynamodb:Scan").is_empty();
        assert_eq!(scans, binary_of(f) == Some("admin"), "{id}: dynamodb:Scan");
    }
}

/// The indexes a function may Query: the `<index>` of every `${Table.Arn}/index/<index>`.
fn queried_indexes(t: &Template, function: &Value) -> BTreeSet<String> {
    t.allowed(function, "dynamodb:Query")
        .iter()
        .filter_map(|r| {
            let (name, arg) = intrinsic(r)?;
            let text = (name == "Fn::Sub").then(|| arg.as_str())??;
            text.strip_prefix("${Table.Arn}/index/").map(str::to_string)
        })
        .collect()
}

#[test]
fn each_function_queries_the_indexes_its_reads_need_and_only_existing_ones() {
    let t = Template::load();
    let tables = t.of_type("AWS::DynamoDB::Table");
    let [(_, table)] = tables.as_slice() else { panic!("one table") };
    let declared: BTreeSet<String> = seq(prop(table, "GlobalSecondaryIndexes"))
        .iter()
        .filter_map(|g| g.get("IndexName").and_then(Value::as_str).map(str::to_string))
        .collect();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for (id, f) in t.functions() {
        let queried = queried_indexes(&t, f);
        assert!(queried.is_subset(&declared), "{id} may query {queried:?}; the table has {declared:?}");
        let expected = match binary_of(f) {
            // The due scans (SLA, enrollments), a rep's open leads, the newest leads and the
            // suppression list (the console's pages).
            Some("admin") => names(&["due", "listing", "owner"]),
            Some("route" | "nurture") => names(&["due"]),
            _ => BTreeSet::new(),
        };
        assert_eq!(queried, expected, "{id}: dynamodb:Query on indexes");
    }
}

#[test]
fn permissions_name_their_actions_and_resources() {
    let t = Template::load();
    for (id, f) in t.functions() {
        for statement in t.statements(f) {
            for action in seq(statement.get("Action")) {
                let action = action.as_str().unwrap_or_else(|| panic!("{id}: an action is not a string"));
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
            }
            // SES's GetAccount (nurture paces its drips to the account's send rate) has no
            // resource type: IAM accepts only "*" for it, and it reads no lead's data.
            let account_only = seq(statement.get("Action")).iter().all(|a| a.as_str() == Some("ses:GetAccount"));
            for resource in seq(statement.get("Resource")) {
                if account_only {
                    continue;
                }
                assert_ne!(resource.as_str(), Some("*"), "{id}: a statement on every resource");
            }
        }
    }
}

#[test]
fn every_function_logs_to_a_group_with_retention() {
    let t = Template::load();
    let groups: BTreeSet<String> = t
        .of_type("AWS::Logs::LogGroup")
        .into_iter()
        .filter(|(_, g)| prop(g, "RetentionInDays").is_some())
        .filter_map(|(_, g)| {
            let (name, arg) = intrinsic(prop(g, "LogGroupName")?)?;
            (name == "Fn::Sub").then(|| arg.as_str().map(str::to_string)).flatten()
        })
        .collect();
    for (id, _) in t.functions() {
        assert!(groups.contains(&format!("/aws/lambda/${{{id}}}")), "{id} has no log group with a retention");
    }
}
