fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("dashboard", |config: tansu_dashboard::Config| {
        tansu_dashboard::serve(config, tansu_shared::server::shutdown_signal())
    })
}
