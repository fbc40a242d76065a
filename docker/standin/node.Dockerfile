# Stand-in for node:20-slim: Debian 12's nodejs (18) and npm. Node uses its own CA list, so point
# it at the system bundle, which holds the machine's CA certificates.
ARG DEBIAN=jobwire-standin/debian:bookworm
FROM ${DEBIAN}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
