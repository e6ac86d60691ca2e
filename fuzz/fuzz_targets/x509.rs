//! See `sigstack_fuzzing::x509`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::x509(data));
