"""Name -> object lookup tables filled by a decorator at the definition site.

Models, datasets, networks, priors and metrics are chosen by the name the command line spells
(`vimae-l`, `dcgan28`, ...). A miss raises `VimaeError` listing the valid names, instead of an
elif chain that has to be kept in sync by hand.
"""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vimae.errors import VimaeError

T = TypeVar("T")

# Every registry by its kind ("model", "network", ...), so that a setting can name the registry
# its valid values come from (`vimae.config.setting(choices="network")`) without importing it.
REGISTRIES: dict[str, "Registry"] = {}


class Registry(Generic[T]):
    """A named table of `T` (classes, factories or presets) with a registering decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        REGISTRIES[kind] = self

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` above a class or function adds it."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise VimaeError(f"unknown {self.kind} {name!r}; choose one of: {valid}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)
