# syntax=docker/dockerfile:1
# The production image: build with the Rust toolchain, run on a slim Debian with the binary
# alone, as an unprivileged user.
#
#   docker build -t authgraph .
#   docker run -p 8000:8000 \
#     -e JWT_PRIVATE_KEY="$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)" \
#     -e MFA_ENCRYPTION_KEY=$(openssl rand -base64 32) \
#     -e PUBLIC_URL=https://app.example.com -e SMTP_URL=smtps://user:pass@smtp.example.com:465 \
#     -e MAIL_FROM='Example <no-reply@example.com>' authgraph

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features otel \
 && cp target/release/authgraph /usr/local/bin/authgraph \
 && strip /usr/local/bin/authgraph

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home authgraph
COPY --from=build /usr/local/bin/authgraph /usr/local/bin/authgraph
USER authgraph
WORKDIR /data
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite:///data/authgraph.db?mode=rwc
EXPOSE 8000
VOLUME ["/data"]
# The binary checks itself: no curl in the image.
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
  CMD ["authgraph", "healthcheck"]
# tini forwards SIGTERM, so in-flight requests finish before the container stops.
ENTRYPOINT ["/usr/bin/tini", "--", "authgraph"]
CMD ["serve"]
