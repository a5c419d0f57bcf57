# syntax=docker/dockerfile:1
#
# Targets:
#   runtime (default, the last stage)  what ECS runs: a virtualenv with the app and
#                      gunicorn.conf.py, non-root. ship's process images read their
#                      CMD, WORKDIR, ENV, USER and EXPOSE from this stage: keep it last.
#   test               the same virtualenv plus ship and the test group, tests/ and src/:
#                      runs pytest, flake8 and the local cloud (`python -m ship.localcloud serve`)
#
# Reproducible from the commit alone: every third-party package is the version
# uv.lock pins, and the runtime's are checked against its hashes. The builder
# installs the uv that the lock pins (UV_VERSION, kept equal to uv.lock by
# tests/test_packaging.py), which turns uv.lock into the requirements of the app
# alone (`uv export --package hello`): ship and its dependencies never enter the
# runtime image.
#
# Offline (no PyPI inside the build), the host puts the files in build/ first
# (`inv build` does it, through ship.wheelhouse):
#   build/wheelhouse        the app's locked dependencies + uv's wheel
#   build/wheelhouse-test   the test target's locked dependencies
#   build/dist              hello's (and, for the test target, ship's) wheel
# Without them a plain `docker build .` fetches the same locked files from PyPI.
# Where pip needs a private CA bundle, pass it as a secret:
#   --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
#
# BASE_IMAGE must be a Debian-based image with python3 (and its venv module).
# Without a registry, .ci/podman-setup.sh makes one:
#   --build-arg BASE_IMAGE=localhost/ship-python-base:bookworm

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
# On every image a build of this file commits, its intermediate steps and stages (the build cache
# that Podman and Docker's classic builder keep as untagged images) among them: the test sessions
# remove what their builds left by it (ship.container_cli.BUILD_LABEL), whatever tool built.
LABEL ship.build="1"
# A fixed, unprivileged UID, written directly so that bases without useradd work.
RUN echo 'app:x:10001:10001:hello app:/app:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'app:x:10001:' >> /etc/group


FROM base AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
# The lock and the workspace's metadata: this layer and the next change only
# when dependencies do. (The globs let a COPY go on when build/ is absent: a
# COPY needs one source that exists, and uv.lock is harmless among wheels.)
COPY pyproject.toml uv.lock /src/
COPY distributions/ /src/distributions/
COPY uv.lock build/wheelhous[e] /wheels/
# The runtime's virtualenv has no installer at all (--without-pip); uv installs
# into it from outside. Its modules are compiled here (hash-based .pyc: the same
# bytes for the same sources), as the runtime never writes bytecode
# (PYTHONDONTWRITEBYTECODE): gunicorn would otherwise compile Flask and its
# dependencies at every start, 5.9 s to the first /health 200 in a 0.25-vCPU
# container instead of 1.5 s.
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi; \
    python3 -m venv /opt/uv; \
    if ls /wheels/uv-*.whl >/dev/null 2>&1; then \
        /opt/uv/bin/pip install --quiet --no-index --find-links /wheels "uv==${UV_VERSION}"; \
    else \
        echo "build/wheelhouse is empty: installing uv ${UV_VERSION} and the locked dependencies from PyPI" >&2; \
        /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"; \
    fi; \
    ln -s /opt/uv/bin/uv /usr/local/bin/uv; \
    python3 -m venv --without-pip /opt/venv; \
    uv export --frozen --project /src --package hello --no-dev --no-emit-workspace --no-header \
        --output-file /src/requirements.txt; \
    if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; else set --; fi; \
    uv pip install --python /opt/venv/bin/python --require-hashes --no-deps "$@" -r /src/requirements.txt; \
    /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode checked-hash /opt/venv/lib
# The app itself, last: a code change rebuilds from here on.
COPY src/hello/ /src/src/hello/
COPY uv.lock build/dis[t] /dist/
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi; \
    if ! ls /dist/hello-*.whl >/dev/null 2>&1; then \
        uv build --wheel --project /src --package hello --out-dir /dist; \
    fi; \
    uv pip install --python /opt/venv/bin/python --no-deps --no-index /dist/hello-*.whl; \
    /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode checked-hash /opt/venv/lib/python3*/site-packages/hello


# Both distributions and the test group (pytest, flake8, moto, boto3, ...) in a
# copy of the runtime's virtualenv, in a stage of its own: none of it reaches
# the runtime image. Exact versions from uv.lock (one of the tool's dependencies,
# python-terraform, exists only as an sdist, so the host builds its wheel and
# hashes are not required here).
FROM builder AS test-builder
COPY uv.lock build/wheelhouse-tes[t] /wheels-test/
COPY src/ship/ /src/src/ship/
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi; \
    uv export --frozen --project /src --no-default-groups --group test --no-emit-workspace --no-header \
        --no-hashes --output-file /src/requirements-test.txt; \
    if ls /wheels-test/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels-test; else set --; fi; \
    uv pip install --python /opt/venv/bin/python --no-deps "$@" -r /src/requirements-test.txt; \
    if ! ls /dist/ship-*.whl >/dev/null 2>&1; then \
        uv build --wheel --project /src --package ship --out-dir /dist; \
    fi; \
    uv pip install --python /opt/venv/bin/python --no-deps --no-index /dist/ship-*.whl


FROM base AS test
COPY --from=test-builder /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py pyproject.toml README.m[d] setup.cf[g] .flake[8] tox.in[i] ./
COPY src/ src/
COPY tests/ tests/
# `--entrypoint pytest` with no arguments runs the app's tests against the
# installed wheel; the deployment tool's tests need the repository, git,
# Terraform and a container engine, and run on the host (name test files as
# arguments to run others here). `--entrypoint flake8` lints all of /app.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTEST_ADDOPTS="-p no:cacheprovider -m 'not e2e and not container' -o testpaths='tests/test_app.py tests/test_gunicorn.py'"
USER 10001:10001
CMD ["pytest"]


FROM base AS runtime
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=5000
# The image carries the version it was built from (the commit tag). Buildah (Podman 4)
# keys its layer cache for ENV and LABEL by the line as written, so a new APP_VERSION alone
# would get the cached layers of an earlier version (two commits of one tree, one version);
# a RUN's key includes the build arguments it sees, so this check gives each version its own.
ARG APP_VERSION=dev
RUN test -n "${APP_VERSION}"
ENV APP_VERSION=${APP_VERSION}
LABEL org.opencontainers.image.title="hello-ship" \
      org.opencontainers.image.version="${APP_VERSION}"
USER 10001:10001
EXPOSE 5000
# Exec form: gunicorn is PID 1 and receives ECS's SIGTERM itself.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "hello.wsgi:app"]
