"""The proxies' view of mesh configuration, derived from stored objects once per change of the store.

Envoy does not look up Services, endpoints, VirtualServices and PeerAuthentications for each request:
istiod pushes it configuration when something changes. The sandbox's proxies share one `ConfigView`
per store with the same effect: a derived answer (a Service's ready endpoints, a pod's mesh identity,
the VirtualService for a host, the mTLS mode of a port) is computed on first use and reused until the
store's resourceVersion moves, when every answer is dropped and recomputed on demand. Requests keep
their own per-request logic (matching, weights, faults); only what depends on stored objects alone
is remembered. Answers are shared: callers must not change them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from sandbox.store import Store

T = TypeVar("T")


class ConfigView:
    """Memoised answers over a store, valid for one resourceVersion of it."""

    __slots__ = ("store", "_rv", "_memo")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rv = -1
        self._memo: dict[Hashable, object] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer for `key`, from `compute()` unless known for the store's current state."""
        if self.store.rv != self._rv:
            self._memo.clear()
            self._rv = self.store.rv
        try:
            return self._memo[key]  # type: ignore[return-value]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    @classmethod
    def of(cls, store: Store) -> ConfigView:
        """The one view of `store`, shared by every proxy on it."""
        view = getattr(store, "_config_view", None)
        if view is None:
            view = cls(store)
            store._config_view = view  # type: ignore[attr-defined]
        return view
