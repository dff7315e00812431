//! The signing keys as the functions read them at start, from a Secrets Manager secret on moto
//! (`LEADFLOW_MOTO_ENDPOINT`), through a rotation and from a deployment older than rotation.

mod common;

use aws_sdk_secretsmanager::Client;
use leadflow_aws::lambda::{StartupError, signing_keys};
use leadflow_core::model::LeadId;
use leadflow_core::signing::SigningKeys;
use leadflow_core::unsubscribe::{self, TokenError};

fn secret_of(c: char) -> String {
    c.to_string().repeat(64)
}

async fn client() -> Client {
    Client::new(&common::sdk_config().await)
}

async fn create(client: &Client, value: &str) -> String {
    let name = common::unique("signing-keys");
    let out = client.create_secret().name(&name).secret_string(value).send().await.expect("secret created");
    out.arn().map(str::to_string).unwrap_or(name)
}

async fn read(client: &Client, secret: &str) -> SigningKeys {
    signing_keys(client, secret).await.unwrap_or_else(|e| panic!("{e}"))
}

fn lead() -> LeadId {
    "01JD4Y7M9Q8R2S3T4V5W6X7Y8Z".parse().expect("a lead id")
}

#[tokio::test]
async fn links_signed_before_a_rotation_still_unsubscribe_after_it() {
    let client = client().await;
    // What the template's GenerateSecretString makes on a new deployment.
    let secret = create(&client, &format!(r#"{{"current":"1","1":"{}"}}"#, secret_of('a'))).await;
    let before = read(&client, &secret).await;
    let old_link = unsubscribe::sign(&before, lead()).expect("signed");
    assert_eq!(old_link.split('.').nth(1), Some("1"), "{old_link}");

    // The rotation docs/signing-keys.md describes: a new current key, the old one kept.
    let rotated = format!(r#"{{"current":"2","1":"{}","2":"{}"}}"#, secret_of('a'), secret_of('b'));
    client.put_secret_value().secret_id(&secret).secret_string(rotated).send().await.expect("rotated");
    let after = read(&client, &secret).await;
    assert_eq!(unsubscribe::verify(&after, &old_link), Ok(lead()), "an old link still works");
    let new_link = unsubscribe::sign(&after, lead()).expect("signed");
    assert_eq!(new_link.split('.').nth(1), Some("2"), "new links use the new key: {new_link}");

    // Retiring the old key ends its links, and only those.
    let retired = format!(r#"{{"current":"2","2":"{}"}}"#, secret_of('b'));
    client.put_secret_value().secret_id(&secret).secret_string(retired).send().await.expect("retired");
    let last = read(&client, &secret).await;
    assert_eq!(unsubscribe::verify(&last, &old_link), Err(TokenError::BadSignature));
    assert_eq!(unsubscribe::verify(&last, &new_link), Ok(lead()));
}

#[tokio::test]
async fn a_deployment_from_before_the_keys_keeps_its_links_working() {
    let client = client().await;
    let earlier = secret_of('e');
    // The template seeds key "0" with the UnsubscribeSecret parameter such a deployment has.
    let secret = create(&client, &format!(r#"{{"current":"0","0":"{earlier}"}}"#)).await;
    let keys = read(&client, &secret).await;
    // Links of that time were `<lead>.<MAC>`: the same MAC under the same secret, no key id.
    let today = unsubscribe::sign(&SigningKeys::single(earlier.clone()), lead()).expect("signed");
    let parts: Vec<&str> = today.split('.').collect();
    let legacy = format!("{}.{}", parts[0], parts[2]);
    assert_eq!(unsubscribe::verify(&keys, &legacy), Ok(lead()));
}

#[tokio::test]
async fn unusable_keys_stop_the_start_naming_the_secret_never_a_key() {
    let client = client().await;
    let missing = common::unique("no-such-secret");
    match signing_keys(&client, &missing).await {
        Err(e @ StartupError::SigningKeys { .. }) => assert!(e.to_string().contains(&missing), "{e}"),
        other => panic!("a missing secret was taken: {other:?}"),
    }
    let short = "too-short-to-sign-with";
    for (value, says) in [
        (format!(r#"{{"current":"1","1":"{short}"}}"#), "at least 32 characters"),
        (format!(r#"{{"current":"2","1":"{}"}}"#, secret_of('a')), "\"2\" is not among"),
        ("not json".to_string(), "not a JSON object"),
    ] {
        let secret = create(&client, &value).await;
        match signing_keys(&client, &secret).await {
            Err(e @ StartupError::SigningKeys { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&secret) && text.contains(says), "{text}");
                assert!(!text.contains(short) && !text.contains(&secret_of('a')), "a key in the message: {text}");
            }
            other => panic!("{value}: {other:?}"),
        }
    }
}
