# A static (musl) palisade binary on an empty base image.
#   docker build -t palisade .
#   docker run --rm -p 8080:8080 palisade serve --demo --config /etc/palisade/config/sidecar.yaml
#   docker run --rm -p 8080:8080 -e PALISADE_UPSTREAM_URL=https://api.deepseek.com/v1 \
#     -e PALISADE_UPSTREAM_API_KEY=$DEEPSEEK_API_KEY palisade
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml declares the benches: cargo refuses a manifest whose targets are missing.
COPY benches ./benches
RUN cargo build --release --locked && strip target/release/palisade

FROM scratch
COPY --from=build /src/target/release/palisade /usr/local/bin/palisade
COPY policies /etc/palisade/policies
COPY config/sidecar.yaml /etc/palisade/config/sidecar.yaml
# TLS roots are compiled in (rustls + webpki-roots): no CA bundle needed.
ENV PALISADE_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/palisade"]
CMD ["serve", "--config", "/etc/palisade/config/sidecar.yaml"]
