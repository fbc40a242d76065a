# Stand-in for debian:bookworm-slim, for machines with no image registry: Debian 12 from
# debootstrap (scripts/containers.sh imports it as jobwire-standin/rootfs:bookworm), plus
# ca-certificates so that the machine's own CA certificates (copied into
# /usr/local/share/ca-certificates before the import) are trusted by apt, pip and npm.
ARG ROOTFS=jobwire-standin/rootfs:bookworm
FROM ${ROOTFS}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# As in the official image: dpkg skips its fsync calls (a container's file system is thrown away
# on a crash anyway); installs take a fraction of the time, their result is the same.
RUN echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/docker-apt-speedup \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
CMD ["bash"]
