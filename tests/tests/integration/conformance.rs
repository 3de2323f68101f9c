//! The conformance suite (`ossnap_tests::conformance`) on the emulator, as OpenSearch 2.x and as
//! 3.x, held to what the real engines answered, and on real OpenSearch 2.x and 3.x nodes.
//! `OSSNAP_RECORD_TRANSCRIPTS=1` makes the real engines' runs rewrite `tests/transcripts/`.

use ossnap_local_stack::{Engine, Profile};
use ossnap_tests::conformance::{suite, Transcript};

#[tokio::test]
async fn emulator_answers_as_opensearch_2() {
    suite(Engine::Emulator, Profile::V2)
        .await
        .assert_same_answers(&Transcript::recorded(Engine::OpenSearch2));
}

#[tokio::test]
async fn emulator_answers_as_opensearch_3() {
    suite(Engine::Emulator, Profile::V3)
        .await
        .assert_same_answers(&Transcript::recorded(Engine::OpenSearch3));
}

#[tokio::test]
async fn opensearch_2() {
    suite(Engine::OpenSearch2, Profile::V2)
        .await
        .record_if_asked();
}

#[tokio::test]
async fn opensearch_3() {
    suite(Engine::OpenSearch3, Profile::V3)
        .await
        .record_if_asked();
}
