//! See `sigstack_fuzzing::rfc3161`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::rfc3161(data));
