//! `bootstrap`: the flowlens Lambda function (runtime `provided.al2023`).
//!
//! Configuration comes from the environment (see the crate docs of `flowlens_lambda`);
//! the AWS clients and the job are built once per container, outside the handler.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), lambda_runtime::Error> {
    // Before the runtime's threads start (see the module's measurements).
    flowlens_engine::malloc::tune();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOWLENS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .with_ansi(false)
        .init();
    let handler = Arc::new(
        flowlens_lambda::Handler::from_env()
            .await
            .map_err(|e| format!("configuration: {e}"))?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            handler
                .handle(event.payload, &event.context.invoked_function_arn)
                .await
        }
    }))
    .await
}
