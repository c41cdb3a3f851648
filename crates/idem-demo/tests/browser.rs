//! The checkout page in headless Chromium: "Pay" pressed three times fast
//! makes one payment, and a lost response is recovered by a retry that
//! lands on the replay.

#[path = "support/chromium.rs"]
mod chromium;
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chromium::{Chromium, click, eval, screenshot, wait_until};
use chromiumoxide::Page;
use idem_demo::config::ChaosMode;
use serde::Deserialize;
use serde_json::Value;
use support::{Running, start};

/// What the page shows, read from its DOM.
#[derive(Debug, Deserialize)]
struct Shown {
    /// The key of the payment the next press makes.
    key: String,
    answers: Vec<Answer>,
    /// The idempotency keys of the listed payments, in order.
    payments: Vec<String>,
}

/// One attempt in the answers log.
#[derive(Debug, Deserialize)]
struct Answer {
    press: u32,
    key: String,
    outcome: String,
    #[serde(rename = "final")]
    is_final: bool,
    /// The line's text.
    detail: String,
}

const READ_PAGE: &str = r##"(() => ({
    key: document.getElementById("key").textContent,
    answers: [...document.querySelectorAll("#answers li")].map((li) => ({
        press: Number(li.dataset.press),
        key: li.dataset.key,
        outcome: li.dataset.outcome,
        final: li.dataset.final === "true",
        detail: li.lastChild.textContent,
    })),
    payments: [...document.querySelectorAll("#payments tbody tr")].map((tr) => tr.dataset.key),
}))()"##;

async fn shown(page: &Page) -> Shown {
    eval(page, READ_PAGE).await
}

/// Waits until `finals` presses have their final answer and the list shows
/// `rows` payments.
async fn settle(page: &Page, finals: usize, rows: usize) -> Shown {
    let expression = format!(
        r##"document.querySelectorAll('#answers li[data-final="true"]').length === {finals}
           && document.querySelectorAll("#payments tbody tr").length === {rows}"##
    );
    wait_until(page, &expression, Duration::from_secs(40)).await;
    shown(page).await
}

/// The payments' keys as `GET /payments` lists them.
async fn listed(demo: &Running) -> Vec<String> {
    let payments: Vec<Value> = demo.listed().await;
    payments
        .iter()
        .map(|p| p["idempotency_key"].as_str().unwrap().to_owned())
        .collect()
}

async fn open_checkout(browser: &Chromium, demo: &Running) -> Page {
    let page = browser.open(&demo.url("/")).await;
    wait_until(
        &page,
        r#"/^[0-9a-f-]{36}$/.test(document.getElementById("key").textContent)"#,
        Duration::from_secs(20),
    )
    .await;
    page
}

fn outcomes_by_press(answers: &[Answer]) -> BTreeMap<u32, Vec<&str>> {
    let mut by_press = BTreeMap::<u32, Vec<&str>>::new();
    for answer in answers {
        by_press
            .entry(answer.press)
            .or_default()
            .push(&answer.outcome);
    }
    by_press
}

#[tokio::test(flavor = "multi_thread")]
async fn three_fast_presses_make_one_payment() {
    let Some(browser) = Chromium::launch("three_fast_presses_make_one_payment").await else {
        return;
    };
    let demo = start(|_| {}).await;
    let page = open_checkout(&browser, &demo).await;
    let first_key = shown(&page).await.key;

    click(&page, "#slow").await;
    for _ in 0..3 {
        click(&page, "#pay").await;
    }
    let seen = settle(&page, 3, 1).await;

    // Every attempt of every press carried the payment's one key.
    assert!(seen.answers.iter().all(|a| a.key == first_key), "{seen:?}");
    let by_press = outcomes_by_press(&seen.answers);
    assert_eq!(by_press.len(), 3, "three presses: {by_press:?}");
    let finals: Vec<&str> = seen
        .answers
        .iter()
        .filter(|a| a.is_final)
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(
        finals.iter().filter(|o| **o == "fresh").count(),
        1,
        "one fresh answer: {by_press:?}"
    );
    assert_eq!(
        finals.iter().filter(|o| **o == "replay").count(),
        2,
        "the other presses got the replay: {by_press:?}"
    );
    assert!(
        seen.answers
            .iter()
            .filter(|a| !a.is_final)
            .all(|a| a.outcome == "in-flight"),
        "before their replay, the others were only in flight: {by_press:?}"
    );
    // Slow was on: the second and third presses met the first one running.
    // In the transactional mode they wait for it on the database lock, and
    // get 409 once that wait (2 s) runs out before the 3 s are over.
    assert!(
        by_press.values().filter(|o| o[0] == "in-flight").count() >= 1,
        "a press met the payment in flight: {by_press:?}"
    );
    assert_eq!(seen.payments, [first_key.as_str()], "one payment listed");
    assert_eq!(listed(&demo).await, [first_key.as_str()]);
    assert_eq!(demo.payment_rows().await, 1);

    // The final answer brought a new key; the next payment uses it.
    let second_key = seen.key;
    assert_ne!(second_key, first_key, "a new key after the final answer");
    click(&page, "#slow").await;
    click(&page, "#pay").await;
    let seen = settle(&page, 4, 2).await;
    let last: Vec<&Answer> = seen.answers.iter().filter(|a| a.press == 4).collect();
    assert_eq!(last.len(), 1, "{seen:?}");
    assert_eq!(
        (last[0].key.as_str(), last[0].outcome.as_str()),
        (second_key.as_str(), "fresh")
    );
    assert_eq!(seen.payments, [first_key.clone(), second_key.clone()]);
    assert_eq!(listed(&demo).await, [first_key, second_key]);
    assert_ne!(seen.key, last[0].key, "and a third key for the next one");

    let path = screenshot_path();
    screenshot(&page, &path).await;
    println!("screenshot: {}", path.display());
    browser.close().await;
}

/// "Lose the response" on: the payment is made, its answer lost, and the
/// retry with the same key gets the replay. Returns the answers shown.
async fn lose_the_response(test: &str, mode: ChaosMode) -> Option<Vec<Answer>> {
    let browser = Chromium::launch(test).await?;
    let demo = start(|c| c.chaos_mode = mode).await;
    let page = open_checkout(&browser, &demo).await;
    let key = shown(&page).await.key;

    click(&page, "#lose").await;
    click(&page, "#pay").await;
    let seen = settle(&page, 1, 1).await;

    assert!(seen.answers.iter().all(|a| a.key == key), "{seen:?}");
    let last = seen.answers.last().unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.is_final),
        ("replay", true),
        "the retry got the replay: {seen:?}"
    );
    assert_eq!(demo.demo.chaos().lost(), 1, "one answer was lost");
    assert_eq!(seen.payments, [key.as_str()], "one payment");
    assert_eq!(listed(&demo).await, [key]);
    browser.close().await;
    Some(seen.answers)
}

fn outcomes(answers: &[Answer]) -> Vec<&str> {
    answers.iter().map(|a| a.outcome.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_response_is_retried_onto_the_replay() {
    // A 502 reaches the page, which waits and retries.
    let test = "a_lost_response_is_retried_onto_the_replay";
    if let Some(answers) = lose_the_response(test, ChaosMode::BadGateway).await {
        assert_eq!(outcomes(&answers), ["lost", "replay"], "{answers:?}");
        assert!(answers[0].detail.starts_with("502"), "{answers:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_is_retried_onto_the_replay() {
    // A connection closed without an answer: Chromium itself resends a
    // request whose reused keep-alive connection closed that way, before
    // the page sees anything; on a fresh connection the page sees the
    // error and retries. Either way the retry lands on the replay.
    let test = "a_dropped_connection_is_retried_onto_the_replay";
    if let Some(answers) = lose_the_response(test, ChaosMode::Drop).await {
        println!("{test}: the page saw {:?}", outcomes(&answers));
        match outcomes(&answers)[..] {
            ["replay"] => assert!(
                answers[0].detail.contains("the browser resent the request"),
                "the page says who retried: {answers:?}"
            ),
            ["lost", "replay"] => {}
            _ => panic!("{answers:?}"),
        }
    }
}

/// `checkout.png` in this test's directory under the cargo target dir.
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("idem-demo-browser")
        .join("checkout.png")
}
