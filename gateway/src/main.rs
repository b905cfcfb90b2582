fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("gateway", |config: tansu_gateway::Config| {
        tansu_gateway::serve(config, tansu_shared::server::shutdown_signal())
    })
}
