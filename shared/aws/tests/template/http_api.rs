//! The HTTP API: its routes, who may call them, and which function each invokes.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::resources::Template;
use crate::yaml::{events, prop, ref_of, render};

#[test]
fn http_api_routes_are_iam_authorized_except_capture_unsubscribe_and_the_console() {
    let t = Template::load();
    let (api_id, api) = t.api();
    assert_eq!(prop(api, "ProtocolType").and_then(Value::as_str), Some("HTTP"), "{api_id}");
    assert_eq!(
        prop(api, "CorsConfiguration").and_then(|c| c.get("AllowOrigins")).and_then(ref_of),
        Some("AllowedOrigins")
    );
    let stages = t.of_type("AWS::ApiGatewayV2::Stage");
    let [(stage_id, stage)] = stages.as_slice() else { panic!("one stage") };
    assert_eq!(prop(stage, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{stage_id}");
    assert_eq!(prop(stage, "StageName").and_then(Value::as_str), Some("$default"), "{stage_id}");
    assert_eq!(prop(stage, "AutoDeploy").and_then(Value::as_bool), Some(true), "{stage_id}: AutoDeploy");
    let throttling = prop(stage, "DefaultRouteSettings").expect("DefaultRouteSettings");
    assert!(throttling.get("ThrottlingBurstLimit").is_some() && throttling.get("ThrottlingRateLimit").is_some());

    // No function routes through SAM's HttpApi events, which would make an API of their own
    // depend on the functions.
    for (id, f) in t.functions() {
        assert!(events(f, &["HttpApi", "Api"]).is_empty(), "{id}: routes are AWS::ApiGatewayV2::Route resources");
    }
    // Lambda proxy integrations on this API, each function invocable by this API only.
    let mut integrated = BTreeSet::new();
    for (id, i) in t.of_type("AWS::ApiGatewayV2::Integration") {
        assert_eq!(prop(i, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{id}: on {api_id}");
        assert_eq!(prop(i, "IntegrationType").and_then(Value::as_str), Some("AWS_PROXY"), "{id}");
        assert_eq!(prop(i, "PayloadFormatVersion").and_then(Value::as_str), Some("2.0"), "{id}");
        integrated.insert(t.integrated_function(&id));
    }
    let source_arn =
        format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api_id}}}/*");
    let permitted: BTreeSet<String> = t
        .of_type("AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, p)| {
            let s = |k| prop(p, k).and_then(Value::as_str);
            s("Principal") == Some("apigateway.amazonaws.com")
                && s("Action") == Some("lambda:InvokeFunction")
                && prop(p, "SourceArn").map(render) == Some(vec![source_arn.clone()])
        })
        .filter_map(|(_, p)| prop(p, "FunctionName").and_then(ref_of).map(str::to_string))
        .collect();
    assert_eq!(permitted, integrated, "API Gateway may invoke exactly the integrated functions, from {api_id} only");
    for (id, r) in t.of_type("AWS::ApiGatewayV2::Route") {
        assert_eq!(prop(r, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{id}: on {api_id}");
        // A route without AuthorizationType is open: each one says which it is.
        assert!(prop(r, "AuthorizationType").is_some(), "{id}: AuthorizationType");
    }
    let route = |binary: &str, method: &str, path: &str, auth: &str| {
        (binary.to_string(), method.to_string(), path.to_string(), Some(auth.to_string()))
    };
    assert_eq!(
        t.routes(),
        [
            route("admin", "ANY", "/admin/{proxy+}", "AWS_IAM"),
            // Browsers cannot sign requests: the console's pages check their session cookie,
            // the assignment email's one-click actions (/console/act/…) their signature.
            route("admin", "ANY", "/console/{proxy+}", "NONE"),
            route("admin", "GET", "/console", "NONE"),
            route("capture", "GET", "/forms/leadflow.js", "NONE"),
            // The API's own description, public as the API it describes.
            route("capture", "GET", "/openapi.json", "NONE"),
            route("capture", "GET", "/thanks", "NONE"),
            route("capture", "POST", "/leads", "NONE"),
            // Double opt-in's link: a page, and its button.
            route("unsubscribe", "GET", "/confirm/{token}", "NONE"),
            route("unsubscribe", "GET", "/u/{token}", "NONE"),
            route("unsubscribe", "POST", "/confirm/{token}", "NONE"),
            route("unsubscribe", "POST", "/u/{token}", "NONE"),
        ]
    );
    // Whatever routes come: everything under /admin is IAM-authorized; only the landing pages'
    // endpoint (with their script, thank-you page and the API's description), the signed
    // unsubscribe and confirmation links and the console are open, and the console is the admin
    // function's, which checks the session.
    for (binary, method, path, auth) in t.routes() {
        if path == "/admin" || path.starts_with("/admin/") {
            assert_eq!(auth.as_deref(), Some("AWS_IAM"), "{method} {path}");
        }
        let console = path == "/console" || path.starts_with("/console/");
        if console {
            assert_eq!(binary, "admin", "{method} {path}: only the admin function checks console sessions");
        }
        if auth.as_deref() == Some("NONE") {
            // The landing pages' script, thank-you page and the API's description are static:
            // GET only, from capture.
            let landing = binary == "capture"
                && method == "GET"
                && ["/forms/leadflow.js", "/thanks", "/openapi.json"].contains(&path.as_str());
            let signed = binary == "unsubscribe" && (path.starts_with("/u/") || path.starts_with("/confirm/"));
            assert!(path == "/leads" || landing || signed || console, "{binary}: {method} {path} is open");
        }
    }
}
