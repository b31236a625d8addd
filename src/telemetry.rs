//! Log output (human-readable or JSON lines, filtered by `RUST_LOG`) and, with the `otel`
//! feature, trace export over OTLP configured by the standard `OTEL_*` variables.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// What is logged when `RUST_LOG` is unset: our events, without the driver's per-statement lines.
pub(crate) const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// Keeps the trace exporter alive; dropping it sends the spans still buffered.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
    }
}

/// Installs the global subscriber. Call once, at startup, and keep the result until exit.
pub fn init(format: LogFormat) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Standard error, so standard output stays clean for what commands print.
    let pretty = (format == LogFormat::Pretty).then(|| fmt::layer().with_writer(std::io::stderr));
    let json = (format == LogFormat::Json).then(|| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(pretty)
        .with(json);

    #[cfg(feature = "otel")]
    {
        let tracer = otel::provider();
        let layer = tracer.as_ref().map(|provider| {
            use opentelemetry::trace::TracerProvider as _;
            tracing_opentelemetry::layer().with_tracer(provider.tracer("authgraph"))
        });
        registry.with(layer).init();
        if tracer.is_some() {
            tracing::info!("exporting traces over OTLP");
        }
        Telemetry { tracer }
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.init();
        Telemetry {}
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// A tracer provider when the environment asks for export (`OTEL_EXPORTER_OTLP_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, unless `OTEL_SDK_DISABLED=true`). Endpoint,
    /// headers, timeout, sampler and resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`)
    /// are read from the standard variables by the OpenTelemetry SDK itself.
    pub fn provider() -> Option<SdkTracerProvider> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("warning: cannot set up OTLP trace export: {error}");
                return None;
            }
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(var("OTEL_SERVICE_NAME").unwrap_or_else(|| "authgraph".into()))
            .build();
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build(),
        )
    }
}
