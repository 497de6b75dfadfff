"""
Network locations: what IT may type as a location, which peers fall
inside one, and how the locations file is read and refused.
"""

import os
from ipaddress import ip_network

from twisted.trial.unittest import SynchronousTestCase

from suto_server.locations import (
    MAX_FILE_BYTES,
    Location,
    LocationError,
    Locations,
)


class ResolveTests(SynchronousTestCase):
    """
    L{Locations.resolve} turns an address, a network or a name into a
    L{Location}.
    """

    def setUp(self):
        self.locations = Locations(
            {"lab": Location((ip_network("192.0.2.0/24"),), "lab")}
        )

    def test_address(self):
        """
        A single address is a location of one host, with no name.
        """
        self.assertEqual(
            self.locations.resolve("192.0.2.17"),
            Location((ip_network("192.0.2.17/32"),)),
        )

    def test_ipv6_address(self):
        """
        An IPv6 address is a /128.
        """
        self.assertEqual(
            self.locations.resolve("2001:db8::5"),
            Location((ip_network("2001:db8::5/128"),)),
        )

    def test_cidr(self):
        """
        A network in CIDR notation is taken as it is.
        """
        self.assertEqual(
            self.locations.resolve("198.51.100.0/24"),
            Location((ip_network("198.51.100.0/24"),)),
        )

    def test_cidr_with_host_bits(self):
        """
        A network written with host bits set (as people copy it from an
        interface) is the network it lies in.
        """
        self.assertEqual(
            self.locations.resolve("198.51.100.77/24").networks,
            (ip_network("198.51.100.0/24"),),
        )

    def test_several_networks(self):
        """
        A comma-separated list names every network in it, in order.
        """
        self.assertEqual(
            self.locations.resolve("192.0.2.1, 2001:db8:1::/64").networks,
            (ip_network("192.0.2.1/32"), ip_network("2001:db8:1::/64")),
        )

    def test_name(self):
        """
        A name from the locations file is that location, with its name.
        """
        location = self.locations.resolve("lab")
        self.assertEqual(
            (location.name, location.networks),
            ("lab", (ip_network("192.0.2.0/24"),)),
        )

    def test_surrounding_space(self):
        """
        Space around what IT typed is ignored.
        """
        self.assertEqual(self.locations.resolve("  lab \n").name, "lab")

    def test_unknown(self):
        """
        Text that is no name, address or network is refused with a
        L{LocationError} quoting it.
        """
        for text in ("kitchen", "", "192.0.2.0/33", "192.0.2.1,", "300.1.1.1"):
            with self.assertRaises(LocationError, msg=text) as caught:
                self.locations.resolve(text)
            self.assertIn(repr(text.strip()), str(caught.exception))

    def test_no_file(self):
        """
        Without a locations file, addresses and networks still resolve and
        names do not.
        """
        locations = Locations()
        self.assertEqual(
            locations.resolve("192.0.2.1").networks, (ip_network("192.0.2.1/32"),)
        )
        self.assertRaises(LocationError, locations.resolve, "lab")


class ContainsTests(SynchronousTestCase):
    """
    L{Location.contains} decides whether a peer's address is inside.
    """

    def setUp(self):
        self.location = Location(
            (ip_network("192.0.2.0/24"), ip_network("2001:db8:9::/64")), "lab"
        )

    def test_inside(self):
        """
        Addresses in any of the networks are inside.
        """
        for address in ("192.0.2.0", "192.0.2.77", "192.0.2.255", "2001:db8:9::1"):
            self.assertTrue(self.location.contains(address), address)

    def test_outside(self):
        """
        Addresses in none of the networks are outside.
        """
        for address in ("192.0.3.1", "198.51.100.1", "2001:db8:8::1", "::1"):
            self.assertFalse(self.location.contains(address), address)

    def test_ipv4_mapped(self):
        """
        An IPv4 peer reported by a dual-stack socket as an IPv4-mapped IPv6
        address counts as its IPv4 address.
        """
        self.assertTrue(self.location.contains("::ffff:192.0.2.77"))
        self.assertFalse(self.location.contains("::ffff:192.0.3.1"))

    def test_not_an_address(self):
        """
        Anything that is not an IP address (a UNIX socket peer, no peer) is
        outside, not an error.
        """
        for address in ("", "lab", "192.0.2.0/24", None):
            self.assertFalse(self.location.contains(address), address)

    def test_describe(self):
        """
        A named location is described by its name and networks, an unnamed
        one by its networks alone.
        """
        self.assertEqual(self.location.describe(), "lab (192.0.2.0/24,2001:db8:9::/64)")
        self.assertEqual(
            Location((ip_network("192.0.2.1/32"),)).describe(), "192.0.2.1/32"
        )


class FileTests(SynchronousTestCase):
    """
    L{Locations.from_file} reads the operator's names for networks, and
    refuses a bad file naming the line at fault.
    """

    def write(self, data):
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def refusal(self, data):
        """
        The message of the L{LocationError} that reading C{data} raises.
        """
        path = self.write(data)
        with self.assertRaises(LocationError) as caught:
            Locations.from_file(path)
        message = str(caught.exception)
        self.assertIn(path, message)
        return message

    def test_names(self):
        """
        Each line names a location; comments, trailing comments and blank
        lines are ignored; a line may list several networks of either
        family.
        """
        path = self.write(
            "# where devices may enroll from\n"
            "\n"
            "bldg2-f3-jack17: 192.0.2.17/32   # the desk by the window\n"
            "   \n"
            "lab-east: 198.51.100.0/24, 2001:db8:9::/64\n"
        )
        locations = Locations.from_file(path)
        self.assertEqual(
            locations.resolve("bldg2-f3-jack17"),
            Location((ip_network("192.0.2.17/32"),), "bldg2-f3-jack17"),
        )
        self.assertEqual(
            locations.resolve("lab-east"),
            Location(
                (ip_network("198.51.100.0/24"), ip_network("2001:db8:9::/64")),
                "lab-east",
            ),
        )

    def test_empty(self):
        """
        A file of comments only names nothing.
        """
        locations = Locations.from_file(self.write("# nothing yet\n"))
        self.assertRaises(LocationError, locations.resolve, "nothing")

    def test_name_twice(self):
        """
        A name given twice is refused at its second line.
        """
        message = self.refusal("a: 192.0.2.1\n# x\na: 192.0.2.2\n")
        self.assertIn("line 3", message)
        self.assertIn("named twice", message)

    def test_bad_lines(self):
        """
        A line without a colon, with an invalid name, with an invalid or
        empty network is refused with its line number.
        """
        for line in (
            "lab 192.0.2.0/24",
            ": 192.0.2.0/24",
            "-lab: 192.0.2.0/24",
            "bad name: 192.0.2.0/24",
            "lab:",
            "lab: 192.0.2.0/24,",
            "lab: 192.0.2.0/24,,192.0.3.0/24",
            "lab: 192.0.2.0/40",
            "lab: kitchen",
            "x" * 65 + ": 192.0.2.0/24",
        ):
            message = self.refusal("# header\n\nok: 192.0.2.9\n" + line + "\n")
            self.assertIn("line 4", message, line)

    def test_not_utf8(self):
        """
        A file that is not UTF-8 is refused as such.
        """
        self.assertIn("not UTF-8", self.refusal(b"lab\xff: 192.0.2.0/24\n"))

    def test_largest(self):
        """
        A file of exactly L{MAX_FILE_BYTES} is read.
        """
        line = b"lab: 192.0.2.0/24\n"
        padding = b"#" * (MAX_FILE_BYTES - len(line) - 1) + b"\n"
        path = self.write(line + padding)
        self.assertEqual(os.path.getsize(path), MAX_FILE_BYTES)
        self.assertEqual(Locations.from_file(path).resolve("lab").name, "lab")

    def test_too_large(self):
        """
        A file larger than L{MAX_FILE_BYTES} is refused without being
        parsed.
        """
        message = self.refusal(b"#" * MAX_FILE_BYTES + b"\n")
        self.assertIn(f"larger than {MAX_FILE_BYTES} bytes", message)

    def test_missing(self):
        """
        A file that cannot be read raises L{OSError}, for the caller to
        report.
        """
        self.assertRaises(OSError, Locations.from_file, self.mktemp())
