"""One faithful stand-in per service (each in a module named as the service), for the tests and the demo."""

from __future__ import annotations

import importlib
from contextlib import AbstractAsyncContextManager
from typing import Protocol, cast

from malcapture.login.contract import Service
from malcapture.standins.base import Demo


class StandInModule(Protocol):
    def demo(self) -> AbstractAsyncContextManager[Demo]: ...


def for_service(service: Service) -> StandInModule:
    return cast(StandInModule, importlib.import_module(f"malcapture.standins.{service.name}"))
