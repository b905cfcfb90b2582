#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tansu_identity::web::fuzzing::authorize_request(data));
