//! Integration tests of `sigstackd`: real processes on loopback over real databases
//! (embedded SQLite, and PostgreSQL at `SIGSTACK_TEST_PG`), and real outside clients.

mod admission;
mod admission_hook;
mod airgap;
mod airgap_kit;
mod api;
mod attacks;
mod byo_pki;
mod ca;
mod castack;
mod client;
mod client_flows;
mod cosign;
mod cosign_images;
mod cosign_interop;
mod explorer;
mod failover;
mod faults;
mod hsm;
mod hsm_init;
mod images;
mod init;
mod interop;
mod issuer;
mod keyless;
mod log_v2;
mod monitor;
mod monitor_alerts;
mod monitor_kit;
mod oidc;
mod openapi_fuzz;
mod operator;
mod org_ca;
mod policies;
mod probes;
mod production;
mod replicas;
mod rotation;
mod sigstack_cli;
mod stack;
mod support;
mod tsa;
mod tuf;
mod v2_forgeries;
mod verifier;
mod witness;

use support::Backend;

macro_rules! both_backends {
    ($($m:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { crate::$m::$name(crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { crate::$m::$name(crate::Backend::Postgres).await } )*
        }
    };
}

both_backends!(
    log_v2::tiled_log_writes_reads_and_refuses,
    api::first_entry_and_reads,
    api::duplicates_and_search,
    api::search_by_certificate_identity,
    api::search_poisoning_is_paged_newest_first,
    api::bad_input_is_refused_and_nothing_stored,
    api::concurrent_appends_group_commit,
    api::replicas_share_one_tree,
    api::shards_rotate_and_indexes_continue,
    api::refuses_another_key,
    faults::sigkill_during_load_loses_nothing,
    interop::sigstore_js_verifies_log_output,
    ca::issues_certificates_for_every_request_form,
    ca::bad_requests_issue_nothing,
    ca::learns_rotated_issuer_keys,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_during_load() {
    faults::postgres_restart_during_load().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_elect_a_sequencer_and_survive_its_death() {
    replicas::replicas_elect_a_sequencer_and_survive_its_death().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover_loses_nothing() {
    failover::postgres_failover_loses_nothing().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_sign_and_verify_keylessly() {
    keyless::real_clients_sign_and_verify_keylessly().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_code_flow() {
    oidc::code_and_device_flows_yield_tokens_the_ca_accepts().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_device_flow() {
    oidc::device_flow_yields_a_token_the_ca_accepts().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_workload_and_confidential_clients() {
    oidc::workload_and_confidential_clients().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_signing_key_rotation() {
    oidc::signing_key_rotation_keeps_issued_tokens_valid().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_upstream_connector() {
    oidc::upstream_connector_passes_the_upstream_identity_on().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_browser_login_with_sigstore_python() {
    keyless::browser_login_with_sigstore_python().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_repository_serves_real_clients() {
    tuf::tuf_repository_serves_real_clients().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_attacks_are_refused_and_rotations_followed() {
    tuf::tuf_attacks_are_refused_and_rotations_followed().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_ceremony_refuses_what_cannot_work() {
    tuf::tuf_ceremony_refuses_what_cannot_work().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_trust_rotation_keeps_old_signatures_valid() {
    tuf::tuf_trust_rotation_keeps_old_signatures_valid().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuf_standalone_on_postgres() {
    tuf::tuf_standalone_on_postgres().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_sign_verify_and_manage_signatures() {
    images::images_sign_verify_and_manage_signatures().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_signs_and_verifies_with_the_others() {
    client::our_client_signs_and_verifies_with_the_others().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_and_rekor_cli() {
    cosign_interop::cosign_and_rekor_cli_against_the_stack().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_in_a_token() {
    hsm::every_key_in_a_token().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhook() {
    admission::admission_webhook().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_stall_the_stack() {
    attacks::slow_clients_cannot_stall_the_stack().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_cannot_exhaust_a_service() {
    attacks::large_bodies_cannot_exhaust_a_service().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_under_a_database_outage() {
    probes::probes_under_a_database_outage().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reports_watched_identities_once() {
    monitor::watched_identities_are_reported_once().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_alerts_on_forks_and_rollbacks() {
    monitor_alerts::a_forked_log_raises_an_alert_with_both_checkpoints().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_explorer_in_a_browser() {
    explorer::the_log_explorer_in_a_browser().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_authority() {
    tsa::timestamp_authority().await
}

#[test]
fn ca_new_intermediate() {
    rotation::ca_new_intermediate()
}

#[test]
fn every_service_answers_as_its_openapi_document_says() {
    openapi_fuzz::every_service_answers_as_its_openapi_document_says()
}

#[test]
fn tsa_new_certificate() {
    rotation::tsa_new_certificate()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiled_log_successor_takes_over() {
    rotation::a_tiled_log_successor_takes_over().await
}

#[test]
fn init_again_keeps_what_the_operator_did() {
    init::init_again_keeps_what_the_operator_did()
}

#[test]
fn init_ceremony_is_the_tuf_commands_layout() {
    init::init_ceremony_is_the_tuf_commands_layout()
}

#[test]
fn init_keeps_an_older_layout() {
    init::init_keeps_an_older_layout()
}

#[test]
fn cosign_flag_parity() {
    cosign_interop::cosign_flag_parity()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_refuses_forged_dsse_bundles() {
    verifier::forged_dsse_bundles_are_refused().await
}

#[tokio::test]
async fn openapi_is_current() {
    api::openapi_is_current().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_verifiers_refuse_forged_bundles() {
    v2_forgeries::v2_verifiers_refuse_forged_bundles().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstore_js_signs_through_the_signing_config() {
    v2_forgeries::sigstore_js_signs_through_the_signing_config().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_tiled_log_is_caught() {
    log_v2::a_forked_tiled_log_is_caught().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_consistent_checkpoints() {
    witness::witnesses_cosign_consistent_checkpoints().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_witness_cosigns_our_checkpoints() {
    witness::an_outside_witness_cosigns_our_checkpoints().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_dev_interop_matrix() {
    stack::dev_stack_interop_matrix().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_year_keeps_every_signature_verifying() {
    operator::an_operators_year_keeps_every_signature_verifying().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_production_on_postgres() {
    production::production_stack_on_postgres().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tuf_copy_on_a_disk_serves_clients_with_the_network_off() {
    airgap::a_tuf_copy_on_a_disk_serves_clients_with_the_network_off().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_airgap_kit_carries_trust_to_a_stack_with_no_network() {
    airgap_kit::an_airgap_kit_carries_trust_to_a_stack_with_no_network().await
}
