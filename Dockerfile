# Junction in a container. Build: docker build -t junction .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p junction-server --bin junction

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/junction junction && mkdir -p /var/lib/junction && chown junction /var/lib/junction
COPY --from=build /src/target/release/junction /usr/local/bin/junction
USER junction
WORKDIR /var/lib/junction
ENV JUNCTION_LISTEN=0.0.0.0:8080 JUNCTION_DATA_DIR=/var/lib/junction JUNCTION_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["junction"]
CMD ["serve"]
