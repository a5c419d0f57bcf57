# syntax=docker/dockerfile:1
#
# Targets:
#   runtime (default, the last stage)  what ECS runs: a virtualenv with the app and
#                      gunicorn.conf.py, non-root. ship's process images read their
#                      CMD, WORKDIR, ENV, USER and EXPOSE from this stage: keep it last.
#   test               the same virtualenv plus the dev extra, tests/ and src/: runs
#                      pytest, flake8 and the local cloud (`python -m ship.localcloud serve`)
#
# Offline, reproducible builds install from wheelhouses the host builds first
# (`inv build` does this):
#   pip wheel --wheel-dir build/wheelhouse .                 # app + runtime deps
#   pip wheel --wheel-dir build/wheelhouse-test '.[dev]'     # test target only
# Without them a plain `docker build .` installs from PyPI instead (slower, not
# pinned). Where pip needs a private CA bundle, pass it as a secret:
#   --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
#
# BASE_IMAGE must be a Debian-based image with python3 (and its venv module).
# Without a registry, .ci/podman-setup.sh makes one:
#   --build-arg BASE_IMAGE=localhost/ship-python-base:bookworm

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
# A fixed, unprivileged UID, written directly so that bases without useradd work.
RUN echo 'app:x:10001:10001:hello app:/app:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'app:x:10001:' >> /etc/group


FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# `python3 -m venv` works for both python3 locations (/usr/local/bin in the
# official image, /usr/bin in Debian's); ensurepip needs no network.
RUN python3 -m venv /opt/venv
# The globs let the build go on when build/wheelhouse or README.md is absent
# (a COPY needs one source that exists: pyproject.toml, harmless among wheels).
COPY pyproject.toml build/wheelhous[e] /wheels/
COPY pyproject.toml README.m[d] /src/
COPY src/ /src/src/
# The runtime needs no installer: pip and setuptools are removed at the end.
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    if ls /wheels/hello_ship-*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-index --find-links /wheels hello-ship; \
    else \
        echo "build/wheelhouse has no hello_ship wheel: installing from PyPI" >&2; \
        /opt/venv/bin/pip install /src; \
    fi; \
    /opt/venv/bin/pip uninstall --yes --quiet pip setuptools


# The dev extra (pytest, flake8, moto, boto3, ...) goes into a copy of the
# runtime's virtualenv in a stage of its own, so the wheels stay out of the
# test image.
FROM builder AS test-builder
COPY pyproject.toml build/wheelhouse-tes[t] /wheels-test/
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/python -m ensurepip --default-pip >/dev/null; \
    if ls /wheels-test/*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-index --find-links /wheels-test 'hello-ship[dev]'; \
    else \
        echo "build/wheelhouse-test is empty: installing the dev extra from PyPI" >&2; \
        /opt/venv/bin/pip install '/src[dev]'; \
    fi


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
# The image carries the version it was built from (the commit tag).
ARG APP_VERSION=dev
ENV APP_VERSION=${APP_VERSION}
LABEL org.opencontainers.image.title="hello-ship" \
      org.opencontainers.image.version="${APP_VERSION}"
USER 10001:10001
EXPOSE 5000
# Exec form: gunicorn is PID 1 and receives ECS's SIGTERM itself.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "hello.wsgi:app"]
