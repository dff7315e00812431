//! Dead letters on AWS: a stage message that failed on every receive lands in its DLQ (moto
//! moves it, as SQS does, by the template's redrive policy); the reason of each failure was
//! recorded by message id, and the admin's listing shows the last one with the lead id and the
//! kind of message, peeking without taking the message out. The redrive's `StartMessageMoveTask`
//! (which moto lacks) is checked against a request-checking fake SQS (`fake_sqs`).

mod common;
mod fake_sqs;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;
use fake_sqs::{DLQ_ARN, FakeSqs, Setup, TASK_HANDLE};
use leadflow_app::Failure;
use leadflow_aws::dead_letters::{DlqUrls, ReasonLog, SqsDeadLetters};
use leadflow_core::error::QueueError;
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{LeadId, Submission};
use leadflow_core::ports::{DeadLetters, Stage};

const EMAIL: &str = "grace.hopper@navy.example";

fn record_of(m: &Message, queue_arn: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id().map(str::to_string);
    record.body = m.body().map(str::to_string);
    record.event_source_arn = Some(queue_arn.to_string());
    if let Some(count) = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount)) {
        record.attributes.insert("ApproximateReceiveCount".into(), count.clone());
    }
    record
}

async fn attribute(sqs: &aws_sdk_sqs::Client, url: &str, name: QueueAttributeName) -> String {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await.expect("attributes");
    out.attributes().and_then(|a| a.get(&name)).cloned().unwrap_or_default()
}

/// Receives `url`'s one message until SQS sets it aside, recording a reason for each failed
/// delivery as the stage functions do; answers the message id.
async fn fail_until_dead(sqs: &aws_sdk_sqs::Client, log: &ReasonLog, url: &str, dlq: &str) -> String {
    let arn = attribute(sqs, url, QueueAttributeName::QueueArn).await;
    let mut id = None;
    for attempt in 1..=10 {
        if attribute(sqs, dlq, QueueAttributeName::ApproximateNumberOfMessages).await != "0" {
            return id.expect("received before it was set aside");
        }
        let got = sqs
            .receive_message()
            .queue_url(url)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in got.messages() {
            id = m.message_id().map(str::to_string);
            let failure = Failure {
                id: id.clone().unwrap_or_default(),
                reason: format!("attempt {attempt}: SES refused {EMAIL} (account suspended)"),
            };
            log.record(&[record_of(m, &arn)], &[failure], Utc::now()).await.expect("the reason is recorded");
        }
    }
    panic!("the message never reached the DLQ");
}

#[tokio::test]
async fn a_dead_letter_is_listed_with_its_last_reason_by_message_id_and_stays_in_the_dlq() {
    let sdk = common::sdk_config().await;
    let made = common::deployment(&sdk, "dl").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let log = ReasonLog::new(aws_sdk_dynamodb::Client::new(&sdk), &made.table);

    let lead = LeadId::from_parts(1_767_000_000_000, 7);
    let route = serde_json::to_string(&RouteMessage::route(lead)).expect("json");
    sqs.send_message().queue_url(&made.stage_urls.route).message_body(route).send().await.expect("send");
    let submission = Submission { lead_id: lead, email: EMAIL.into(), ..Submission::default() };
    let body = serde_json::to_string(&submission).expect("json");
    sqs.send_message().queue_url(&made.stage_urls.validate).message_body(body).send().await.expect("send");

    let route_id = fail_until_dead(&sqs, &log, &made.stage_urls.route, &made.dlq_urls.route).await;
    let validate_id = fail_until_dead(&sqs, &log, &made.stage_urls.validate, &made.dlq_urls.validate).await;

    let dead_letters = SqsDeadLetters::new(sqs.clone(), log.clone(), made.dlq_urls.clone());
    for round in 0..2 {
        let list = dead_letters.list(Stage::Route, 20).await.expect("the route DLQ is listed");
        assert_eq!((list.total, list.items.len()), (1, 1), "round {round}: {list:?}");
        let item = &list.items[0];
        assert_eq!(item.message_id, route_id, "SQS keeps the message id when it dead-letters");
        assert_eq!(item.lead_id, Some(lead));
        assert_eq!(item.kind, "route");
        assert_eq!(item.receive_count, 5, "the count of the last failed receive, not of the peeks");
        let reason = item.reason.as_deref().expect("a reason was recorded");
        assert!(reason.starts_with("attempt 5: SES refused"), "the last reason: {reason}");
        assert!(!reason.contains(EMAIL), "the address is not kept: {reason}");
        assert!(item.dead_at.is_some());
    }
    // Peeking took nothing out: the message is visible again for a redrive.
    let visible = attribute(&sqs, &made.dlq_urls.route, QueueAttributeName::ApproximateNumberOfMessages).await;
    assert_eq!(visible, "1");

    let list = dead_letters.list(Stage::Validate, 20).await.expect("the validate DLQ is listed");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].message_id, validate_id);
    assert_eq!(list.items[0].kind, "submission");
    assert!(!format!("{list:?}").contains(EMAIL), "a listing shows no address: {list:?}");

    let empty = dead_letters.list(Stage::Score, 20).await.expect("the score DLQ is listed");
    assert_eq!((empty.total, empty.items.len()), (0, 0));
}

#[tokio::test]
async fn a_message_without_a_recorded_reason_is_listed_without_one() {
    let sdk = common::sdk_config().await;
    let made = common::deployment(&sdk, "dl").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Straight into the DLQ, as a message whose every delivery timed out leaves no reason.
    for i in 0..12 {
        sqs.send_message()
            .queue_url(&made.dlq_urls.score)
            .message_body(format!("not json {i}"))
            .send()
            .await
            .expect("send");
    }
    let log = ReasonLog::new(aws_sdk_dynamodb::Client::new(&sdk), &made.table);
    let dead_letters = SqsDeadLetters::new(sqs, log, made.dlq_urls);
    let list = dead_letters.list(Stage::Score, 11).await.expect("listed");
    assert_eq!(list.total, 12);
    assert_eq!(list.items.len(), 11, "more than one receive's ten, at most the limit");
    let ids: std::collections::HashSet<_> = list.items.iter().map(|i| i.message_id.clone()).collect();
    assert_eq!(ids.len(), 11, "no message twice");
    assert!(list.items.iter().all(|i| i.reason.is_none() && i.lead_id.is_none() && i.kind == "unreadable"));
}

fn fake_urls(fake: &FakeSqs) -> DlqUrls {
    let url = |name: &str| format!("{}/123456789012/lf-{name}", fake.endpoint);
    DlqUrls { validate: url("ValidateDLQ"), score: url("ScoreDLQ"), route: url("RouteDLQ") }
}

async fn dead_letters_on(fake: &FakeSqs) -> SqsDeadLetters {
    // The reasons are never read by a redrive; the table client points nowhere on purpose.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(leadflow_aws::https::https_client())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "none"))
        .load()
        .await;
    let log = ReasonLog::new(aws_sdk_dynamodb::Client::new(&sdk), "unused");
    SqsDeadLetters::new(fake.client().await, log, fake_urls(fake))
}

#[tokio::test]
async fn a_redrive_starts_a_move_task_from_the_stage_dlq_back_to_where_each_message_came_from() {
    let fake = FakeSqs::start(Setup { messages: 3, refuse_move: None }).await;
    let redrive = dead_letters_on(&fake).await.redrive(Stage::Route).await.expect("redrive");
    assert_eq!((redrive.stage, redrive.messages, redrive.done), (Stage::Route, 3, false));
    assert_eq!(redrive.task.as_deref(), Some(TASK_HANDLE));

    let requests = fake.requests();
    let ops: Vec<&str> = requests.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["GetQueueAttributes", "StartMessageMoveTask"]);
    assert_eq!(requests[0].body["QueueUrl"], serde_json::json!(fake_urls(&fake).route), "the route DLQ");
    let mv = &requests[1].body;
    assert_eq!(mv["SourceArn"], serde_json::json!(DLQ_ARN), "from the DLQ");
    assert!(mv.get("DestinationArn").is_none(), "no destination: back to each message's source queue: {mv}");
}

#[tokio::test]
async fn an_empty_dlq_starts_no_move_task_and_a_refused_one_is_an_error() {
    let empty = FakeSqs::start(Setup { messages: 0, refuse_move: None }).await;
    let redrive = dead_letters_on(&empty).await.redrive(Stage::Score).await.expect("redrive");
    assert_eq!((redrive.messages, redrive.done, redrive.task), (0, true, None));
    assert!(empty.requests().iter().all(|r| r.operation != "StartMessageMoveTask"));

    let refusing = FakeSqs::start(Setup { messages: 2, refuse_move: Some("UnsupportedOperation".into()) }).await;
    match dead_letters_on(&refusing).await.redrive(Stage::Validate).await {
        Err(QueueError::Unavailable(why)) => assert!(why.contains("validate dead-letter queue"), "{why}"),
        other => panic!("a refused move task must be an error: {other:?}"),
    }
}

#[tokio::test]
async fn a_reason_expires_with_the_dlq_retention_and_only_named_records_get_one() {
    let sdk = common::sdk_config().await;
    let table = common::table().await;
    let log = ReasonLog::new(aws_sdk_dynamodb::Client::new(&sdk), &table.name);
    let mut record = SqsMessage::default();
    record.message_id = Some("m-1".into());
    record.attributes.insert("ApproximateReceiveCount".into(), "3".into());
    let now = Utc::now();
    let failures = [
        Failure { id: "m-1".into(), reason: format!("{EMAIL} bounced: {}", "x".repeat(3000)) },
        Failure { id: "not-in-the-batch".into(), reason: "ignored".into() },
    ];
    log.record(&[record], &failures, now).await.expect("recorded");

    let found = log.reasons(&["m-1".to_string(), "not-in-the-batch".to_string()]).await.expect("read");
    assert_eq!(found.len(), 1, "{found:?}");
    let kept = &found["m-1"];
    assert_eq!(kept.receive_count, Some(3));
    assert!(kept.reason.starts_with("<redacted> bounced: xxx"), "{}", kept.reason);
    assert_eq!(kept.reason.chars().count(), 1000, "bounded");

    let item = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("DEADLETTER#m-1".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("-".into()))
        .send()
        .await
        .expect("GetItem");
    let expires: i64 = item
        .item()
        .and_then(|i| i.get("expires_at"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .expect("a TTL");
    let fourteen_days = (now + chrono::Duration::days(14)).timestamp();
    assert!((expires - fourteen_days).abs() <= 1, "expires {expires}, DLQ retention ends {fourteen_days}");
}
