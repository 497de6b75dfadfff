# -*- test-case-name: tests.client.test_fingerprint -*-
"""
The client's hardware fingerprint: a hash of system data that stays the
same for the life of the machine, so keys derived with it are useless on
another machine.

Each kind of data is an L{IFingerprintSource} that reads one place (a file
under C{/etc}, C{/sys} or C{/proc}) and answers L{None} when this machine
does not have it.  L{compute_fingerprint} hashes what the available sources
read, each under its name; which sources were available is part of the
hash, so a machine that loses a source gets a different fingerprint rather
than a weaker one.  The raw values never leave this module except inside
the hash.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from zope.interface import Attribute, Interface, implementer

from suto_server.core.keyschedule import (
    FINGERPRINT_SIZE,
    KeyScheduleError,
    encode_parts,
)


class IFingerprintSource(Interface):
    """
    One piece of system data that identifies a client machine and rarely
    changes (a machine ID, a firmware UUID, a network card's burned-in
    address).  The client hashes what its sources read into its hardware
    fingerprint; see L{Fingerprint}.
    """

    name = Attribute(
        "A short fixed L{str} naming the source; it is hashed with the "
        "value, so it must never change."
    )

    def read():
        """
        Read the value on this machine.

        @return: the value as a non-empty L{str}, or L{None} when this
            machine does not provide it or it cannot be read.  Never
            raises for an absent or unreadable source.
        """


MACHINE_ID_PATH = "/etc/machine-id"
DMI_PRODUCT_UUID_PATH = "/sys/class/dmi/id/product_uuid"
NET_CLASS_DIRECTORY = "/sys/class/net"
CPUINFO_PATH = "/proc/cpuinfo"

#: Most bytes read from a one-value file; real ones hold a line.
MAX_VALUE_FILE = 4096
#: Most bytes of /proc/cpuinfo read; the first CPU's block comes first.
MAX_CPUINFO = 65536

_LABEL = b"suto/v1/fingerprint"
#: The kernel's NET_ADDR_PERM: the address the hardware came with.
_ADDR_PERMANENT = "0"
_HARDWARE_ADDRESS = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2})+")
_PLACEHOLDER_UUID = re.compile(r"(?:0|f|-)+")


class FingerprintError(Exception):
    """
    No fingerprint can be computed: no source is available, or a source
    misbehaved.
    """


def _read_value(path: str, limit: int = MAX_VALUE_FILE) -> str | None:
    """
    The stripped text of a small file, or L{None} when it is missing,
    unreadable (C{product_uuid} is often root-only), too long, not UTF-8
    or blank.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        return None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text or None


@implementer(IFingerprintSource)
class MachineIdSource:
    """
    The systemd machine ID, generated once at installation.
    """

    name = "machine-id"

    def __init__(self, path: str = MACHINE_ID_PATH) -> None:
        self.path = path

    def read(self) -> str | None:
        return _read_value(self.path)


@implementer(IFingerprintSource)
class DmiProductUuidSource:
    """
    The system UUID the firmware reports.  Firmware that reports an
    all-zero or all-F placeholder identifies nothing, so those count as
    absent.
    """

    name = "dmi-product-uuid"

    def __init__(self, path: str = DMI_PRODUCT_UUID_PATH) -> None:
        self.path = path

    def read(self) -> str | None:
        value = _read_value(self.path)
        if value is None:
            return None
        value = value.lower()
        if _PLACEHOLDER_UUID.fullmatch(value):
            return None
        return value


@implementer(IFingerprintSource)
class PermanentMacSource:
    """
    The burned-in addresses of the machine's physical network interfaces,
    sorted and joined with commas.

    Only entries with a C{device} link are hardware (loopback, bridges,
    tunnels and other virtual interfaces have none), and only an address
    whose C{addr_assign_type} is 0 is the one the hardware came with: a
    random or administratively set address (e.g. Wi-Fi MAC randomisation)
    changes and must not count.  Nor do adapters on a removable bus (a USB
    Ethernet dongle, a dock's NIC): plugging a laptop into its dock must
    not change the machine's fingerprint.  Interface names are left out,
    so renaming an interface does not change the value.
    """

    name = "permanent-mac"

    def __init__(self, directory: str = NET_CLASS_DIRECTORY) -> None:
        self.directory = directory

    def read(self) -> str | None:
        try:
            interfaces = os.listdir(self.directory)
        except OSError:
            return None
        addresses = set()
        for interface in interfaces:
            path = os.path.join(self.directory, interface)
            device = os.path.join(path, "device")
            if not os.path.lexists(device) or _removable(device):
                continue
            assign_type = _read_value(os.path.join(path, "addr_assign_type"))
            if assign_type != _ADDR_PERMANENT:
                continue
            address = _read_value(os.path.join(path, "address"))
            if address is None:
                continue
            address = address.lower()
            all_zero = not address.strip("0:")
            if _HARDWARE_ADDRESS.fullmatch(address) and not all_zero:
                addresses.add(address)
        return ",".join(sorted(addresses)) or None


#: The buses whose network adapters come and go with the user.
_REMOVABLE_BUSES = frozenset({"usb"})


def _removable(device: str) -> bool:
    """
    Is the sysfs C{device} on a removable bus?  Its C{subsystem} link names
    the bus (C{.../bus/usb}, C{.../bus/pci}).
    """
    subsystem = os.path.realpath(os.path.join(device, "subsystem"))
    return os.path.basename(subsystem) in _REMOVABLE_BUSES


@implementer(IFingerprintSource)
class CpuModelSource:
    """
    The model name of the first CPU in C{/proc/cpuinfo}.  Absent on
    architectures whose kernel prints no C{model name} line.
    """

    name = "cpu-model"

    def __init__(self, path: str = CPUINFO_PATH) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_CPUINFO)
        except OSError:
            return None
        for line in data.splitlines():
            key, separator, value = line.partition(b":")
            if separator and key.strip() == b"model name":
                try:
                    return value.decode("utf-8").strip() or None
                except UnicodeDecodeError:
                    return None
        return None


def default_sources() -> list[IFingerprintSource]:
    """
    @return: every source, reading this machine's real files.
    """
    return [
        MachineIdSource(),
        DmiProductUuidSource(),
        PermanentMacSource(),
        CpuModelSource(),
    ]


@dataclass(frozen=True)
class Fingerprint:
    """
    A computed hardware fingerprint.

    @ivar hash: the L{FINGERPRINT_SIZE}-byte SHA-256 digest; a key input,
        so it is kept out of C{repr}.
    @ivar used: the names of the sources that contributed, sorted; safe
        to show, as it says which data was used but not what it was.
    """

    hash: bytes = field(repr=False)
    used: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.hash, bytes) or len(self.hash) != FINGERPRINT_SIZE:
            raise FingerprintError(f"a fingerprint hash is {FINGERPRINT_SIZE} bytes")
        if not isinstance(self.used, tuple) or not all(
            isinstance(name, str) for name in self.used
        ):
            raise FingerprintError("used must be a tuple of source names")

    def hexdigest(self) -> str:
        """
        @return: the hash as lowercase hex, for display to an operator
            comparing enrolled machines.
        """
        return self.hash.hex()


def compute_fingerprint(sources: Iterable[IFingerprintSource]) -> Fingerprint:
    """
    Hash what the available sources read.

    The hash is SHA-256 over the canonical encoding of the label followed,
    for each available source in order of name, by its name and value.
    Missing sources do not contribute, and since names are hashed with the
    values, losing a source changes the hash.

    @param sources: L{IFingerprintSource} providers with distinct names.
    @return: the L{Fingerprint}.
    @raise FingerprintError: no source is available, two sources share a
        name, or a source gave something other than a non-empty string or
        L{None}.
    """
    ordered = sorted(sources, key=lambda source: str(source.name))
    names = [source.name for source in ordered]
    if not all(isinstance(name, str) and name for name in names):
        raise FingerprintError("every source needs a non-empty name")
    if len(set(names)) != len(names):
        raise FingerprintError("two sources share a name")
    parts = [_LABEL]
    used = []
    for source in ordered:
        value = source.read()
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise FingerprintError(f"source {source.name} gave an invalid value")
        parts += [source.name, value]
        used.append(source.name)
    if not used:
        raise FingerprintError("no fingerprint source is available on this machine")
    try:
        encoded = encode_parts(*parts)
    except KeyScheduleError:
        raise FingerprintError("a source gave text that is not Unicode") from None
    return Fingerprint(hashlib.sha256(encoded).digest(), tuple(used))
