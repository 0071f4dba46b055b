# flowlens for Fargate (or any container host): `flowlens scan` as a one-shot
# scheduled task, `flowlens watch` as a long-running service.
#
#   docker build -t flowlens .
#   docker run --rm -e AWS_REGION=us-east-1 flowlens watch s3://LOGS/AWSLogs/ \
#       --state s3://STATE/flowlens/state --security-hub --interval 5m --lookback 2d
#
# Build stage: the release binary, dependencies cached in their own layer.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p flowlens --bin flowlens \
 && install -D -m 0755 target/release/flowlens /out/flowlens

# Run stage: glibc + CA certificates only, no shell, runs as the non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/flowlens /usr/local/bin/flowlens
USER nonroot:nonroot
ENV FLOWLENS_LOG=info
ENTRYPOINT ["/usr/local/bin/flowlens"]
CMD ["--help"]
