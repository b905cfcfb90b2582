fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("database", |config: tansu_database::Config| {
        tansu_database::serve(config, tansu_shared::server::shutdown_signal())
    })
}
