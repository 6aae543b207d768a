"""Kiali's health: request error tolerances, workload readiness, and "the worst one wins".

Defaults are Kiali's (config.go, AddHealthDefault): for HTTP, any 5xx makes a node or edge Degraded
and 10% of 5xx makes it Failure; 4xx degrade at 10% and fail at 20%; requests that got no response
(code "-") count like 5xx; gRPC statuses 1-16 like 5xx. Thresholds are inclusive percentages of the
protocol's requests. A workload's readiness is merged in by taking the worse status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

HEALTHY = "Healthy"
DEGRADED = "Degraded"
FAILURE = "Failure"
NOT_READY = "Not Ready"
NA = "NA"
_RANK = {NA: 0, HEALTHY: 1, NOT_READY: 2, DEGRADED: 3, FAILURE: 4}


def worst(*statuses: str) -> str:
    return max(statuses, key=_RANK.__getitem__, default=NA)


@dataclass(frozen=True)
class Tolerance:
    protocol: re.Pattern[str]
    code: re.Pattern[str]
    degraded: float  # percent; 0 means "any"
    failure: float


DEFAULT_TOLERANCES = (
    Tolerance(re.compile("http"), re.compile(r"5\d\d"), 0.0, 10.0),
    Tolerance(re.compile("http"), re.compile(r"4\d\d"), 10.0, 20.0),
    Tolerance(re.compile("grpc"), re.compile(r"[1-9]|1[0-6]"), 0.0, 10.0),
    Tolerance(re.compile("http|grpc"), re.compile("-"), 0.0, 10.0),
)


@lru_cache(maxsize=4096)
def _tolerances_for(protocol: str, code: str) -> tuple[int, ...]:
    """Indexes of the default tolerances a response code counts against."""
    return tuple(
        i for i, t in enumerate(DEFAULT_TOLERANCES) if t.protocol.fullmatch(protocol) and t.code.fullmatch(code)
    )


def request_status(codes: Mapping[str, Mapping[str, float]]) -> str:
    """Health of traffic given as protocol -> response code -> rate; NA when there is none."""
    status = NA
    for protocol, by_code in codes.items():
        total = sum(by_code.values())
        if total <= 0:
            continue
        status = worst(status, HEALTHY)
        errors = [0.0] * len(DEFAULT_TOLERANCES)
        for code, rate in by_code.items():
            for i in _tolerances_for(protocol, code):
                errors[i] += rate
        for tolerance, rate in zip(DEFAULT_TOLERANCES, errors, strict=True):
            share = rate / total * 100
            if share <= 0:
                continue
            if share >= tolerance.failure:
                status = worst(status, FAILURE)
            elif share >= tolerance.degraded:
                status = worst(status, DEGRADED)
    return status


def workload_status(desired: int, available: int, pending: int) -> str:
    """Kiali's workload status: scaled to zero is Not Ready, missing pods degrade, none available fails."""
    if desired == 0:
        return NOT_READY
    if pending > 0 or available == 0:
        return FAILURE
    if available < desired:
        return DEGRADED
    return HEALTHY
