//! References: every `!Ref`, `!GetAtt` and `!Sub` name resolves, and no dependency circle (the
//! HTTP API depends on no function).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use crate::resources::{Template, only};
use crate::yaml::{get_att, intrinsic, seq, sub_names, walk};

/// `!GetAtt` attributes of the resource types the template uses. A type missing here fails the
/// test: add it with the attributes CloudFormation documents for it.
fn valid_attributes(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "AWS::SQS::Queue" => &["Arn", "QueueName", "QueueUrl"],
        "AWS::DynamoDB::Table" => &["Arn", "StreamArn"],
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => &["Arn"],
        "AWS::IAM::Role" => &["Arn", "RoleId"],
        "AWS::ApiGatewayV2::Api" => &["ApiEndpoint", "ApiId"],
        "AWS::ApiGatewayV2::Stage" => &[],
        "AWS::ApiGatewayV2::Integration" => &["IntegrationId"],
        "AWS::ApiGatewayV2::Route" => &["RouteId"],
        "AWS::Lambda::Permission" => &[],
        "AWS::Logs::LogGroup" => &["Arn"],
        "AWS::CloudWatch::Alarm" => &["Arn"],
        "AWS::SES::ConfigurationSet" => &[],
        "AWS::SES::ConfigurationSetEventDestination" => &["Id"],
        "AWS::SQS::QueuePolicy" => &["Id"],
        "AWS::Cognito::UserPool" => &["Arn", "ProviderName", "ProviderURL", "UserPoolId"],
        "AWS::Cognito::UserPoolGroup" => &[],
        "AWS::Cognito::UserPoolDomain" => &["CloudFrontDistribution"],
        "AWS::Cognito::UserPoolClient" => &["ClientId", "ClientSecret", "Name"],
        "AWS::Cognito::ManagedLoginBranding" => &["ManagedLoginBrandingId"],
        _ => return None,
    })
}

const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
];

#[test]
fn every_reference_names_a_resource_and_an_attribute_its_type_has() {
    let t = Template::load();
    let params: BTreeSet<&str> = t
        .doc
        .get("Parameters")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let check_get_att = |path: &str, resource: &str, attr: &str| {
        let ty = t.type_of(resource).unwrap_or_else(|| panic!("{path}: !GetAtt {resource}.{attr}: no such resource"));
        let valid = valid_attributes(ty)
            .unwrap_or_else(|| panic!("{path}: add {ty}'s attributes to valid_attributes() in this test"));
        assert!(valid.contains(&attr), "{path}: {ty} {resource} has no attribute {attr} (has {valid:?})");
    };
    let check_ref = |path: &str, name: &str, locals: &BTreeSet<&str>| {
        assert!(
            params.contains(name)
                || PSEUDO_PARAMETERS.contains(&name)
                || t.type_of(name).is_some()
                || locals.contains(name),
            "{path}: {name} is neither a parameter nor a resource"
        );
    };

    let mut found = Vec::new();
    walk(&t.doc, "", &mut found);
    let mut get_atts = 0;
    for (path, v) in found {
        let (name, arg) = intrinsic(v).expect("walk keeps intrinsics");
        match name.as_str() {
            "Fn::GetAtt" => {
                let (resource, attr) = get_att(v).unwrap_or_else(|| panic!("{path}: malformed !GetAtt {arg:?}"));
                check_get_att(&path, &resource, attr);
                get_atts += 1;
            }
            "Ref" => check_ref(&path, arg.as_str().unwrap_or_else(|| panic!("{path}: !Ref {arg:?}")), &BTreeSet::new()),
            "Fn::Sub" => {
                let (text, locals) = match arg {
                    Value::String(s) => (s.as_str(), BTreeSet::new()),
                    Value::Sequence(p) if p.len() == 2 => (
                        p[0].as_str().unwrap_or_else(|| panic!("{path}: !Sub's string")),
                        p[1].as_mapping().map(|m| m.keys().filter_map(Value::as_str).collect()).unwrap_or_default(),
                    ),
                    _ => panic!("{path}: malformed !Sub {arg:?}"),
                };
                for name in sub_names(text) {
                    match name.split_once('.') {
                        Some((resource, attr)) if !name.starts_with("AWS::") => check_get_att(&path, resource, attr),
                        _ => check_ref(&path, name, &locals),
                    }
                }
            }
            _ => {}
        }
    }
    assert!(get_atts > 10, "the walk found only {get_atts} !GetAtt: is it looking at the template?");
}

/// The resources a resource names: `!Ref`, `!GetAtt`, `!Sub` names (both branches of every
/// `!If` count, as they do for CloudFormation) and `DependsOn`.
fn references(t: &Template, resource: &Value) -> BTreeSet<String> {
    let mut found = Vec::new();
    walk(resource, "", &mut found);
    let mut out = BTreeSet::new();
    for (_, v) in found {
        match intrinsic(v) {
            Some((name, Value::String(s))) if name == "Ref" => {
                out.insert(s.clone());
            }
            Some((name, _)) if name == "Fn::GetAtt" => out.extend(get_att(v).map(|(r, _)| r)),
            Some((name, arg)) if name == "Fn::Sub" => {
                let text = match arg {
                    Value::Sequence(p) => p.first().and_then(Value::as_str),
                    _ => arg.as_str(),
                };
                for n in sub_names(text.unwrap_or_default()) {
                    out.insert(n.split_once('.').map_or(n, |(r, _)| r).to_string());
                }
            }
            _ => {}
        }
    }
    out.extend(seq(resource.get("DependsOn")).into_iter().filter_map(Value::as_str).map(str::to_string));
    out.retain(|r| t.type_of(r).is_some());
    out
}

#[test]
fn the_http_api_depends_on_no_function_so_functions_may_name_its_url() {
    let t = Template::load();
    let (api_id, _) = t.api();
    // Everything the API depends on, however indirectly. Not its stage: route settings name
    // routes, so the stage waits for them and their functions, and nothing names the stage
    // (template_limits.rs); the cycle check below covers it.
    let mut stages: Vec<String> = vec![api_id.clone()];
    let mut needed = BTreeSet::new();
    while let Some(id) = stages.pop() {
        for r in references(&t, t.resource(&id)) {
            if needed.insert(r.clone()) {
                stages.push(r);
            }
        }
    }
    for (id, _) in t.functions() {
        assert!(!needed.contains(&id), "{api_id} depends on {id}, whose URL variables depend on {api_id}");
    }
    // And the functions and the console's client do name it, which is why it must not name them.
    let (admin, admin_f) = t.function("admin");
    assert!(references(&t, admin_f).contains(&api_id), "{admin}: LEADFLOW_PUBLIC_URL is the API's URL by default");
    let (client, client_r) = only(&t, "AWS::Cognito::UserPoolClient");
    assert!(references(&t, client_r).contains(&api_id), "{client}: the callback is on the API's URL by default");

    // No resource depends on itself through others, as far as the template itself says.
    let graph: BTreeMap<String, BTreeSet<String>> =
        t.resources().iter().map(|(id, r)| (id.as_str().unwrap_or_default().to_string(), references(&t, r))).collect();
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(n) {
            return;
        }
        assert!(!path.iter().any(|p| p == n), "circular dependency: {} -> {n}", path.join(" -> "));
        path.push(n.to_string());
        for m in &g[n] {
            visit(m, g, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for id in graph.keys() {
        visit(id, &graph, &mut Vec::new(), &mut done);
    }
}
