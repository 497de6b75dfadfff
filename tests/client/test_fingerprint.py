"""
The hardware fingerprint: each source against a fake file tree, and the
hash over what the sources read.
"""

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_client.fingerprint import (
    CpuModelSource,
    DmiProductUuidSource,
    Fingerprint,
    FingerprintError,
    IFingerprintSource,
    MachineIdSource,
    PermanentMacSource,
    compute_fingerprint,
    default_sources,
)
from tests.support.sources import FixedSource

CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Example CPU @ 2.00GHz
flags\t\t: fpu vme

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Another CPU
"""

# The fingerprint vector of docs/PROTOCOL.md: these values, all present...
VECTOR_VALUES = {
    "machine-id": "0123456789abcdef0123456789abcdef",
    "dmi-product-uuid": "9f3c2b1a-5d4e-4f60-8a7b-1c2d3e4f5a6b",
    "permanent-mac": "52:54:00:12:34:56",
    "cpu-model": "Example CPU @ 2.00GHz",
}
VECTOR = "8f013329f6cf900372f8f5bb608c7becf1b2461d6838e16ab1f0ce614eca0944"
# ...and the same without the permanent-mac source.
VECTOR_WITHOUT_MAC = "1ec1cef4cb928329c1c6812aeff7b2501c0a21c244a70a18cdd4a90ba6534335"


def _fixed_sources(values):
    return [FixedSource(value, name=name) for name, value in values.items()]


class FileTestMixin:
    """
    Write files under a fresh temporary directory.
    """

    def write(self, relative, content):
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(path, "wb") as handle:
            handle.write(content)
        return path

    def setUp(self):
        self.root = self.mktemp()
        os.makedirs(self.root)


class SourceInterfaceTests(SynchronousTestCase):
    """
    Every source provides L{IFingerprintSource}.
    """

    def test_verify_each_source(self):
        """
        Each source class, as built by L{default_sources} and with paths
        of its own, passes C{verifyObject}, and the names are distinct.
        """
        sources = default_sources()
        self.assertEqual(
            [type(source) for source in sources],
            [MachineIdSource, DmiProductUuidSource, PermanentMacSource, CpuModelSource],
        )
        for source in sources + [
            MachineIdSource("/nonexistent"),
            DmiProductUuidSource("/nonexistent"),
            PermanentMacSource("/nonexistent"),
            CpuModelSource("/nonexistent"),
        ]:
            self.assertTrue(verifyObject(IFingerprintSource, source))
        self.assertEqual(len({source.name for source in sources}), 4)

    def test_default_paths(self):
        """
        The default sources read the real system locations.
        """
        machine, dmi, mac, cpu = default_sources()
        self.assertEqual(machine.path, "/etc/machine-id")
        self.assertEqual(dmi.path, "/sys/class/dmi/id/product_uuid")
        self.assertEqual(mac.directory, "/sys/class/net")
        self.assertEqual(cpu.path, "/proc/cpuinfo")


class MachineIdSourceTests(FileTestMixin, SynchronousTestCase):
    """
    L{MachineIdSource} reads the machine ID file.
    """

    def test_reads_stripped(self):
        """
        The value is the file's content without the trailing newline.
        """
        path = self.write("machine-id", "0123456789abcdef0123456789abcdef\n")
        self.assertEqual(
            MachineIdSource(path).read(), "0123456789abcdef0123456789abcdef"
        )

    def test_missing(self):
        """
        A missing file means the source is unavailable.
        """
        self.assertIsNone(MachineIdSource(os.path.join(self.root, "absent")).read())

    def test_empty(self):
        """
        A blank file identifies nothing.
        """
        self.assertIsNone(MachineIdSource(self.write("machine-id", " \n")).read())

    def test_oversized_or_binary(self):
        """
        A file too long to be a value, or not UTF-8, is ignored.
        """
        self.assertIsNone(MachineIdSource(self.write("big", "a" * 5000)).read())
        self.assertIsNone(MachineIdSource(self.write("bin", b"\xff\xfe")).read())

    def test_directory(self):
        """
        A path that is a directory reads as unavailable, not as an error.
        """
        self.assertIsNone(MachineIdSource(self.root).read())


class DmiProductUuidSourceTests(FileTestMixin, SynchronousTestCase):
    """
    L{DmiProductUuidSource} reads the firmware's system UUID.
    """

    def test_reads_lowercase(self):
        """
        The UUID is read and brought to lower case, as firmware differs in
        how it prints it.
        """
        path = self.write("product_uuid", "9F3C2B1A-5D4E-4F60-8A7B-1C2D3E4F5A6B\n")
        self.assertEqual(
            DmiProductUuidSource(path).read(), "9f3c2b1a-5d4e-4f60-8a7b-1c2d3e4f5a6b"
        )

    def test_read_errors(self):
        """
        Any error opening or reading the path (here: it is a directory,
        or lies under a regular file) means the source is unavailable.
        """
        afile = self.write("plain", "x")
        self.assertIsNone(DmiProductUuidSource(self.root).read())
        self.assertIsNone(
            DmiProductUuidSource(os.path.join(afile, "product_uuid")).read()
        )

    def test_permission_denied(self):
        """
        A file the agent may not read (root-only on most systems) means
        the source is unavailable.
        """
        path = self.write("product_uuid", "9f3c2b1a-5d4e-4f60-8a7b-1c2d3e4f5a6b\n")
        os.chmod(path, 0)
        if os.access(path, os.R_OK):
            self.skipTest("permissions are not enforced for this user")
        self.assertIsNone(DmiProductUuidSource(path).read())

    def test_placeholders(self):
        """
        All-zero and all-F placeholder UUIDs count as absent.
        """
        for placeholder in (
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        ):
            path = self.write("product_uuid", placeholder + "\n")
            self.assertIsNone(DmiProductUuidSource(path).read())


class PermanentMacSourceTests(FileTestMixin, SynchronousTestCase):
    """
    L{PermanentMacSource} reads the burned-in addresses of physical
    interfaces from a C{/sys/class/net}-shaped tree.
    """

    def interface(self, name, address, assign_type="0", device=True, bus="pci"):
        """
        Add an interface to the fake tree; C{device} makes it physical,
        with a C{device} symbolic link as sysfs has, whose C{subsystem}
        link names its C{bus}.
        """
        self.write(f"net/{name}/address", address + "\n")
        if assign_type is not None:
            self.write(f"net/{name}/addr_assign_type", assign_type + "\n")
        if device:
            root = os.path.abspath(self.root)
            target = os.path.join(root, "devices", name)
            os.makedirs(target)
            os.makedirs(os.path.join(root, "bus", bus), exist_ok=True)
            os.symlink(os.path.join(root, "bus", bus), os.path.join(target, "subsystem"))
            os.symlink(target, os.path.join(self.root, "net", name, "device"))

    def source(self):
        return PermanentMacSource(os.path.join(self.root, "net"))

    def test_physical_permanent_only(self):
        """
        Of a physical NIC with a permanent address, a virtual interface
        without a device link, a physical NIC with a random address and
        the loopback, only the first counts.
        """
        self.interface("enp3s0", "52:54:00:12:34:56")
        self.interface("docker0", "02:42:ac:11:00:01", device=False)
        self.interface("wlp2s0", "3a:11:22:33:44:55", assign_type="1")
        self.interface("lo", "00:00:00:00:00:00", device=False)
        self.assertEqual(self.source().read(), "52:54:00:12:34:56")

    def test_removable_adapters_left_out(self):
        """
        A USB adapter (a dongle, a dock's NIC) does not count, even with a
        permanent address, so docking a laptop keeps its fingerprint.
        """
        self.interface("enp3s0", "52:54:00:12:34:56")
        self.interface("enx00e04c680001", "00:e0:4c:68:00:01", bus="usb")
        self.assertEqual(self.source().read(), "52:54:00:12:34:56")

    def test_sorted_and_joined(self):
        """
        Several permanent addresses are lowercased, deduplicated, sorted
        and joined with commas, whatever the interface names.
        """
        self.interface("eth1", "AA:BB:CC:00:00:02")
        self.interface("eth0", "aa:bb:cc:00:00:09")
        self.interface("eth2", "aa:bb:cc:00:00:02")
        self.assertEqual(self.source().read(), "aa:bb:cc:00:00:02,aa:bb:cc:00:00:09")

    def test_set_or_unknown_assignment(self):
        """
        An address set by software (type 3) or whose assignment type
        cannot be read does not count.
        """
        self.interface("eth0", "52:54:00:12:34:56", assign_type="3")
        self.interface("eth1", "52:54:00:12:34:57", assign_type=None)
        self.assertIsNone(self.source().read())

    def test_malformed_or_zero_address(self):
        """
        Addresses that are not colon-separated hex, or are all zeros, are
        skipped.
        """
        self.interface("eth0", "not-an-address")
        self.interface("eth1", "00:00:00:00:00:00")
        self.interface("eth2", "52:54:00:12:34:56")
        self.assertEqual(self.source().read(), "52:54:00:12:34:56")

    def test_no_physical_interface(self):
        """
        With only virtual interfaces the source is unavailable.
        """
        self.interface("lo", "00:00:00:00:00:00", device=False)
        self.interface("br0", "02:00:00:00:00:01", device=False)
        self.assertIsNone(self.source().read())

    def test_missing_directory(self):
        """
        A machine without the directory has no such source.
        """
        self.assertIsNone(self.source().read())


class CpuModelSourceTests(FileTestMixin, SynchronousTestCase):
    """
    L{CpuModelSource} reads the first CPU's model name.
    """

    def test_first_cpu(self):
        """
        The model name of processor 0 is the value.
        """
        path = self.write("cpuinfo", CPUINFO)
        self.assertEqual(CpuModelSource(path).read(), "Example CPU @ 2.00GHz")

    def test_no_model_name(self):
        """
        A cpuinfo without a model name line (as on some architectures)
        means the source is unavailable.
        """
        path = self.write("cpuinfo", "processor\t: 0\nBogoMIPS\t: 48.00\n")
        self.assertIsNone(CpuModelSource(path).read())

    def test_missing(self):
        """
        A missing file means the source is unavailable.
        """
        self.assertIsNone(CpuModelSource(os.path.join(self.root, "absent")).read())


class ComputeFingerprintTests(SynchronousTestCase):
    """
    L{compute_fingerprint} hashes what the available sources read.
    """

    def test_vector(self):
        """
        The fixed values give the hash docs/PROTOCOL.md prints, and every
        source is listed as used, in order of name.
        """
        fingerprint = compute_fingerprint(_fixed_sources(VECTOR_VALUES))
        self.assertEqual(fingerprint.hexdigest(), VECTOR)
        self.assertEqual(
            fingerprint.used,
            ("cpu-model", "dmi-product-uuid", "machine-id", "permanent-mac"),
        )

    def test_vector_without_source(self):
        """
        Without the permanent-mac source the hash is the specification's
        second vector, and the source is not listed.
        """
        values = dict(VECTOR_VALUES, **{"permanent-mac": None})
        fingerprint = compute_fingerprint(_fixed_sources(values))
        self.assertEqual(fingerprint.hexdigest(), VECTOR_WITHOUT_MAC)
        self.assertNotIn("permanent-mac", fingerprint.used)

    def test_stable_and_order_independent(self):
        """
        Repeated computations agree, whatever order the sources are given
        in.
        """
        sources = _fixed_sources(VECTOR_VALUES)
        first = compute_fingerprint(sources)
        self.assertEqual(compute_fingerprint(sources), first)
        self.assertEqual(compute_fingerprint(list(reversed(sources))), first)

    def test_value_change(self):
        """
        Changing any one value changes the hash.
        """
        baseline = compute_fingerprint(_fixed_sources(VECTOR_VALUES)).hash
        for name in VECTOR_VALUES:
            values = dict(VECTOR_VALUES, **{name: VECTOR_VALUES[name] + "x"})
            self.assertNotEqual(
                compute_fingerprint(_fixed_sources(values)).hash, baseline, name
            )

    def test_names_are_hashed(self):
        """
        The same value under another source name gives another hash, so
        values cannot be moved between sources.
        """
        first = compute_fingerprint([FixedSource("v", name="machine-id")])
        second = compute_fingerprint([FixedSource("v", name="cpu-model")])
        self.assertNotEqual(first.hash, second.hash)

    def test_file_backed(self):
        """
        Real sources over files combine, and a file that disappears
        changes the hash.
        """
        root = self.mktemp()
        os.makedirs(root)
        machine_id = os.path.join(root, "machine-id")
        cpuinfo = os.path.join(root, "cpuinfo")
        with open(machine_id, "w") as handle:
            handle.write("0123456789abcdef0123456789abcdef\n")
        with open(cpuinfo, "w") as handle:
            handle.write(CPUINFO)
        sources = [MachineIdSource(machine_id), CpuModelSource(cpuinfo)]
        both = compute_fingerprint(sources)
        self.assertEqual(both.used, ("cpu-model", "machine-id"))
        os.remove(cpuinfo)
        alone = compute_fingerprint(sources)
        self.assertEqual(alone.used, ("machine-id",))
        self.assertNotEqual(alone.hash, both.hash)

    def test_none_available(self):
        """
        With no source available, or none at all, there is no fingerprint.
        """
        self.assertRaises(
            FingerprintError,
            compute_fingerprint,
            _fixed_sources(dict.fromkeys(VECTOR_VALUES)),
        )
        self.assertRaises(FingerprintError, compute_fingerprint, [])

    def test_misbehaving_sources(self):
        """
        Duplicate or empty names, and values that are empty, not text or
        not encodable, are refused.
        """
        for sources in (
            [FixedSource("1", name="a"), FixedSource("2", name="a")],
            [FixedSource("1", name="")],
            [FixedSource("", name="a")],
            [FixedSource(b"bytes", name="a")],
            [FixedSource("\ud800", name="a")],
        ):
            self.assertRaises(FingerprintError, compute_fingerprint, sources)

    def test_repr_hides_hash(self):
        """
        The hash, a key input, does not appear in the C{repr}; the used
        source names do.
        """
        fingerprint = compute_fingerprint(_fixed_sources(VECTOR_VALUES))
        text = repr(fingerprint)
        self.assertNotIn(fingerprint.hexdigest(), text)
        self.assertNotIn(repr(fingerprint.hash), text)
        self.assertIn("machine-id", text)

    def test_fingerprint_checks_fields(self):
        """
        A L{Fingerprint} must hold a 32-byte hash and a tuple of names.
        """
        self.assertRaises(FingerprintError, Fingerprint, bytes(31), ("a",))
        self.assertRaises(FingerprintError, Fingerprint, bytes(32), ["a"])
        self.assertEqual(Fingerprint(bytes(32), ("a",)).hexdigest(), "00" * 32)
