#!/usr/bin/python3
"""test_aio.py - rlm.aio: coroutine start/execute/shutdown that never block the event loop,
coroutine tools and llms, cancellation, run() and Pool."""
import asyncio
import os
import threading
import unittest
import uuid

from rlmtest import main, rlm, volume_dir

import rlm.aio as aio


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 300))


class Interpreters(unittest.TestCase):
    def test_async_with_execute_and_result_fields(self):
        async def go():
            async with aio.LocalInterpreter() as interp:
                self.assertTrue(interp.started)
                r = await interp.execute("x = 6\nSUBMIT(answer=x * 7)")
                self.assertEqual(r.answer, 42)
                await interp.upload(b"data", "f.bin")
                self.assertEqual(await interp.download("f.bin"), b"data")
                self.assertEqual((await interp.run_command(["echo", "hi"])).stdout, "hi\n")
                await interp.reset()
                self.assertEqual((await interp.execute("'x' in globals()")).value, "False")
                self.assertEqual((await interp.status())["backend"], "local")
            self.assertFalse(interp.started)
        arun(go())

    def test_explicit_start_and_shutdown(self):
        async def go():
            interp = aio.Interpreter("local")
            self.assertIs(await interp.start(), interp)
            await interp.start()
            r = await interp.execute("1 + 1")
            await interp.shutdown()
            await interp.shutdown()
            return r.value
        self.assertEqual(arun(go()), "2")

    def test_the_event_loop_keeps_running_while_a_cell_works(self):
        name = "py-aio-" + uuid.uuid4().hex[:8]
        flag = os.path.join(volume_dir(name), "go")

        async def go():
            ticks = 0
            async with aio.LocalInterpreter(volume_name=name) as interp:
                # The cell waits until the loop has ticked and written the go file.
                cell = asyncio.ensure_future(interp.execute(
                    "import os, time\nwhile not os.path.exists(os.path.join(VOLUME, 'go')):\n"
                    "    time.sleep(0.02)\nSUBMIT(done=True)", timeout=240))
                while ticks < 5:
                    await asyncio.sleep(0.01)
                    ticks += 1
                self.assertFalse(cell.done())
                open(flag, "w").close()
                r = await cell
                self.assertTrue(r.done)
        arun(go())

    def test_coroutine_tools_and_llm_run_on_the_loop(self):
        async def go():
            loop = asyncio.get_running_loop()
            seen = []

            async def fetch(key):
                seen.append(asyncio.get_running_loop() is loop)
                await asyncio.sleep(0)
                return key * 2

            async def llm(prompt):
                await asyncio.sleep(0)
                return "async:" + prompt
            async with aio.LocalInterpreter(tools={"fetch": fetch}, llm=llm) as interp:
                r = await interp.execute("SUBMIT(a=fetch('ab'), b=llm_query('q'))")
                self.assertEqual((r.a, r.b), ("abab", "async:q"))
                interp.tools["plain"] = lambda: "sync ok"
                self.assertEqual((await interp.execute("plain()")).value, "'sync ok'")
            self.assertEqual(seen, [True])
        arun(go())

    def test_many_interpreters_concurrently(self):
        async def one(i):
            async with aio.LocalInterpreter() as interp:
                return (await interp.execute("SUBMIT(i=i * i)", {"i": i})).i

        async def go():
            return await asyncio.gather(*[one(i) for i in range(8)])
        self.assertEqual(arun(go()), [i * i for i in range(8)])

    def test_cancelling_the_task_cancels_the_interpreter(self):
        name = "py-aio-" + uuid.uuid4().hex[:8]
        started = os.path.join(volume_dir(name), "started")

        async def go():
            interp = aio.LocalInterpreter(volume_name=name)
            await interp.start()
            task = asyncio.ensure_future(interp.execute(
                "import os, time\nopen(os.path.join(VOLUME, 'started'), 'w').close()\n"
                "time.sleep(600)", timeout=900))
            while not os.path.exists(started):
                await asyncio.sleep(0.02)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            with self.assertRaises(rlm.CancelledError):
                await interp.execute("1")
            await interp.shutdown()
        arun(go())

    def test_interrupt_is_immediate(self):
        name = "py-aio-" + uuid.uuid4().hex[:8]
        started = os.path.join(volume_dir(name), "started")

        async def go():
            async with aio.LocalInterpreter(volume_name=name) as interp:
                task = asyncio.ensure_future(interp.execute(
                    "import os, time\nopen(os.path.join(VOLUME, 'started'), 'w').close()\n"
                    "while True:\n    time.sleep(0.02)", timeout=600))
                while not os.path.exists(started):
                    await asyncio.sleep(0.02)
                interp.interrupt()
                r = await task
                self.assertEqual(r.error.type, "KeyboardInterrupt")
        arun(go())

    def test_errors_come_back_as_exceptions(self):
        async def go():
            with self.assertRaises(TypeError):
                aio.LocalInterpreter(nope=1)
            interp = aio.LocalInterpreter()
            await interp.shutdown()
            with self.assertRaises(rlm.ClosedError):
                await interp.execute("1")
        arun(go())

    def test_local_sandbox_outlives_the_starting_call(self):
        """The local sandbox dies with the thread that started it: rlm.aio keeps that thread
        for the interpreter's life, so a start, a pause and more cells work."""
        async def go():
            interp = aio.LocalInterpreter()
            await interp.start()
            await asyncio.sleep(0.2)
            for _ in range(3):
                await interp.execute("1")
            alive = (await interp.status())["running"]
            await interp.shutdown()
            return alive
        self.assertTrue(arun(go()))


class RunAndPool(unittest.TestCase):
    def test_async_run_with_a_coroutine_llm(self):
        async def llm(request):
            await asyncio.sleep(0)
            if isinstance(request, str):
                return request[::-1]
            return "```repl\nSUBMIT(answer=llm_query('olleh'))\n```"

        async def go():
            return await aio.run("reverse", llm=llm)
        self.assertEqual(arun(go()).answer, "hello")

    def test_cancelling_an_async_run(self):
        started = threading.Event()

        def llm(request):
            started.set()
            return "```repl\nimport time\ntime.sleep(300)\n```"

        async def go():
            task = asyncio.ensure_future(aio.run("q", llm=llm))
            while not started.is_set():
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
        arun(go())

    def test_async_pool(self):
        async def go():
            async with aio.Pool("local", max_live=2) as pool:
                async def one(i):
                    async with pool.interpreter(timeout=120) as interp:
                        return (await interp.execute("i + 1", {"i": i})).value
                out = await asyncio.gather(*[one(i) for i in range(5)])
                self.assertLessEqual(pool.stats()["peak_live"], 2)
                return out
        self.assertEqual(arun(go()), [str(i + 1) for i in range(5)])


if __name__ == "__main__":
    main()
