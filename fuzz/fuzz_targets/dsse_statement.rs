//! See `sigstack_fuzzing::dsse_statement`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::dsse_statement(data));
