//! The deployment the IAM test drives: the function binaries built from this workspace, the
//! test's moto server with IAM enforced, the template's table and queues, one role per function
//! from template.yaml, and each function started under its role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use leadflow_aws::provision::{Provisioned, create_from_template};
use serde::Deserialize;
use serde_json::{Value, json};

use super::moto::IamMoto;
use super::report::Report;
use super::runtime::{Function, Outcome};

pub const REGION: &str = "us-east-1";
/// The parameters template.yaml has no default for, as an operator would give them.
pub const SENDER: &str = "leads@leadflow-iam.example";
pub const ORIGIN: &str = "https://www.acme.example";
/// How long any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Debug, Clone, Deserialize)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// A function as scripts/iam-policies.py read it from the template.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub role_arn: String,
    pub timeout: u64,
    pub memory: u64,
    pub log_level: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub credentials: Keys,
    pub statements: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Roles {
    functions: Vec<FunctionSpec>,
    observer: Keys,
}

pub struct Stack {
    pub moto: IamMoto,
    pub made: Provisioned,
    pub specs: Vec<FunctionSpec>,
    pub functions: BTreeMap<String, Function>,
    /// Allowed everything: the test's own requests (inspection, the event tap).
    pub observer: SdkConfig,
    pub tap_queue: String,
    tap_seen: Mutex<Vec<Value>>,
    _dir: TempDir,
}

/// A directory of the test's own, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn sdk(endpoint: &str, keys: &Keys) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(leadflow_aws::https::https_client())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            &keys.access_key_id,
            &keys.secret_access_key,
            keys.session_token.clone(),
            None,
            "iam-test",
        ))
        .load()
        .await
}

/// The `Binary` of every function in the template.
fn template_binaries(template: &str) -> BTreeSet<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template).expect("template.yaml is YAML");
    let resources = doc.get("Resources").and_then(serde_yaml_ng::Value::as_mapping).cloned().unwrap_or_default();
    resources
        .values()
        .filter(|r| r.get("Type").and_then(serde_yaml_ng::Value::as_str) == Some("AWS::Serverless::Function"))
        .filter_map(|r| r.get("Metadata")?.get("BuildProperties")?.get("Binary")?.as_str().map(str::to_string))
        .collect()
}

/// The function binaries `cargo test` built for this test (debug, for this machine): they are
/// this package's own `[[bin]]`s, so they come with the same features as the test, and no second
/// build of the workspace is needed.
fn function_binaries(binaries: &BTreeSet<String>) -> BTreeMap<String, PathBuf> {
    let built: BTreeMap<String, PathBuf> = [
        ("capture", env!("CARGO_BIN_EXE_capture")),
        ("validate", env!("CARGO_BIN_EXE_validate")),
        ("score", env!("CARGO_BIN_EXE_score")),
        ("route", env!("CARGO_BIN_EXE_route")),
        ("nurture", env!("CARGO_BIN_EXE_nurture")),
        ("admin", env!("CARGO_BIN_EXE_admin")),
        ("unsubscribe", env!("CARGO_BIN_EXE_unsubscribe")),
        ("ses-events", env!("CARGO_BIN_EXE_ses-events")),
    ]
    .into_iter()
    .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
    .collect();
    let missing: Vec<&String> = binaries.iter().filter(|b| !built.contains_key(*b)).collect();
    assert!(missing.is_empty(), "no binary of shared/aws for the template's {missing:?}");
    built
}

impl Stack {
    pub async fn up() -> Self {
        let root = root();
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run scripts/aws-tools (scripts/test does)", python.display());
        let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
        let bins = function_binaries(&template_binaries(&template));

        let dir = std::env::temp_dir().join(format!("leadflow-iam-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let dir = TempDir(dir);
        let moto = IamMoto::start(&python, &root.join("scripts/iam-moto.py"), dir.0.join("decisions.jsonl"));

        // Authorization is off until `enforce`: the deployment is set up as CloudFormation would.
        let setup_keys = Keys { access_key_id: "test".into(), secret_access_key: "test".into(), session_token: None };
        let setup = sdk(&moto.endpoint, &setup_keys).await;
        let prefix = format!("lf{}", ulid::Ulid::new().to_string().to_lowercase().get(16..).unwrap_or("x"));
        let made =
            create_from_template(&setup, &template, &prefix).await.expect("the table and queues of template.yaml");

        // A new deployment: every other parameter keeps its default.
        let parameters = json!({ "SenderAddress": SENDER, "AllowedOrigins": ORIGIN });
        let out = Command::new(&python)
            .current_dir(&root)
            .arg(root.join("scripts/iam-policies.py"))
            .args(["--endpoint", &moto.endpoint, "--prefix", &prefix, "--parameters", &parameters.to_string()])
            .args(["--template", "template.yaml"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("scripts/iam-policies.py");
        assert!(out.status.success(), "scripts/iam-policies.py failed (its message is above)");
        let roles: Roles = serde_json::from_slice(&out.stdout).expect("scripts/iam-policies.py answers JSON");
        assert!(!roles.functions.is_empty(), "template.yaml has no function with a Binary");

        let observer = sdk(&moto.endpoint, &roles.observer).await;
        let tap_queue = tap_default_bus(&setup).await;
        moto.enforce().await;

        let mut starting = Vec::new();
        for spec in &roles.functions {
            let path = bins.get(&spec.binary).unwrap_or_else(|| {
                panic!("{} names Binary {}, which no package of the workspace builds", spec.logical_id, spec.binary)
            });
            let mut env: Vec<(String, String)> = spec.environment.clone().into_iter().collect();
            let keys = &spec.credentials;
            env.extend([
                ("AWS_REGION".into(), REGION.into()),
                ("AWS_DEFAULT_REGION".into(), REGION.into()),
                ("AWS_ACCESS_KEY_ID".into(), keys.access_key_id.clone()),
                ("AWS_SECRET_ACCESS_KEY".into(), keys.secret_access_key.clone()),
                ("AWS_SESSION_TOKEN".into(), keys.session_token.clone().unwrap_or_default()),
                ("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()),
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), spec.memory.to_string()),
                ("RUST_BACKTRACE".into(), "1".into()),
            ]);
            if let Some(level) = &spec.log_level {
                env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
            }
            let name = format!("{prefix}-{}", spec.logical_id);
            let timeout = Duration::from_secs(spec.timeout);
            let binary = spec.binary.clone();
            let path = path.clone();
            starting.push(async move { Function::start(&binary, &path, &name, timeout, &env).await });
        }
        let mut functions = BTreeMap::new();
        let mut failed = Vec::new();
        for started in futures_util::future::join_all(starting).await {
            match started {
                Ok(f) => {
                    functions.insert(f.binary.clone(), f);
                }
                Err(e) => failed.push(e),
            }
        }
        let stack = Self {
            moto,
            made,
            specs: roles.functions,
            functions,
            observer,
            tap_queue,
            tap_seen: Mutex::new(Vec::new()),
            _dir: dir,
        };
        if !failed.is_empty() {
            stack.fail("start-up", &failed.join("\n"));
        }
        stack.check("start-up");
        stack
    }

    pub fn function(&self, binary: &str) -> &Function {
        self.functions.get(binary).unwrap_or_else(|| panic!("template.yaml has no function with Binary {binary}"))
    }

    pub fn report(&self) -> Report<'_> {
        Report::new(&self.specs, self.moto.decisions())
    }

    /// Fails the test when any function was refused anything so far, naming function, action
    /// and resource: that is what the template must fix.
    pub fn check(&self, step: &str) {
        let denials = self.report().denials();
        if !denials.is_empty() {
            panic!("{step}: a function's role in template.yaml does not allow what the function does:\n{denials}");
        }
    }

    /// Fails the test at `step`; a denial, when there is one, is the reason given first.
    pub fn fail(&self, step: &str, what: &str) -> ! {
        let denials = self.report().denials();
        if denials.is_empty() {
            panic!("{step}: {what}");
        }
        panic!(
            "{step}: a function's role in template.yaml does not allow what the function does:\n{denials}\n\
             which made {what}"
        );
    }

    /// Invokes `binary` with `event` and answers its response; an error or no answer fails.
    pub async fn invoke(&self, step: &str, binary: &str, event: &Value) -> Value {
        match self.function(binary).invoke(event).await {
            Ok(Outcome::Response(v)) => v,
            Ok(Outcome::Error(e)) => self
                .fail(step, &format!("{binary} failed the invocation: {e}\n{}", self.function(binary).recent_log(15))),
            Err(e) => self.fail(step, &e),
        }
    }

    // -------------------------------------------------------------- Lambda's SQS event source

    /// What Lambda's SQS event source mapping does for the function consuming `queue_url`, with
    /// that function's role (as Lambda does): receive, invoke, delete what the response does not
    /// name, until the queue is empty. Every record must succeed. Answers the records handled.
    pub async fn drain(&self, step: &str, binary: &str, queue_url: &str) -> usize {
        let spec = self.spec(binary);
        let config = sdk(&self.moto.endpoint, &spec.credentials).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let arn = match sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
        {
            Ok(out) => out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default(),
            Err(e) => self.fail(step, &format!("{binary}'s event source could not read its queue: {e:?}")),
        };
        let mut handled = 0;
        loop {
            let received = match sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => self.fail(step, &format!("{binary}'s event source could not receive: {e:?}")),
            };
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return handled;
            }
            let records = crate::common::lambda_sqs_records(&messages, Some(&arn));
            let response = self.invoke(step, binary, &json!({ "Records": records })).await;
            let failures = response["batchItemFailures"].as_array().cloned().unwrap_or_default();
            if !failures.is_empty() {
                self.fail(
                    step,
                    &format!("{binary} failed records {failures:?}\n{}", self.function(binary).recent_log(15)),
                );
            }
            let entries: Vec<DeleteMessageBatchRequestEntry> = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            handled += messages.len();
            if let Err(e) = sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
                self.fail(step, &format!("{binary}'s event source could not delete what it handled: {e:?}"));
            }
        }
    }

    pub fn spec(&self, binary: &str) -> &FunctionSpec {
        self.specs.iter().find(|s| s.binary == binary).unwrap_or_else(|| panic!("no function {binary}"))
    }

    // -------------------------------------------------------------- what people would see

    /// Events the functions published to the default bus, read until `until` holds for them.
    pub async fn events_until(&self, step: &str, what: &str, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.observer);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.tap_seen.lock().map(|s| s.clone()).unwrap_or_default();
            if until(&seen) {
                return seen;
            }
            if Instant::now() > deadline {
                let types: Vec<&str> = seen.iter().filter_map(|e| e["detail-type"].as_str()).collect();
                self.fail(step, &format!("{what} never reached the event bus (seen: {types:?})"));
            }
            let out = sqs
                .receive_message()
                .queue_url(&self.tap_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage on the event tap");
            for m in out.messages() {
                if let Ok(event) = serde_json::from_str::<Value>(m.body().unwrap_or_default())
                    && let Ok(mut seen) = self.tap_seen.lock()
                {
                    seen.push(event);
                }
                if let Some(handle) = m.receipt_handle() {
                    let _ = sqs.delete_message().queue_url(&self.tap_queue).receipt_handle(handle).send().await;
                }
            }
        }
    }

    /// Every email moto's SES sent, polled until `until` holds.
    pub async fn emails_until(&self, step: &str, what: &str, until: impl Fn(&[SentEmail]) -> bool) -> Vec<SentEmail> {
        let url = format!("{}/moto-api/data.json", self.moto.endpoint);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut sent = Vec::new();
            // moto builds data.json by walking live objects, which can fail while a request
            // changes them: read again.
            if let Ok(response) = reqwest::get(&url).await
                && let Ok(data) = response.json::<Value>().await
            {
                for m in data["ses"]["RawMessage"].as_array().into_iter().flatten() {
                    let to = m["destinations"].as_array().into_iter().flatten();
                    sent.push(SentEmail {
                        id: m["id"].as_str().unwrap_or_default().to_string(),
                        to: to.filter_map(|d| d.as_str().map(str::to_string)).collect(),
                        raw: m["raw_data"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
            if until(&sent) {
                return sent;
            }
            if Instant::now() > deadline {
                self.fail(step, &format!("{what}: no such email was sent ({} sent in all)", sent.len()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An email as moto's SES recorded it.
#[derive(Debug, Clone, Default)]
pub struct SentEmail {
    /// SES's message id.
    pub id: String,
    pub to: Vec<String>,
    /// The MIME message as sent.
    pub raw: String,
}

/// A rule on the default bus forwarding Leadflow's events to a queue the test reads.
async fn tap_default_bus(setup: &SdkConfig) -> String {
    let sqs = aws_sdk_sqs::Client::new(setup);
    let events = aws_sdk_eventbridge::Client::new(setup);
    let url =
        sqs.create_queue().queue_name("iam-test-events").send().await.expect("CreateQueue").queue_url.expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .expect("the tap's ARN");
    events.put_rule().name("iam-test-tap").event_pattern(r#"{"source":["leadflow"]}"#).send().await.expect("PutRule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("tap").arn(arn).build().expect("a target");
    events.put_targets().rule("iam-test-tap").targets(target).send().await.expect("PutTargets");
    url
}
