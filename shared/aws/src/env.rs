//! The environment contract between `template.yaml` and the functions. Every name here is set by
//! the template on the functions that need it; nothing else is read.

/// DynamoDB table (single-table design).
pub const TABLE: &str = "LEADFLOW_TABLE";
/// Queue URLs of the three stage queues.
pub const VALIDATE_QUEUE_URL: &str = "LEADFLOW_VALIDATE_QUEUE_URL";
pub const SCORE_QUEUE_URL: &str = "LEADFLOW_SCORE_QUEUE_URL";
pub const ROUTE_QUEUE_URL: &str = "LEADFLOW_ROUTE_QUEUE_URL";
/// Queue URLs of the stage queues' dead-letter queues (admin: listing and redrive, see
/// [`crate::dead_letters`]).
pub const VALIDATE_DLQ_URL: &str = "LEADFLOW_VALIDATE_DLQ_URL";
pub const SCORE_DLQ_URL: &str = "LEADFLOW_SCORE_DLQ_URL";
pub const ROUTE_DLQ_URL: &str = "LEADFLOW_ROUTE_DLQ_URL";
/// EventBridge bus name for `lead.*` events (default: `default`).
pub const EVENT_BUS: &str = "LEADFLOW_EVENT_BUS";
/// SES configuration set every email is sent with.
pub const SES_CONFIGURATION_SET: &str = "LEADFLOW_SES_CONFIGURATION_SET";
/// The verified sender address; overrides `sender.email` of the built-in configuration.
pub const SENDER: &str = "LEADFLOW_SENDER";
/// Comma-separated origins allowed to post leads; overrides `capture.allowed_origins`.
pub const ALLOWED_ORIGINS: &str = "LEADFLOW_ALLOWED_ORIGINS";
/// Where people reach the deployment (links in emails); overrides `public_url`.
pub const PUBLIC_URL: &str = "LEADFLOW_PUBLIC_URL";
/// The Secrets Manager secret (ARN or name) holding the signing keys
/// ([`leadflow_core::signing::SigningKeys`], JSON `{"current": id, id: secret, ...}`). Set on the
/// functions that sign or verify links (route, nurture, unsubscribe, admin), which start with
/// [`ports_from_env_with_secret`](crate::lambda::ports_from_env_with_secret), read it once at
/// start and refuse to start without it. The keys themselves are never in the environment.
pub const SIGNING_KEYS_SECRET: &str = "LEADFLOW_SIGNING_KEYS_SECRET";

/// The CloudWatch namespace the functions' metrics go to (`Leadflow/<stack name>`), the one
/// the template's alarms and dashboard read; see [`crate::metrics`].
pub const METRICS_NAMESPACE: &str = "LEADFLOW_METRICS_NAMESPACE";
/// The stage queue's `maxReceiveCount` (its RedrivePolicy's): a record failing on this receive
/// goes to the dead-letter queue, which the `DeadLettered` metric counts.
pub const MAX_RECEIVES: &str = "LEADFLOW_MAX_RECEIVES";

/// The console's Cognito user pool (admin function): its managed-login domain
/// (`https://<prefix>.auth.<region>.amazoncognito.com`), its issuer
/// (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) and the app client's id. Read by
/// `leadflow_admin::console::cognito::CognitoSettings::from_env`; without them the console signs
/// nobody in.
pub const COGNITO_DOMAIN: &str = "LEADFLOW_COGNITO_DOMAIN";
pub const COGNITO_ISSUER: &str = "LEADFLOW_COGNITO_ISSUER";
pub const COGNITO_CLIENT_ID: &str = "LEADFLOW_COGNITO_CLIENT_ID";

/// The shortest signing secret accepted (and the template's `UnsubscribeSecret` pattern's).
pub const MIN_SECRET_LEN: usize = leadflow_core::signing::MIN_SECRET_LEN;

/// A required variable that is missing: the template and the function disagree.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the SAM template sets it for this function")]
pub struct MissingVar(pub &'static str);

pub fn required(name: &'static str) -> Result<String, MissingVar> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(MissingVar(name))
}

pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
