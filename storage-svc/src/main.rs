fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("storage", |config: tansu_storage::Config| {
        tansu_storage::serve(config, tansu_shared::server::shutdown_signal())
    })
}
