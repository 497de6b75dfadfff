# -*- test-case-name: tests.test_locations -*-
"""
Network locations: where in the building a device may enroll from.

IT names a location on the command line as an IP address, a network in
CIDR notation, or a name from the locations file, which maps labels IT
already uses (a wall jack, a switch port) to the subnets behind them::

    # name: CIDR, CIDR...
    bldg2-f3-jack17: 10.2.3.17/32
    lab-east: 10.9.0.0/24, 2001:db8:9::/64

so that windows and audit records say "bldg2-f3-jack17" rather than an
address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

#: Largest locations file read.
MAX_FILE_BYTES = 1024 * 1024

#: The widest network a window may cover unless it is asked for as wide,
#: as a prefix length by IP version.  A window is for one device at one
#: place; a /16 is already a campus, so a wider network (a /8, an IPv6
#: /32) is most likely a mistyped location, and its directed broadcast
#: would reach every host of that range.
WIDEST_PREFIX = {4: 16, 6: 48}


class LocationError(ValueError):
    """A location, or a line of the locations file, is not valid."""


@dataclass(frozen=True)
class Location:
    """
    Networks a device may be in, with the operator's name for them.
    """

    networks: tuple
    name: str | None = None

    def contains(self, address: str) -> bool:
        """
        Is C{address} (as a peer reports it) inside this location?
        IPv4-mapped IPv6 addresses count as their IPv4 form.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def describe(self) -> str:
        nets = ",".join(str(network) for network in self.networks)
        return f"{self.name} ({nets})" if self.name else nets


def _networks(text: str) -> tuple:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise LocationError("empty network in list")
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as error:
        raise LocationError(str(error)) from None


class Locations:
    """
    The named locations of the locations file (possibly none).
    """

    def __init__(self, named: dict[str, Location] | None = None) -> None:
        self._named = dict(named or {})

    @classmethod
    def from_file(cls, path: str) -> Locations:
        """
        @raise LocationError: naming the line that is wrong.
        @raise OSError: the file cannot be read.
        """
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise LocationError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LocationError(f"{path}: not UTF-8") from None
        named = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, colon, rest = line.partition(":")
            name = name.strip()
            if not colon or not _NAME.match(name):
                raise LocationError(
                    f"{path} line {number}: expected 'name: CIDR, CIDR...'"
                )
            if name in named:
                raise LocationError(f"{path} line {number}: {name} named twice")
            try:
                named[name] = Location(_networks(rest), name)
            except LocationError as error:
                raise LocationError(f"{path} line {number}: {error}") from None
        return cls(named)

    def name_of(self, address: str) -> str | None:
        """
        The name of the first named location that contains C{address}, for
        reports; L{None} if none does.
        """
        for name, location in self._named.items():
            if location.contains(address):
                return name
        return None

    def describe_address(self, address: str) -> str:
        """
        C{address} as alerts name it: followed by its location's name in
        parentheses when one contains it.
        """
        name = self.name_of(address)
        return f"{address} ({name})" if name else address

    def resolve(self, text: str) -> Location:
        """
        Turn what IT typed into a L{Location}: a name from the file, an
        address, or a network.

        @raise LocationError: none of those.
        """
        text = text.strip()
        if text in self._named:
            return self._named[text]
        try:
            return Location(_networks(text))
        except LocationError:
            raise LocationError(
                f"{text!r} is neither a known location name nor an address "
                f"or network"
            ) from None
