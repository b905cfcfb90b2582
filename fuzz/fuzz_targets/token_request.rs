#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tansu_identity::oauth::fuzzing::token_request(data));
