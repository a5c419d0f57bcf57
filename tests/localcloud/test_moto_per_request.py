"""Work moto's server did on every request that the local cloud does once: listing moto's package
directory to read the Host header, and listing a response class's methods to find the operation."""

from __future__ import annotations

import inspect
import os

import moto.backends
import moto.core.responses
from moto.ec2.responses import EC2Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from ship.localcloud.emulator import compat


def test_the_host_lookup_lists_moto_s_package_once(monkeypatch):
    original = moto.backends.list_of_moto_modules
    monkeypatch.setattr(moto.backends, "list_of_moto_modules", original)   # put back afterwards
    expected = list(original())
    listings = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listings.append(path) or real_listdir(path))

    compat.list_moto_modules_once()
    compat.list_moto_modules_once()     # a second call keeps the first listing
    assert len(listings) == 1
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for host in ("127.0.0.1:4566", "localhost:4566", "s3", "ecs"):
        dispatcher.get_backend_for_host(host)
    assert len(listings) == 1, listings
    assert list(moto.backends.list_of_moto_modules()) == expected
    assert dispatcher.get_backend_for_host("ecs") == "ecs"
    assert dispatcher.get_backend_for_host("127.0.0.1:4566") is None


def test_operations_are_found_from_one_listing_per_class(monkeypatch):
    original = moto.core.responses.method_names_from_class
    monkeypatch.setattr(moto.core.responses, "method_names_from_class", original)   # put back afterwards
    calls = []
    real_getmembers = inspect.getmembers
    monkeypatch.setattr(inspect, "getmembers", lambda *a, **k: calls.append(a[0]) or real_getmembers(*a, **k))

    compat.method_names_once()
    compat.method_names_once()
    first = moto.core.responses.method_names_from_class(EC2Response)
    again = moto.core.responses.method_names_from_class(EC2Response)
    assert calls == [EC2Response]
    assert first == again == original(EC2Response)
    assert "describe_vpcs" in first
