#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tansu_storage::fuzzing::storage_request(data));
