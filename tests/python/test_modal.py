#!/usr/bin/python3
"""test_modal.py - the Python package on the Modal backend, against the fake Modal (run under
tests/modal/with_fake.py, which sets MODAL_SERVER_URL and the token, and fails the test when a
sandbox is left behind).

fleet-rlm's Modal usage, in our words, with only the import changed: a volume at /data that
survives a new interpreter, with-statement cleanup; then tools, the in-process llm, rlm.run
and rlm.aio on Modal. The fake mounts volumes at /data only when it can chroot (as root);
otherwise the volume test is skipped, saying so."""
import asyncio
import json
import os
import unittest
import uuid

from rlmtest import main, rlm

from rlm import ModalInterpreter  # fleet-rlm 0.4: from fleet_rlm... import ModalInterpreter

STATE = os.environ.get("MODAL_FAKE_STATE")


def live_sandboxes():
    try:
        with open(STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


@unittest.skipUnless(STATE, "run under tests/modal/with_fake.py")
class FleetExamples(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(live_sandboxes(), [], "a sandbox was left behind")

    @unittest.skipUnless(os.geteuid() == 0, "the fake mounts volumes at /data only as root")
    def test_volume_at_data_survives_a_new_interpreter(self):
        volume = "rlm-memory-" + uuid.uuid4().hex[:6]
        interp = ModalInterpreter(volume_name=volume, timeout=600)
        interp.start()
        try:
            r = interp.execute(
                "import os\nos.makedirs('/data/memory', exist_ok=True)\n"
                "open('/data/memory/facts.txt', 'w').write('the sky is blue')\n"
                "SUBMIT(answer=VOLUME)")
            self.assertEqual(r.answer, "/data")
        finally:
            interp.shutdown()
        with ModalInterpreter(volume_name=volume, timeout=600) as again:
            r = again.execute("SUBMIT(answer=open('/data/memory/facts.txt').read())")
            self.assertEqual(r.answer, "the sky is blue")
            self.assertEqual(again.download("/data/memory/facts.txt"), b"the sky is blue")

    def test_with_statement_cleans_up_and_state_carries_across_cells(self):
        with ModalInterpreter(timeout=600) as interp:
            interp.execute("import json\nrows = [1, 2, 3]")
            interp.execute("add_buffer('seen', sum(rows))")
            r = interp.execute("SUBMIT(answer=get_buffer('seen'), n=len(rows))")
            self.assertEqual((r.answer, r.n), ([6], 3))
            self.assertEqual(len(live_sandboxes()), 1)
        self.assertEqual(live_sandboxes(), [])

    def test_files_and_commands(self):
        with ModalInterpreter(timeout=600) as interp:
            data = bytes(range(256))
            interp.upload(data, "blob.bin")
            self.assertEqual(interp.download("blob.bin"), data)
            c = interp.run_command("echo modal")
            self.assertEqual(c.stdout, "modal\n")
            self.assertEqual(interp.status()["backend"], "modal")


@unittest.skipUnless(STATE, "run under tests/modal/with_fake.py")
class ToolsRunsAsync(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(live_sandboxes(), [], "a sandbox was left behind")

    def test_tools_and_llm_on_modal(self):
        calls = []

        def record(event, **fields):
            calls.append((event, fields))
            return len(calls)
        with ModalInterpreter(tools={"record": record}, llm=lambda p: "ok:" + p,
                              timeout=600) as interp:
            r = interp.execute("SUBMIT(n=record('start', step=1), a=llm_query('x'))")
            self.assertEqual((r.n, r.a), (1, "ok:x"))
            self.assertEqual(calls, [("start", {"step": 1})])

    def test_run_on_modal(self):
        def llm(request):
            if isinstance(request, str):
                return request.upper()
            return "```repl\nSUBMIT(answer=llm_query(context))\n```"
        self.assertEqual(rlm.run("q", "shout", backend="modal", llm=llm).answer, "SHOUT")

    def test_async_on_modal(self):
        import rlm.aio

        async def go():
            async with rlm.aio.ModalInterpreter(timeout=600) as interp:
                return (await interp.execute("SUBMIT(answer=6 * 7)")).answer
        self.assertEqual(asyncio.run(go()), 42)


if __name__ == "__main__":
    main()
