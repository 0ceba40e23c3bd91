#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vtask_fuzz::soap_request(data));
