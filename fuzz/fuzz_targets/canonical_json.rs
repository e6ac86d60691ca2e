//! See `sigstack_fuzzing::canonical_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::canonical_json(data));
