//! The stack's parameters.

use serde_yaml_ng::Value;

use crate::resources::Template;

#[test]
fn parameters_are_the_documented_ones() {
    let t = Template::load();
    let params = t.doc.get("Parameters").and_then(Value::as_mapping).expect("Parameters");
    let ty = |p: &str| params.get(p).and_then(|v| v.get("Type")).and_then(Value::as_str);
    assert_eq!(ty("SenderAddress"), Some("String"));
    assert_eq!(ty("AllowedOrigins"), Some("CommaDelimitedList"));
    for optional in ["PublicUrl", "AlarmTopicArn", "ConsoleDomainPrefix", "ConsoleIdentityProvider"] {
        assert_eq!(params.get(optional).and_then(|v| v.get("Default")).and_then(Value::as_str), Some(""), "{optional}");
    }
    // The earlier deployments' secret, carried into the signing keys: never shown by
    // CloudFormation, empty on a new deployment, else as long as the keys must be.
    let secret = params.get("UnsubscribeSecret").expect("UnsubscribeSecret");
    assert_eq!(ty("UnsubscribeSecret"), Some("String"));
    assert_eq!(secret.get("NoEcho").and_then(Value::as_bool), Some(true), "UnsubscribeSecret: NoEcho");
    assert_eq!(secret.get("Default").and_then(Value::as_str), Some(""), "UnsubscribeSecret: optional");
    let pattern = secret.get("AllowedPattern").and_then(Value::as_str).expect("UnsubscribeSecret: AllowedPattern");
    assert_eq!(pattern, format!("^(.{{{},}})?$", leadflow_aws::env::MIN_SECRET_LEN), "UnsubscribeSecret: pattern");
}
