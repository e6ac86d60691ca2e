//! See `sigstack_fuzzing::verify_bundle`. Seeds: the shared conformance bundles
//! (fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::verify_bundle(data));
