//! See `sigstack_fuzzing::trust_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::trust_files(data));
