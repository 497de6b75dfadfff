"""
Tests for L{bench.session_cost} and L{bench.server_rotation}: each figure
is measured on the code it names, for both forms of a rotation, and the
server's rotations it times complete in the form the connection's
version calls for.
"""

import io
import json
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from bench import session_cost
from bench.server_rotation import server_rotation_microseconds
from suto_server.core import wire
from suto_server.machines.rotation import RotationConversation


class FormTests(SynchronousTestCase):
    """
    Each form's rotation is one the server's machine and codec take.
    """

    def test_rotations_end_between_rotations(self):
        """
        A form's first rotation, then rotation after rotation, leaves the
        machine between rotations, where the timed rotation starts again:
        none of them ended the conversation with an error.
        """
        for form in session_cost.FORMS:
            session = RotationConversation(session_cost.USER)
            form.first(session)
            for _ in range(3):
                form.rotate(session)
                self.assertTrue(session.between_rotations, form.name)

    def test_client_lines(self):
        """
        The two-message form's client lines decode to a rotation and its
        acknowledgement; the primed form's to one primed rotation.
        """
        expected = {
            "v2": [wire.Rotate, wire.RotateAck],
            "v3_primed": [wire.RotatePrimed],
        }
        for form in session_cost.FORMS:
            decoded = []
            for line in form.client_lines:
                decoder = wire.Decoder(session_cost.FRAMED)
                decoder.receive_data(line)
                decoded.append(type(decoder.next_event()))
            self.assertEqual(decoded, expected[form.name])

    def test_primed_session_holds_share(self):
        """
        A version-3 session's memory counts the share it holds, OpenSSL's
        part of it included: more than a version-2 session's by at least
        that part.
        """
        share = session_cost.share_heap_bytes(200)
        self.assertGreater(share, 0)
        self.assertGreater(
            session_cost.bytes_per_session(200, session_cost.PRIMED_FORM),
            session_cost.bytes_per_session(200, session_cost.TWO_MESSAGE) + share,
        )


class ServerRotationTests(SynchronousTestCase):
    """
    The server's side of a rotation, timed in-process.
    """

    def test_two_message_rotations_complete(self):
        """
        On version-2 connections every agent's rotations complete against
        the server (each agent opens the server's "ok" and
        C{SUTO_ROTATE_DONE_} under the key it derived, and raises
        otherwise), and the time they took is a positive number of
        microseconds.
        """
        self.assertGreater(server_rotation_microseconds(3, 2, 2), 0)

    def test_primed_rotations_complete(self):
        """
        On version-3 connections every commit is answered
        C{SUTO_ROTATE_DONE_NEXT_} (an agent raises at any other answer),
        whose share opens under the agent's new key, so every rotation
        after the first is primed, and the time they took is a positive
        number of microseconds.
        """
        self.assertGreater(server_rotation_microseconds(3, 2, 3), 0)


class MainTests(SynchronousTestCase):
    """
    The command prints every figure of each form, then all of them as
    JSON.
    """

    def test_figures(self):
        """
        A short run prints one line per figure, labelled with its form,
        and a JSON line with each figure, all positive.
        """
        out = io.StringIO()
        with redirect_stdout(out):
            session_cost.main(
                [
                    "--rotations", "10",
                    "--repeat", "1",
                    "--sessions", "10",
                    "--connections", "10",
                    "--profiles", "2",
                    "--rounds", "1",
                ]
            )
        *lines, last = out.getvalue().splitlines()
        figures = json.loads(last)
        self.assertEqual(
            set(figures),
            {
                f"{figure}_{form}"
                for figure in (
                    "rotation_us",
                    "codec_us",
                    "timeouts_us",
                    "bytes_per_session",
                    "server_rotation_us",
                )
                for form in ("v2", "v3_primed")
            },
        )
        self.assertEqual(len(lines), len(figures))
        for form in session_cost.FORMS:
            labelled = [line for line in lines if line.startswith(form.label)]
            self.assertEqual(len(labelled), len(figures) // 2)
        self.assertTrue(all(value > 0 for value in figures.values()))
