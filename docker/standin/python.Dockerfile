# Stand-in for python:3.12-slim: Debian 12's python3 (3.11) with venv and pip.
ARG DEBIAN=jobwire-standin/debian:bookworm
FROM ${DEBIAN}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin \
 && ln -s /usr/bin/python3 /usr/local/bin/python
# pip in venvs: trust the system bundle, which holds the machine's CA certificates.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
