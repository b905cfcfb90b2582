fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("identity", |config: tansu_identity::Config| {
        tansu_identity::serve(config, tansu_shared::server::shutdown_signal())
    })
}
