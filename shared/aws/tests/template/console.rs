//! The console's sign-in: the Cognito user pool, its groups, client and domain, and what the
//! admin function is told of them.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::resources::{Template, only};
use crate::yaml::{binary_of, int, prop, ref_of, render, render_list, seq, strings};

/// The admin function's environment variable, rendered.
fn admin_var(t: &Template, name: &str) -> Vec<String> {
    let (id, admin) = t.function("admin");
    let vars = prop(admin, "Environment").and_then(|e| e.get("Variables")).expect("admin's Environment.Variables");
    render(vars.get(name).unwrap_or_else(|| panic!("{id} has no {name}")))
}

/// Where people reach the deployment, as the functions are told: each possible base URL.
fn console_bases(t: &Template) -> Vec<String> {
    let bases = admin_var(t, "LEADFLOW_PUBLIC_URL");
    assert!(bases.contains(&"${PublicUrl}".to_string()), "the PublicUrl parameter is one of {bases:?}");
    bases
}

fn under_bases(bases: &[String], path: &str) -> BTreeSet<String> {
    bases.iter().map(|b| format!("{b}{path}")).collect()
}

#[test]
fn console_users_sign_in_by_email_and_only_admins_create_accounts() {
    let t = Template::load();
    let (id, pool) = only(&t, "AWS::Cognito::UserPool");
    assert_eq!(strings(prop(pool, "UsernameAttributes")), BTreeSet::from(["email"]), "{id}: sign-in by email");
    let case_sensitive = prop(pool, "UsernameConfiguration").and_then(|c| c.get("CaseSensitive"));
    assert_eq!(case_sensitive.and_then(Value::as_bool), Some(false), "{id}: Ana@Acme.io is ana@acme.io");
    assert!(strings(prop(pool, "AutoVerifiedAttributes")).contains("email"), "{id}: emails are verified");
    let admin_only = prop(pool, "AdminCreateUserConfig").and_then(|c| c.get("AllowAdminCreateUserOnly"));
    assert_eq!(admin_only.and_then(Value::as_bool), Some(true), "{id}: no self sign-up");
    let recovery: Vec<&str> = seq(prop(pool, "AccountRecoverySetting").and_then(|a| a.get("RecoveryMechanisms")))
        .into_iter()
        .filter_map(|m| m.get("Name")?.as_str())
        .collect();
    assert_eq!(recovery, ["verified_email"], "{id}: a forgotten password is reset through the verified email");
    let min_length = prop(pool, "Policies").and_then(|p| p.get("PasswordPolicy")).and_then(|p| p.get("MinimumLength"));
    assert!(min_length.is_some_and(|l| int(l, "MinimumLength") >= 12), "{id}: passwords of 12 characters or more");
    // People's accounts outlive the stack (and a replacement of the pool).
    let policy = |k| pool.get(k).and_then(Value::as_str);
    assert_eq!((policy("DeletionPolicy"), policy("UpdateReplacePolicy")), (Some("Retain"), Some("Retain")), "{id}");
}

#[test]
fn console_roles_are_the_user_pool_groups_sales_marketing_and_admin() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let mut groups = BTreeSet::new();
    for (id, group) in t.of_type("AWS::Cognito::UserPoolGroup") {
        assert_eq!(prop(group, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{id}: in the console's pool");
        let description = prop(group, "Description").and_then(Value::as_str).unwrap_or_default();
        assert!(!description.trim().is_empty(), "{id}: say what the role may do");
        groups.insert(prop(group, "GroupName").and_then(Value::as_str).expect("GroupName").to_string());
    }
    assert_eq!(groups, BTreeSet::from(["sales", "marketing", "admin"].map(String::from)));
}

#[test]
fn console_client_uses_the_code_flow_without_a_secret_and_returns_to_the_console() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (id, client) = only(&t, "AWS::Cognito::UserPoolClient");
    assert_eq!(prop(client, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{id}");
    // A public client: PKCE instead of a secret; the authorization code flow only, never the
    // implicit flow that puts tokens in the URL.
    assert_eq!(prop(client, "GenerateSecret").and_then(Value::as_bool), Some(false), "{id}: GenerateSecret");
    assert_eq!(prop(client, "AllowedOAuthFlowsUserPoolClient").and_then(Value::as_bool), Some(true), "{id}");
    assert_eq!(strings(prop(client, "AllowedOAuthFlows")), BTreeSet::from(["code"]), "{id}: AllowedOAuthFlows");
    assert!(strings(prop(client, "AllowedOAuthScopes")).contains("openid"), "{id}: an ID token needs openid");
    // People sign in on the managed login pages only, never by posting a password to the API.
    assert_eq!(strings(prop(client, "ExplicitAuthFlows")), BTreeSet::from(["ALLOW_REFRESH_TOKEN_AUTH"]), "{id}");
    assert_eq!(prop(client, "PreventUserExistenceErrors").and_then(Value::as_str), Some("ENABLED"), "{id}");
    assert_eq!(prop(client, "EnableTokenRevocation").and_then(Value::as_bool), Some(true), "{id}: sign-out revokes");

    // Back to the console at the address the functions know it by, whichever that is.
    let bases = console_bases(&t);
    let urls = |key| -> BTreeSet<String> { seq(prop(client, key)).into_iter().flat_map(render).collect() };
    assert_eq!(urls("CallbackURLs"), under_bases(&bases, "/console/auth/callback"), "{id}: CallbackURLs");
    assert_eq!(urls("LogoutURLs"), under_bases(&bases, "/console/signed-out"), "{id}: LogoutURLs");

    // Cognito's own accounts always; the company's identity provider once the parameter names it.
    let providers = render_list(prop(client, "SupportedIdentityProviders").expect("SupportedIdentityProviders"));
    let expected = [vec!["COGNITO".to_string()], vec!["COGNITO".to_string(), "${ConsoleIdentityProvider}".to_string()]];
    assert_eq!(
        providers.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect(),
        "{id}: SupportedIdentityProviders"
    );

    // An hour per ID token, refreshed for up to 30 days.
    let seconds = |key: &str, unit_key: &str, default_unit: &str| {
        let value = int(prop(client, key).unwrap_or_else(|| panic!("{id}: {key}")), key);
        let units = prop(client, "TokenValidityUnits").and_then(|u| u.get(unit_key)).and_then(Value::as_str);
        value
            * match units.unwrap_or(default_unit) {
                "seconds" => 1,
                "minutes" => 60,
                "hours" => 3600,
                "days" => 86_400,
                other => panic!("{id}: unit {other}"),
            }
    };
    assert_eq!(seconds("IdTokenValidity", "IdToken", "hours"), 3600, "{id}: ID token");
    assert_eq!(seconds("AccessTokenValidity", "AccessToken", "hours"), 3600, "{id}: access token");
    assert_eq!(seconds("RefreshTokenValidity", "RefreshToken", "days"), 30 * 86_400, "{id}: refresh token");
}

#[test]
fn console_signs_in_on_the_pools_managed_login_domain() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    let (domain_id, domain) = only(&t, "AWS::Cognito::UserPoolDomain");
    assert_eq!(prop(domain, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{domain_id}");
    // The newer managed login shows a client's pages only once the client has a branding style.
    let version = prop(domain, "ManagedLoginVersion").map(|v| int(v, "ManagedLoginVersion")).unwrap_or(1);
    if version == 2 {
        let styled = t.of_type("AWS::Cognito::ManagedLoginBranding").into_iter().any(|(_, b)| {
            prop(b, "UserPoolId").and_then(ref_of) == Some(pool.as_str())
                && prop(b, "ClientId").and_then(ref_of) == Some(client.as_str())
        });
        assert!(styled, "managed login (version 2) needs a ManagedLoginBranding for {client}");
    }
    // A prefix of its own, or one the account makes unique.
    let prefixes: BTreeSet<String> = render(prop(domain, "Domain").expect("Domain")).into_iter().collect();
    let expected = ["${ConsoleDomainPrefix}", "leadflow-${AWS::AccountId}"].map(String::from);
    assert_eq!(prefixes, BTreeSet::from(expected), "{domain_id}: Domain");
}

#[test]
fn admin_function_is_told_where_the_console_signs_in_and_no_other_function_is() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    let (domain, _) = only(&t, "AWS::Cognito::UserPoolDomain");
    assert_eq!(
        admin_var(&t, "LEADFLOW_COGNITO_DOMAIN"),
        [format!("https://${{{domain}}}.auth.${{AWS::Region}}.amazoncognito.com")]
    );
    // ProviderName is cognito-idp.<region>.amazonaws.com/<pool id>: the ID token's iss.
    assert_eq!(admin_var(&t, "LEADFLOW_COGNITO_ISSUER"), [format!("https://${{{pool}.ProviderName}}")]);
    assert_eq!(admin_var(&t, "LEADFLOW_COGNITO_CLIENT_ID"), [format!("${{{client}}}")]);
    for (id, f) in t.functions() {
        if binary_of(f) == Some("admin") {
            continue;
        }
        let vars = prop(f, "Environment").and_then(|e| e.get("Variables")).and_then(Value::as_mapping);
        let cognito: Vec<&str> = vars
            .into_iter()
            .flat_map(|m| m.keys().filter_map(Value::as_str))
            .filter(|k| k.starts_with("LEADFLOW_COGNITO_"))
            .collect();
        assert!(cognito.is_empty(), "{id} is given {cognito:?}, which only the console needs");
    }
}

#[test]
fn outputs_say_where_the_console_is_and_which_pool_and_client_it_uses() {
    let t = Template::load();
    let outputs = t.doc.get("Outputs").and_then(Value::as_mapping).expect("Outputs");
    let output =
        |name: &str| render(outputs.get(name).and_then(|o| o.get("Value")).unwrap_or_else(|| panic!("{name}")));
    let bases = console_bases(&t);
    assert_eq!(output("ConsoleUrl").into_iter().collect::<BTreeSet<_>>(), under_bases(&bases, "/console"));
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    assert_eq!(output("UserPoolId"), [format!("${{{pool}}}")]);
    assert_eq!(output("UserPoolClientId"), [format!("${{{client}}}")]);
    assert_eq!(output("ConsoleSignInDomain"), admin_var(&t, "LEADFLOW_COGNITO_DOMAIN"));
}
